"""The checked-in event schemas lock the contract: a breaking change fails unless it is a new version.

When a test here fails because a schema is stale (a compatible change such as a new optional field),
run `make event-schemas` (`python -m casebook_events.contract`) and commit the files it writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel, ConfigDict, Field

from casebook_events import TOPICS, TopicSpec
from casebook_events.contract import (
    REGENERATE,
    SCHEMAS,
    breaking_changes,
    filename,
    load,
    main,
    render,
    schema_of,
)


@pytest.mark.parametrize("spec", TOPICS, ids=lambda s: f"{s.topic}.v{s.version}")
def test_checked_in_schema_matches_the_registry(spec: TopicSpec) -> None:
    on_disk = load(spec.topic, spec.version)
    assert on_disk is not None, f"{SCHEMAS / filename(spec.topic, spec.version)} is missing: run {REGENERATE}"
    current = schema_of(spec)
    breaking = breaking_changes(on_disk, current)
    assert not breaking, (
        f"{spec.topic} v{spec.version} is in use and changed in a breaking way:\n  " + "\n  ".join(breaking)
        + f"\nKeep v{spec.version} as it is and register the change as v{spec.version + 1} (a new model and "
        f"TopicSpec), then run {REGENERATE}.")
    assert render(on_disk) == render(current), (
        f"{filename(spec.topic, spec.version)} is stale (a compatible change): run {REGENERATE} and commit it")


@pytest.mark.parametrize("spec", TOPICS, ids=lambda s: f"{s.topic}.v{s.version}")
def test_every_example_validates_against_its_checked_in_schema(spec: TopicSpec) -> None:
    schema = load(spec.topic, spec.version)
    assert schema is not None
    Draft202012Validator.check_schema(schema)
    errors = sorted(e.message for e in Draft202012Validator(schema).iter_errors(spec.example))
    assert errors == []


def test_the_schemas_refuse_what_the_models_refuse() -> None:
    schema = load("case.deleted", 1)
    assert schema is not None
    v = Draft202012Validator(schema)
    assert v.is_valid({"case_id": "c", "owner_id": "u", "deleted_by": "u"})
    assert not v.is_valid({"case_id": "c", "owner_id": "u"})
    assert not v.is_valid({"case_id": "c", "owner_id": "u", "deleted_by": "u", "status": "approved"})


# The compatibility rules, on small models shaped like the real ones.

class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Inner(_Strict):
    title: str = Field(description="A title.")
    age: int | None = Field(None, description="An age.")


class Base(_Strict):
    case_id: str = Field(description="The case.")
    status: str = Field(description="A status.")
    kind: Literal["a", "b"] = Field(description="A kind.")
    size: int = Field(description="A size.")
    note: str | None = Field(None, description="A note.")
    tags: list[str] = Field(default_factory=list, description="Tags.")
    inner: Inner = Field(description="Nested.")


def _schema(model: type[BaseModel], key: str = "case_id") -> dict[str, Any]:
    return schema_of(TopicSpec("t.x", model, 1, key, ("p",), ("c",)))


def _changes(new: type[BaseModel], key: str = "case_id") -> list[str]:
    return breaking_changes(_schema(Base), _schema(new, key))


def test_an_unchanged_schema_has_no_breaking_change() -> None:
    assert _changes(Base) == []


def test_removed_and_renamed_fields_break() -> None:
    class Removed(_Strict):
        case_id: str
        status: str
        kind: Literal["a", "b"]
        size: int
        tags: list[str] = []
        inner: Inner

    class Renamed(_Strict):
        case_id: str
        state: str
        kind: Literal["a", "b"]
        size: int
        note: str | None = None
        tags: list[str] = []
        inner: Inner

    assert _changes(Removed) == ["field 'note' removed (or renamed)"]
    assert _changes(Renamed) == ["field 'status' removed (or renamed)", "required field 'state' added"]


def test_required_fields_added_or_made_required_break() -> None:
    class Added(Base):
        owner_id: str

    class MadeRequired(Base):
        note: str | None  # type: ignore[assignment]

    assert _changes(Added) == ["required field 'owner_id' added"]
    assert "field 'note' became required" in _changes(MadeRequired)


def test_narrowed_types_break() -> None:
    class Enum(Base):
        status: Literal["draft", "approved"]  # type: ignore[assignment]

    class NotNullable(Base):
        note: str = ""  # type: ignore[assignment]

    class EnumShrunk(Base):
        kind: Literal["a"]  # type: ignore[assignment]

    class Bounded(Base):
        size: int = Field(ge=0)

    class NestedNarrowed(_Strict):
        title: str
        age: int

    class WithNested(Base):
        inner: NestedNarrowed  # type: ignore[assignment]

    assert _changes(Enum) == ["field 'status': type narrowed, string is no longer accepted"]
    assert _changes(NotNullable) == ["field 'note': default changed from None to ''",
                                     "field 'note': type narrowed, null is no longer accepted"]
    assert _changes(EnumShrunk) == ["field 'kind': type narrowed, one of 'a', 'b' is no longer accepted"]
    assert _changes(Bounded) == ["field 'size': type narrowed, integer is no longer accepted"]
    assert _changes(WithNested) == ["field 'inner.age' became required",
                                    "field 'inner.age': type narrowed, null is no longer accepted"]


def test_extra_tightened_or_loosened_breaks() -> None:
    class Loose(Base):
        model_config = ConfigDict(frozen=True, extra="allow")

    assert _changes(Loose) == ["the payload: additionalProperties changed from False to True"]
    assert breaking_changes(_schema(Loose), _schema(Base)) == [
        "the payload: additionalProperties changed from True to False"]


def test_changed_defaults_and_partition_keys_break() -> None:
    class NewDefault(Base):
        note: str | None = "none"

    assert _changes(NewDefault) == ["field 'note': default changed from None to 'none'"]
    assert _changes(Base, key="owner_id") == ["the partition key changed from 'case_id' to 'owner_id'"]


def test_optional_fields_widened_types_and_new_descriptions_are_compatible() -> None:
    class Evolved(Base):
        case_id: str = Field(description="The case (the event key), reworded.")
        kind: Literal["a", "b", "c"]  # type: ignore[assignment]
        size: float  # type: ignore[assignment]
        status: str | None  # type: ignore[assignment]
        revision: int = Field(0, description="A new optional field.")
        extra_tags: list[str] = Field(default_factory=list, description="Another one.")

    assert _changes(Evolved) == []


def test_regenerating_refuses_to_overwrite_a_version_in_use_with_a_breaking_change(tmp_path: Path,
                                                                                  capsys: Any) -> None:
    assert main([str(tmp_path)]) == 0
    assert main(["--check", str(tmp_path)]) == 0
    spec = TOPICS[0]
    path = tmp_path / filename(spec.topic, spec.version)
    # Pretend the checked-in version had a field the model no longer has.
    old = json.loads(path.read_text())
    old["properties"]["legacy"] = {"type": "string"}
    path.write_text(render(old))
    assert main([str(tmp_path)]) == 2
    assert "field 'legacy' removed" in capsys.readouterr().out
    assert "legacy" in path.read_text(), "a breaking change must not be written over the version in use"
    # A compatible difference (here only a description) is stale, and regenerating fixes it.
    old = schema_of(spec)
    old["description"] = "older wording"
    path.write_text(render(old))
    assert main(["--check", str(tmp_path)]) == 1
    assert REGENERATE in capsys.readouterr().out
    assert main([str(tmp_path)]) == 0 and main(["--check", str(tmp_path)]) == 0

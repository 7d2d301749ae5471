"""Every registry example, in its envelope, validates against the schema the AsyncAPI documents publish.

`test_asyncapi.py` holds the documents to what the registry generates; this holds the registry's
examples to the documents: a consumer generating code from `docs/asyncapi/` accepts every example.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from casebook_events import TOPICS, TopicSpec, make_envelope
from casebook_platform.asyncapi import SERVICES

DOCS = Path(__file__).resolve().parents[3] / "docs" / "asyncapi"


def _published(service: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(topic, message payload schema, the document) of every non-DLQ channel of a service's document."""
    doc = json.loads((DOCS / f"{service}.json").read_text())
    out = []
    for channel in doc["channels"].values():
        for message in channel["messages"].values():
            name = message["$ref"].split("/")[-1]
            out.append((channel["address"], doc["components"]["messages"][name]["payload"], doc))
    return out


def _envelope(spec: TopicSpec) -> dict[str, Any]:
    event = spec.model.model_validate(spec.example)
    return make_envelope(event, producer=spec.producers[0], key=spec.example[spec.key]).model_dump(mode="json")


@pytest.mark.parametrize("service", SERVICES)
def test_every_example_validates_against_the_published_schema(service: str) -> None:
    specs = {s.topic: s for s in TOPICS}
    checked = 0
    for topic, payload, doc in _published(service):
        spec = specs.get(topic)
        if spec is None:  # a dead-letter channel: its payload is whatever could not be processed
            assert topic.endswith(".dlq"), f"{service} documents {topic}, which the registry does not know"
            continue
        validator = Draft202012Validator({**payload, "components": doc["components"]}, format_checker=FormatChecker())
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(_envelope(spec))]
        assert errors == [], f"{service}: the {topic} example does not fit the published schema: {errors}"
        checked += 1
    assert checked > 0, f"{service} documents no registry topic"


@pytest.mark.parametrize("spec", TOPICS, ids=lambda s: s.topic)
def test_every_registry_topic_is_published_by_its_producers(spec: TopicSpec) -> None:
    for producer in spec.producers:
        assert spec.topic in {t for t, _, _ in _published(producer)}, f"{producer}'s document lacks {spec.topic}"

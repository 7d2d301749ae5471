"""The locked contract: one checked-in JSON schema per (topic, version), and what counts as a breaking change.

`python -m casebook_events.contract` (`make event-schemas`) writes `schemas/<topic>.v<N>.json` for every
registry entry; `--check` reports stale files. A schema already on disk is never overwritten with a breaking
change: such a change is a new version of the event (a new registry entry), the old file stays as history.

Compatibility is backward, the way sentry-kafka-schemas and openedx-events evolve events: a consumer on the
new schema must still accept every event written under the old one, because a replay of the log rebuilds
state from old events. Events are strict (`extra="forbid"`), so removing a field breaks that too: old events
that carry it would be refused. Breaking: a field removed or renamed, a required field added, an optional
field made required, a type narrowed (a type, enum value or format dropped, a constraint tightened), a
default changed (old events without the field would be read differently), `additionalProperties` changed
(tightened refuses old events; loosened lets producers write what strict consumers refuse), the partition
key changed. Compatible: an optional field added, a type widened, descriptions and titles.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from casebook_events.topics import TOPICS, TopicSpec

SCHEMAS = Path(__file__).parent / "schemas"
REGENERATE = "`make event-schemas` (or `.venv/bin/python -m casebook_events.contract`)"
_DRAFT = "https://json-schema.org/draft/2020-12/schema"
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems")

Schema = dict[str, Any]


def filename(topic: str, version: int) -> str:
    """`case.uploaded`, 1 → `case.uploaded.v1.json`."""
    return f"{topic}.v{version}.json"


def schema_of(spec: TopicSpec) -> Schema:
    """The JSON schema of a registry entry's payload, with its topic, version and partition key."""
    return {"$schema": _DRAFT, "x-topic": spec.topic, "x-version": spec.version, "x-key": spec.key,
            **spec.model.model_json_schema()}


def render(schema: Schema) -> str:
    """Stable text of a schema file (sorted keys, so regenerating changes nothing)."""
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def load(topic: str, version: int, directory: Path = SCHEMAS) -> Schema | None:
    """The checked-in schema of (topic, version), or None when there is none."""
    path = directory / filename(topic, version)
    return json.loads(path.read_text()) if path.exists() else None


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """Every way `new` refuses or misreads an event that `old` accepted, each as a sentence; empty if none."""
    problems: list[str] = []
    if old.get("x-key") != new.get("x-key"):
        problems.append(f"the partition key changed from {old.get('x-key')!r} to {new.get('x-key')!r}")
    _compare(_Doc(old), old, _Doc(new), new, "", problems)
    return problems


class _Doc:
    """Resolves `#/$defs/...` references within one schema document."""

    def __init__(self, root: Schema) -> None:
        self.defs: dict[str, Schema] = root.get("$defs", {})

    def resolve(self, node: Schema) -> Schema:
        seen = 0
        while "$ref" in node and seen < 32:
            node = self.defs[node["$ref"].rsplit("/", 1)[-1]]
            seen += 1
        return node


def _where(path: str) -> str:
    return f"field {path!r}" if path else "the payload"


def _alternatives(doc: _Doc, node: Schema) -> list[Schema]:
    node = doc.resolve(node)
    options = node.get("anyOf") or node.get("oneOf")
    if options is None:
        return [node]
    return [alt for option in options for alt in _alternatives(doc, option)]


def _types(node: Schema) -> set[str]:
    t = node.get("type")
    if t is None:
        return set()
    return {t} if isinstance(t, str) else set(t)


def _compare(od: _Doc, old: Schema, nd: _Doc, new: Schema, path: str, problems: list[str]) -> None:
    """Append why `new` (at `path`) accepts less than `old`."""
    olds, news = _alternatives(od, old), _alternatives(nd, new)
    for o in olds:
        if not any(_accepts(n, o) for n in news):
            problems.append(f"{_where(path)}: type narrowed, {_describe(o)} is no longer accepted")
    # Recurse into the alternative that still matches, so nested objects report their own fields.
    for o in olds:
        for n in news:
            if _types(o) & _types(n) & {"object", "array"}:
                _compare_structure(od, o, nd, n, path, problems)
                break


def _describe(node: Schema) -> str:
    if "enum" in node:
        return "one of " + ", ".join(map(repr, node["enum"]))
    if "const" in node:
        return repr(node["const"])
    return "/".join(sorted(_types(node))) or "any value"


def _values(node: Schema) -> set[Any] | None:
    if "enum" in node:
        return {json.dumps(v) for v in node["enum"]}
    if "const" in node:
        return {json.dumps(node["const"])}
    return None


def _accepts(n: Schema, o: Schema) -> bool:
    """Whether the new alternative `n` accepts every value of the old alternative `o` (shallowly)."""
    nt, ot = _types(n), _types(o)
    if nt and not (ot and all(t in nt or (t == "integer" and "number" in nt) for t in ot)):
        return False
    nv, ov = _values(n), _values(o)
    if nv is not None and (ov is None or not ov <= nv):
        return False
    if "format" in n and n.get("format") != o.get("format"):
        return False
    if "pattern" in n and n.get("pattern") != o.get("pattern"):
        return False
    tighter_low = any(b in n and (b not in o or o[b] < n[b]) for b in _LOWER_BOUNDS)
    tighter_high = any(b in n and (b not in o or o[b] > n[b]) for b in _UPPER_BOUNDS)
    return not (tighter_low or tighter_high)


def _compare_structure(od: _Doc, o: Schema, nd: _Doc, n: Schema, path: str, problems: list[str]) -> None:
    if "array" in _types(o):
        if "items" in o or "items" in n:
            _compare(od, o.get("items", {}), nd, n.get("items", {}), f"{path}[]", problems)
        return
    if o.get("additionalProperties", True) != n.get("additionalProperties", True):
        problems.append(f"{_where(path)}: additionalProperties changed from {o.get('additionalProperties', True)}"
                        f" to {n.get('additionalProperties', True)}")
    old_props: dict[str, Schema] = o.get("properties", {})
    new_props: dict[str, Schema] = n.get("properties", {})
    old_required, new_required = set(o.get("required", ())), set(n.get("required", ()))
    for name in sorted(old_props.keys() - new_props.keys()):
        problems.append(f"field {_join(path, name)!r} removed (or renamed)")
    for name in sorted(new_props.keys() - old_props.keys()):
        if name in new_required:
            problems.append(f"required field {_join(path, name)!r} added")
    for name in sorted(old_props.keys() & new_props.keys()):
        sub = _join(path, name)
        if name in new_required and name not in old_required:
            problems.append(f"field {sub!r} became required")
        op, np_ = old_props[name], new_props[name]
        if "default" in op and "default" in np_ and op["default"] != np_["default"]:
            problems.append(f"field {sub!r}: default changed from {op['default']!r} to {np_['default']!r}")
        elif "default" in op and "default" not in np_ and name not in new_required:
            problems.append(f"field {sub!r}: default {op['default']!r} dropped")
        _compare(od, op, nd, np_, sub, problems)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def main(argv: list[str]) -> int:
    """Write (or with `--check`, verify) every schema file; refuses to overwrite a file with a breaking change."""
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    out = Path(args[0]) if args else SCHEMAS
    stale: list[str] = []
    breaking: list[str] = []
    for spec in TOPICS:
        new = schema_of(spec)
        path = out / filename(spec.topic, spec.version)
        old = load(spec.topic, spec.version, out)
        if old is not None:
            breaking += [f"{spec.topic} v{spec.version}: {p}" for p in breaking_changes(old, new)]
        if old is None or render(old) != render(new):
            stale.append(str(path))
    if breaking:
        print("breaking changes to events already in use; register the change as a new version instead:\n  "
              + "\n  ".join(breaking))
        return 2
    if check:
        if stale:
            print(f"stale event schemas (run {REGENERATE}): " + ", ".join(stale))
            return 1
        return 0
    out.mkdir(parents=True, exist_ok=True)
    for spec in TOPICS:
        path = out / filename(spec.topic, spec.version)
        if str(path) in stale:
            path.write_text(render(schema_of(spec)))
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

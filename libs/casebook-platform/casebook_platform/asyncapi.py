"""AsyncAPI documents of every service, generated from the topic registry with FastStream.

`python -m casebook_platform.asyncapi docs/asyncapi` writes one JSON document per service (keys sorted so
that regenerating is stable); `--check` fails when
the files on disk are stale (a test runs it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Union

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from pydantic import BaseModel, create_model

from casebook_events import TOPICS, Envelope, TopicSpec, dlq

SERVICES = ("gateway", "anonymiser", "moderation", "featuring", "achievements", "export")


def _envelope_of(spec: TopicSpec, accepted: list[TopicSpec] | None = None) -> type[BaseModel]:
    """The envelope with this topic's payload model, so the document shows the real payload schema.

    `accepted`: every version a consumer takes (older ones during a rolling upgrade), as one union.
    """
    models = [s.model for s in accepted or [spec]]
    payload: Any = models[0] if len(models) == 1 else Union[tuple(models)]  # noqa: UP007 - built at run time
    name = spec.model.__name__ if len(models) == 1 else f"{spec.model.__name__}Accepted"
    return create_model(f"{name}Envelope", __base__=Envelope, payload=(payload, ...))


def _versions(accepted: list[TopicSpec]) -> str:
    if len(accepted) == 1:
        return ""
    return f" Versions accepted: {', '.join(str(s.version) for s in accepted)}."


def document(service: str) -> str:
    """The AsyncAPI 3.0 document (JSON) of one service: what it consumes (with its DLQ) and what it produces."""
    broker = KafkaBroker("kafka:9092", description=f"Casebook {service}: events in the Casebook envelope.")
    by_topic: dict[str, list[TopicSpec]] = {}
    for spec in TOPICS:
        by_topic.setdefault(spec.topic, []).append(spec)
    for versions in by_topic.values():
        produced = [s for s in versions if s.produced] or versions[-1:]
        spec = max(produced, key=lambda s: s.version)
        if service in spec.consumers:
            accepted = sorted(versions, key=lambda s: s.version)
            env = _envelope_of(spec, accepted)
            def handler(body: Any) -> None: ...  # documentation only
            handler.__annotations__ = {"body": env, "return": None}
            broker.subscriber(spec.topic, group_id=f"casebook-{service}", title=f"{service}:{spec.topic}",
                              description=f"{spec.model.__doc__ or ''} Key: `{spec.key}`. Produced by "
                                          f"{', '.join(spec.producers)}.{_versions(accepted)}")(handler)
            broker.publisher(dlq(spec.topic), title=f"{service}:{dlq(spec.topic)}", schema=bytes,
                             description="Messages that kept failing, with the error in `x-error`.")
        if service in spec.producers:
            broker.publisher(spec.topic, title=f"{service}:{spec.topic}", schema=_envelope_of(spec),
                             description=f"{spec.model.__doc__ or ''} Key: `{spec.key}`. Consumed by "
                                         f"{', '.join(spec.consumers) or 'no service yet'}.")
    spec_doc = AsyncAPI(broker, title=f"Casebook {service}", version="1.0.0",
                        description=f"Events consumed and produced by the Casebook {service} service.")
    return json.dumps(json.loads(spec_doc.to_specification().to_json()), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    out = Path(args[0] if args else "docs/asyncapi")
    stale = []
    for service in SERVICES:
        text = document(service)
        path = out / f"{service}.json"
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            out.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print("stale AsyncAPI documents (run `make asyncapi`): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""AsyncAPI documents of every service, generated from the topic registry with FastStream.

`python -m casebook_platform.asyncapi docs/asyncapi` writes one JSON document per service (keys sorted so
that regenerating is stable); `--check` fails when
the files on disk are stale (a test runs it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from pydantic import BaseModel, create_model

from casebook_events import TOPICS, Envelope, TopicSpec, dlq

SERVICES = ("gateway", "anonymiser", "moderation", "featuring", "achievements", "export")


def _envelope_of(spec: TopicSpec) -> type[BaseModel]:
    """The envelope with this topic's payload model, so the document shows the real payload schema."""
    return create_model(f"{spec.model.__name__}Envelope", __base__=Envelope,
                        payload=(spec.model, ...))


def document(service: str) -> str:
    """The AsyncAPI 3.0 document (JSON) of one service: what it consumes (with its DLQ) and what it produces."""
    broker = KafkaBroker("kafka:9092", description=f"Casebook {service}: events in the Casebook envelope.")
    for spec in TOPICS:
        env = _envelope_of(spec)
        if service in spec.consumers:
            def handler(body: Any) -> None: ...  # documentation only
            handler.__annotations__ = {"body": env, "return": None}
            broker.subscriber(spec.topic, group_id=f"casebook-{service}", title=f"{service}:{spec.topic}",
                              description=f"{spec.model.__doc__ or ''} Key: `{spec.key}`. Produced by "
                                          f"{', '.join(spec.producers)}.")(handler)
            broker.publisher(dlq(spec.topic), title=f"{service}:{dlq(spec.topic)}", schema=bytes,
                             description="Messages that kept failing, with the error in `x-error`.")
        if service in spec.producers:
            broker.publisher(spec.topic, title=f"{service}:{spec.topic}", schema=env,
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

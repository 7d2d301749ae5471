"""Dead letters: list them, show one, replay them to the topic they came from.

A dead letter is addressed as `<dlq topic>:<partition>:<offset>` (what `list` prints). Replay publishes
the original bytes, key and headers to the original topic; consumers record every event id they apply,
so replaying a letter twice (or one that was already replayed) changes nothing the second time.
Nothing here commits offsets: reading the DLQ leaves it as it is.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from casebook_events import DLQ_SUFFIX

_OURS = ("x-error", "x-original-topic", "x-original-partition", "x-original-offset", "x-attempts", "x-service",
         "x-failed-at")


@dataclass(frozen=True)
class Letter:
    """One message on a dead-letter topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]

    @property
    def id(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"

    @property
    def original_topic(self) -> str:
        return self.headers.get("x-original-topic") or self.topic.removesuffix(DLQ_SUFFIX)

    def event(self) -> dict[str, Any] | None:
        try:
            body = json.loads(self.value)
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def summary(self) -> dict[str, Any]:
        ev = self.event() or {}
        return {"id": self.id, "original_topic": self.original_topic, "event_id": ev.get("event_id"),
                "type": ev.get("type"), "service": self.headers.get("x-service"),
                "failed_at": self.headers.get("x-failed-at"), "attempts": self.headers.get("x-attempts"),
                "error": (self.headers.get("x-error") or "")[:200]}


def parse_id(letter_id: str) -> tuple[str, int, int]:
    """`topic:partition:offset` → its parts.

    Raises:
        ValueError: not of that form, or not a dead-letter topic.
    """
    topic, _, rest = letter_id.rpartition(":")
    topic, _, partition = topic.rpartition(":")
    if not topic.endswith(DLQ_SUFFIX) or not partition.isdigit() or not rest.isdigit():
        raise ValueError(f"not a dead letter id (topic.dlq:partition:offset): {letter_id!r}")
    return topic, int(partition), int(rest)


class DeadLetters:
    """Reads dead-letter topics from their beginning with an assigned (group-less) consumer."""

    def __init__(self, bootstrap: str, *, idle_s: float = 2.0) -> None:
        self.bootstrap = bootstrap
        self.idle_ms = int(idle_s * 1000)

    async def topics(self) -> list[str]:
        c = AIOKafkaConsumer(bootstrap_servers=self.bootstrap)
        await c.start()
        try:
            return sorted(t for t in await c.topics() if t.endswith(DLQ_SUFFIX))
        finally:
            await c.stop()

    async def read(self, topics: list[str] | None = None) -> list[Letter]:
        """Every letter on the given dead-letter topics (default: all), oldest first per partition."""
        names = topics or await self.topics()
        if not names:
            return []
        c = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                             client_id=f"casebook-dlq-{uuid.uuid4().hex[:6]}")
        await c.start()
        out: list[Letter] = []
        try:
            parts = [TopicPartition(t, p) for t in names for p in sorted(c.partitions_for_topic(t) or ())]
            if not parts:
                return []
            c.assign(parts)
            await c.seek_to_beginning(*parts)
            # End offsets cannot be trusted on every broker (Tansu 0.6): read until nothing arrives for a while.
            while True:
                batch = await c.getmany(timeout_ms=self.idle_ms, max_records=1000)
                if not batch:
                    break
                for recs in batch.values():
                    out.extend(Letter(r.topic, r.partition, r.offset, r.key, r.value or b"",
                                      {k: v.decode("utf-8", "replace") for k, v in r.headers}) for r in recs)
        finally:
            await c.stop()
        return sorted(out, key=lambda x: (x.topic, x.partition, x.offset))

    async def get(self, letter_id: str) -> Letter:
        """One letter by id.

        Raises:
            ValueError: malformed id; LookupError: no such letter.
        """
        topic, partition, offset = parse_id(letter_id)
        for letter in await self.read([topic]):
            if letter.partition == partition and letter.offset == offset:
                return letter
        raise LookupError(f"no dead letter {letter_id}")

    async def replay(self, letters: list[Letter]) -> list[str]:
        """Publish each letter's original message to its original topic; returns the ids replayed."""
        p = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", max_request_size=16 * 1024 * 1024)
        await p.start()
        done = []
        try:
            for letter in letters:
                headers = [(k, v.encode()) for k, v in letter.headers.items() if k not in _OURS]
                headers.append(("x-replayed-from", letter.id.encode()))
                await p.send_and_wait(letter.original_topic, letter.value, key=letter.key, headers=headers)
                done.append(letter.id)
        finally:
            await p.stop()
        return done


def _rows(letters: list[Letter]) -> Iterator[str]:
    for x in letters:
        s = x.summary()
        yield (f"{s['id']}  {s['original_topic']}  event={s['event_id'] or '-'}  service={s['service'] or '-'}  "
               f"failed_at={s['failed_at'] or '-'}  {s['error']}")


def run(args: Any) -> int:
    """The `casebook dlq` subcommands (see `casebook dlq --help`)."""
    dl = DeadLetters(args.bootstrap, idle_s=args.idle)
    if args.dlq_command == "list":
        topics = [t if t.endswith(DLQ_SUFFIX) else t + DLQ_SUFFIX for t in args.topic] or None
        letters = asyncio.run(dl.read(topics))
        if args.json:
            print(json.dumps([x.summary() for x in letters], indent=2))
        else:
            for line in _rows(letters):
                print(line)
            print(f"{len(letters)} dead letter(s)")
        return 0
    if args.dlq_command == "show":
        letter = asyncio.run(dl.get(args.id))
        ev = letter.event()
        print(json.dumps({**letter.summary(), "key": letter.key.decode("utf-8", "replace") if letter.key else None,
                          "headers": letter.headers, "body": ev if ev is not None
                          else letter.value.decode("utf-8", "replace")}, indent=2))
        return 0
    if args.dlq_command == "replay":
        if args.all_of:
            topic = args.all_of if args.all_of.endswith(DLQ_SUFFIX) else args.all_of + DLQ_SUFFIX
            letters = asyncio.run(dl.read([topic]))
        else:
            letters = [asyncio.run(dl.get(i)) for i in args.ids]
        for letter_id in asyncio.run(dl.replay(letters)):
            print(f"replayed {letter_id}")
        print(f"{len(letters)} letter(s) replayed; events already applied are skipped by their consumers")
        return 0
    raise SystemExit(f"unknown dlq command {args.dlq_command!r}")


def add_parser(sub: Any, default_bootstrap: str) -> None:
    """Register `dlq` and its subcommands on an argparse subparsers object."""
    p = sub.add_parser("dlq", help="dead letters: list, show, replay to the original topic")
    p.add_argument("--bootstrap", default=default_bootstrap, help="Kafka bootstrap servers")
    p.add_argument("--idle", type=float, default=2.0, help="seconds without messages that end a read")
    dsub = p.add_subparsers(dest="dlq_command", required=True)
    ls = dsub.add_parser("list", help="every dead letter (or those of --topic)")
    ls.add_argument("--topic", action="append", default=[], help="a topic or its .dlq (repeatable)")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    sh = dsub.add_parser("show", help="one dead letter: headers, error and body")
    sh.add_argument("id", help="topic.dlq:partition:offset, as `list` prints it")
    rp = dsub.add_parser("replay", help="publish dead letters to their original topic again (idempotent)")
    rp.add_argument("ids", nargs="*", help="letters to replay")
    rp.add_argument("--all-of", metavar="TOPIC", help="replay every letter of this topic's DLQ")
    p.set_defaults(func=run)

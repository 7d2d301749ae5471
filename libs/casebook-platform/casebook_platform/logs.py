"""Structured JSON logs with the event id and case id on every line of an event's handling."""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from pythonjsonlogger.json import JsonFormatter

from casebook_events import Envelope

_event_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("event_id", default=None)
_key: contextvars.ContextVar[str | None] = contextvars.ContextVar("key", default=None)
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.event_id = _event_id.get()
        record.case_id = _key.get()
        record.request_id = _request_id.get()
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    """JSON lines on stderr, each carrying service, event id, case id and request id."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                       rename_fields={"levelname": "level", "asctime": "time"}))
    handler.addFilter(_ContextFilter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "kafka", "faststream", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


@contextmanager
def bind_event(envelope: Envelope) -> Iterator[None]:
    """Tag every log line inside with this event's id and key (the case id for case events)."""
    t1, t2 = _event_id.set(envelope.event_id), _key.set(envelope.key)
    try:
        yield
    finally:
        _event_id.reset(t1)
        _key.reset(t2)


def bind_request(request_id: str) -> contextvars.Token[str | None]:
    return _request_id.set(request_id)

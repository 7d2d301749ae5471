"""Which failures are worth waiting out and which never will succeed (the retry and dead-letter policy).

A consumer or relay that dead-letters an event because the database was down for a minute loses work
for good; one that retries a malformed event for ever stalls its partition. So every failure is put in
one of three classes, and the class alone decides what happens (docs/operations.md, "Delivery"):

- `permanent`: the message itself is wrong (undecodable, fails its schema, or a handler says so with
  `PermanentError`). Dead-lettered at once.
- `deterministic`: the same input fails the same way in the database (a constraint or data error).
  Retried a few times (a concurrent writer may have caused it), then dead-lettered.
- `transient`: anything else, above all a dependency that cannot be reached (connection refused or
  reset, timeouts, throttling). Retried with capped exponential backoff for as long as it takes; the
  partition waits and says so. An unknown error is treated as transient on purpose: a stalled
  partition is loud and loses nothing, a dead-lettered event is quiet.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ValidationError

Kind = Literal["permanent", "deterministic", "transient"]


class PermanentError(Exception):
    """The message can never succeed (bad payload, unknown type): skip the retries, go to the DLQ."""


class TransientError(Exception):
    """A dependency is unavailable for now: wait and try again, never dead-letter."""


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen and len(seen) < 10:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def classify(exc: BaseException) -> Kind:
    """The class of a failure (see the module docstring)."""
    from sqlalchemy import exc as sa

    first = exc
    if isinstance(first, PermanentError | ValidationError):
        return "permanent"
    chain = _chain(first)
    if any(isinstance(e, TransientError | OSError | TimeoutError) for e in chain):
        return "transient"
    if isinstance(first, sa.DBAPIError) and first.connection_invalidated:
        return "transient"
    if isinstance(first, sa.IntegrityError | sa.DataError | sa.ProgrammingError):
        return "deterministic"
    # asyncpg's errors reach SQLAlchemy as a generic DBAPIError: the SQLSTATE class says what happened.
    state = next((str(s) for e in chain if (s := getattr(e, "sqlstate", None))), "")
    if state[:2] in _DETERMINISTIC_SQLSTATE:
        return "deterministic"
    return "transient"


# Cardinality, data, integrity, syntax/access, unsupported feature, WITH CHECK OPTION: the same statement fails
# the same way again. Connection (08), resources (53), operator intervention (57), rollbacks (40) pass.
_DETERMINISTIC_SQLSTATE = frozenset({"21", "22", "23", "42", "0A", "44"})


def dependency_of(exc: BaseException) -> str:
    """A short name for what failed, for log lines and the readiness body."""
    names = " ".join(f"{type(e).__module__}.{type(e).__name__}" for e in _chain(exc)).lower()
    for needle, what in (("sqlalchemy", "database"), ("asyncpg", "database"), ("minio", "object_store"),
                         ("urllib3", "object_store"), ("kafka", "broker"), ("httpx", "http")):
        if needle in names:
            return what
    if any(isinstance(e, TimeoutError) for e in _chain(exc)):
        return "timeout"
    if any(isinstance(e, OSError) for e in _chain(exc)):
        return "network"
    return "handler"


def backoff(attempt: int, *, first: float, cap: float) -> float:
    """Delay before retry `attempt` (1-based): doubling from `first`, never above `cap`."""
    return float(min(cap, first * 2 ** min(attempt - 1, 30)))


def park_reason(exc: BaseException) -> str | None:
    """Why the broker will never take this record (too large, invalid), or None when it may later."""
    from aiokafka import errors as ke

    for e in _chain(exc):
        if isinstance(e, ke.MessageSizeTooLargeError | ke.RecordListTooLargeError | ke.RecordTooLargeError):
            return "too_large"
        if isinstance(e, ke.InvalidTopicError | ke.CorruptRecordException):
            return "invalid"
    return None

"""How large an event may be: the stated bound every event stays under, far below the topics' limit.

Topics take records up to `max.message.bytes` (8 MiB, `kafka_max_request_size`); a record the broker refuses
is parked by the outbox, so an event that can grow with its case is a delivery that fails for that case.
Every event is therefore bounded by what the gateway accepts (text lengths, studies, images per case, playlist
size, reasons): tests/unit/platform/test_event_sizes.py builds each event from its worst-case inputs and holds
its encoded envelope under `MAX_EVENT_BYTES`. Bulk goes by reference instead (`casebook_events.claims`).
"""

from __future__ import annotations

from pydantic import BaseModel

from casebook_events.envelope import encode, make_envelope

MAX_EVENT_BYTES = 1024 * 1024  # 1 MiB: an eighth of the topics' max.message.bytes
# `case.anonymised` lists one salted digest per identifying word of its input; an input with more than this
# is quarantined (`too_many_identifiers`) rather than published with a list that could outgrow the bound.
MAX_IDENTIFIER_DIGESTS = 2000


def encoded_size(event: BaseModel, *, key: str, producer: str = "gateway") -> int:
    """Bytes of the event on the wire, in its envelope."""
    return len(encode(make_envelope(event, producer=producer, key=key)))

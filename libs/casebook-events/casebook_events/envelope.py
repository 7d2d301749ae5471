"""The one envelope every event travels in, and its (de)serialisation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Envelope(BaseModel):
    """What goes on the wire: identity, type and version, origin, the key, the payload."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str = Field(description="UUID of this event; consumers record it to stay idempotent.")
    type: str = Field(description="The event type, equal to its topic name, e.g. `case.uploaded`.")
    version: int = Field(1, description="The payload's schema version.")
    occurred_at: datetime = Field(description="When the state change happened (UTC).")
    producer: str = Field(description="The producing service.")
    key: str = Field(description="The partition key: the case id, or the owning entity's id.")
    payload: dict[str, Any] = Field(description="The event model, as JSON.")

    def model(self) -> BaseModel:
        """The payload parsed into its registered model.

        Raises:
            KeyError: the type is not registered.
            pydantic.ValidationError: the payload does not match its model.
        """
        from casebook_events.topics import model_for

        return model_for(self.type, self.version).model_validate(self.payload)


def make_envelope(event: BaseModel, *, producer: str, key: str, occurred_at: datetime | None = None) -> Envelope:
    """Wrap an event model, looking up its topic and version in the registry."""
    from casebook_events.topics import spec_for_model

    spec = spec_for_model(type(event))
    return Envelope(
        event_id=str(uuid.uuid4()),
        type=spec.topic,
        version=spec.version,
        occurred_at=occurred_at or datetime.now(UTC),
        producer=producer,
        key=key,
        payload=event.model_dump(mode="json"),
    )


def encode(envelope: Envelope) -> bytes:
    """Serialise an envelope to JSON bytes."""
    return envelope.model_dump_json().encode()


def decode(data: bytes) -> Envelope:
    """Parse JSON bytes into an envelope.

    Raises:
        pydantic.ValidationError: not a valid envelope.
    """
    return Envelope.model_validate_json(data)

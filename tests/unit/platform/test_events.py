"""The schema library: every registered example validates, envelopes round-trip, models are frozen and strict."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from casebook_events import REGISTRY, TOPICS, CaseDeleted, Envelope, decode, encode, make_envelope, model_for
from casebook_events.topics import Topic, consumed_by


@pytest.mark.parametrize("spec", TOPICS, ids=lambda s: s.topic)
def test_every_example_validates_and_round_trips(spec) -> None:
    event = spec.model.model_validate(spec.example)
    env = make_envelope(event, producer=spec.producers[0], key=spec.example[spec.key])
    back = decode(encode(env))
    assert back == env
    assert back.model() == event
    assert back.type == spec.topic and back.version == spec.version


def test_every_topic_of_the_design_is_registered_once() -> None:
    assert {t.topic for t in TOPICS} == {t.value for t in Topic}
    assert len(REGISTRY) == len(TOPICS) == 15  # export.requested has versions 1 and 2


def test_events_are_frozen_and_reject_unknown_fields() -> None:
    e = CaseDeleted(case_id="c", owner_id="u", deleted_by="u")
    with pytest.raises(ValidationError):
        e.case_id = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        CaseDeleted(case_id="c", owner_id="u", deleted_by="u", status="approved")  # type: ignore[call-arg]


def test_envelope_rejects_garbage_and_unknown_types() -> None:
    with pytest.raises(ValidationError):
        decode(b'{"not": "an envelope"}')
    env = Envelope.model_validate({**make_envelope(CaseDeleted(case_id="c", owner_id="u", deleted_by="u"),
                                                   producer="p", key="c").model_dump(), "type": "case.nope"})
    with pytest.raises(KeyError):
        env.model()
    with pytest.raises(KeyError):
        model_for("case.deleted", 99)


def test_consumers_per_service_follow_the_design() -> None:
    assert set(consumed_by("anonymiser")) == {"case.uploaded"}
    assert set(consumed_by("export")) == {"export.requested", "case.deleted"}  # a deleted case takes its exports
    assert {"case.approved", "case.deleted"} <= set(consumed_by("featuring"))
    assert {"case.approved", "case.deleted"} <= set(consumed_by("achievements"))
    assert {"case.submitted", "case.anonymised", "case.quarantined"} <= set(consumed_by("moderation"))

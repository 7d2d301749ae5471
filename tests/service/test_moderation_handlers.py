"""Moderation's handlers on the in-memory broker: checks once every image is in, duplicates, withdrawal, deletion."""

from __future__ import annotations

from typing import Any

import pytest
from service_tier import running

from casebook_events import (
    CaseAnonymised,
    CaseDeleted,
    CaseQuarantined,
    CaseRejected,
    CaseSnapshot,
    CaseSubmitted,
    CaseUpdated,
    Topic,
)
from casebook_moderation.adapters.memory import MemoryQueue
from casebook_moderation.handlers import handlers
from casebook_moderation.metrics import domain_metrics
from casebook_platform.metrics import Metrics

pytestmark = pytest.mark.service

GOOD = CaseSnapshot(title="Osteoid osteoma", presentation="Night pain relieved by aspirin.", patient_age=15,
                    patient_sex="male", systems=["musculoskeletal"], diagnosis="Osteoid osteoma",
                    diagnostic_certainty="certain", discussion="Classic nidus with surrounding sclerosis.")


def submitted(revision: int = 1, images: tuple[str, ...] = ("i_1", "i_2"), **case: Any) -> CaseSubmitted:
    return CaseSubmitted(case_id="c_1", owner_id="alice", owner_name="Alice", revision=revision,
                         case=GOOD.model_copy(update=case), image_ids=list(images))


def ready(image_id: str, flags: tuple[str, ...] = ()) -> CaseAnonymised:
    return CaseAnonymised(case_id="c_1", image_id=image_id, study_id="s_1", object_key=f"c_1/{image_id}",
                          media_type="application/dicom", size=1000, sha256="0" * 64, modality="CT",
                          flags=list(flags))


def quarantined(image_id: str) -> CaseQuarantined:
    return CaseQuarantined(case_id="c_1", image_id=image_id, study_id="s_1", reasons=["burned_in_text"])


def withdrawn(revision: int) -> CaseUpdated:
    return CaseUpdated(case_id="c_1", owner_id="alice", revision=revision, status="draft", visibility="draft",
                       listed_public=False)


def _run(queue: MemoryQueue):  # type: ignore[no-untyped-def]
    return running("moderation", handlers(queue=queue, metrics=domain_metrics(Metrics("moderation"))),
                   stores=[queue], watch=[Topic.CASE_REJECTED, Topic.CASE_APPROVED])


def codes(rejection: CaseRejected) -> list[str]:
    return [r.code for r in rejection.reasons]


async def test_checks_run_once_the_last_image_is_in_whatever_the_order() -> None:
    queue = MemoryQueue()
    async with _run(queue) as svc:
        await svc.send(ready("i_2"))  # an image reported before its submission
        await svc.send(submitted())
        assert queue.items["c_1"].state == "checking"  # i_1 still processing
        await svc.send(ready("i_1"))
        item = queue.items["c_1"]
        assert item.state == "waiting" and all(c["passed"] for c in item.checks)
        assert svc.events(Topic.CASE_REJECTED) == [] and queue.decisions == []


async def test_a_failing_check_returns_the_case_once_however_often_events_arrive() -> None:
    queue = MemoryQueue()
    async with _run(queue) as svc:
        sub = await svc.send(submitted(images=("i_1",), diagnostic_certainty="possible"))
        img = await svc.send(ready("i_1"))
        await svc.redeliver(img)
        await svc.redeliver(sub)
        await svc.send(submitted(images=("i_1",), diagnostic_certainty="possible"))  # same revision, new id
        [rejection] = svc.events(Topic.CASE_REJECTED)
        assert rejection.automatic and rejection.editor_id is None and codes(rejection) == ["certainty_too_low"]
        assert queue.items["c_1"].state == "rejected" and len(queue.decisions) == 1


async def test_a_quarantine_is_final_even_when_a_ready_report_follows() -> None:
    queue = MemoryQueue()
    async with _run(queue) as svc:
        await svc.send(quarantined("i_1"))
        await svc.send(ready("i_1"))  # a late or replayed success must not undo the quarantine
        await svc.send(submitted(images=("i_1",)))
        [rejection] = svc.events(Topic.CASE_REJECTED)
        assert codes(rejection) == ["image_quarantined"]
        assert "burned_in_text" in rejection.reasons[0].message


async def test_a_withdrawn_submission_stays_out_when_it_arrives_late() -> None:
    queue = MemoryQueue()
    async with _run(queue) as svc:
        await svc.send(withdrawn(revision=3))  # the owner took the case back before its submission was seen
        await svc.send(submitted(revision=2, images=("i_1",)))
        await svc.send(ready("i_1"))
        assert queue.items["c_1"].state == "withdrawn" and queue.items["c_1"].withdrawn_revision == 3
        await svc.send(submitted(revision=4, images=("i_1",)))  # a newer submission enters the queue
        assert queue.items["c_1"].state == "waiting" and queue.items["c_1"].revision == 4


async def test_an_edit_that_keeps_the_case_in_review_does_not_withdraw_it() -> None:
    queue = MemoryQueue()
    async with _run(queue) as svc:
        await svc.send(submitted(revision=1, images=("i_1",)))
        await svc.send(ready("i_1"))
        await svc.send(CaseUpdated(case_id="c_1", owner_id="alice", revision=2, status="in_review",
                                   visibility="public", listed_public=False))
        assert queue.items["c_1"].state == "waiting"


async def test_a_deletion_is_final() -> None:
    queue = MemoryQueue()
    async with _run(queue) as svc:
        await svc.send(submitted(revision=1, images=("i_1",)))
        await svc.send(CaseDeleted(case_id="c_1", owner_id="alice", deleted_by="alice"))
        await svc.send(ready("i_1"))
        await svc.send(submitted(revision=2, images=("i_1",)))
        assert queue.items["c_1"].state == "deleted"
        assert svc.events(Topic.CASE_REJECTED) == [] and svc.events(Topic.CASE_APPROVED) == []

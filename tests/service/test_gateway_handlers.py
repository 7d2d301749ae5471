"""The gateway's handlers on the in-memory broker: images, editorial decisions, featuring history, exports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import pytest
from gateway_events import AT, FIX, anonymised, approval, rejection
from service_tier import Running, running

from casebook_events import (
    CaseFeatured,
    CaseOfTheMonthPicked,
    CaseQuarantined,
    ExportFailed,
    ExportReady,
    Topic,
)
from casebook_gateway.adapters.memory import MemoryImages, MemoryReadModel
from casebook_gateway.handlers import handlers
from casebook_gateway.metrics import domain_metrics
from casebook_platform.metrics import Metrics

pytestmark = pytest.mark.service

V1 = {"title": "Osteoid osteoma", "diagnosis": "Osteoid osteoma", "image_ids": ["i_1"]}
V2 = {"title": "Osteoid osteoma of the femur", "diagnosis": "Osteoid osteoma", "image_ids": ["i_1", "i_2"]}


@dataclass
class Gateway:
    svc: Running
    rm: MemoryReadModel
    objects: MemoryImages
    metrics: Metrics

    def count(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


@asynccontextmanager
async def gateway() -> AsyncIterator[Gateway]:
    rm, objects, metrics = MemoryReadModel(), MemoryImages("c_1/i_1", "c_1/i_1.deid-report.json"), Metrics("gateway")
    async with running("gateway", handlers(store=lambda d: rm, objects=objects, metrics=domain_metrics(metrics)),
                       stores=[rm]) as svc:
        yield Gateway(svc, rm, objects, metrics)


def in_review(gw: Gateway, revision: int = 1, **values: object) -> None:
    """A case whose revision `revision` waits for an editor (revision 1 frozen as V1, later ones as V2)."""
    gw.rm.add_case("c_1", status="in_review", visibility="public", revision=revision, title="working copy",
                   moderation_reasons=[{"code": "old", "message": "an earlier rejection"}], **values)
    gw.rm.add_revision("c_1", revision, content=V1 if revision == 1 else V2)


async def test_an_anonymised_image_becomes_ready_with_what_the_anonymiser_read() -> None:
    async with gateway() as gw:
        in_review(gw)
        gw.rm.add_image("i_1", "c_1")
        await gw.svc.send(anonymised())
        image = gw.rm.images["i_1"]
        assert image["status"] == "ready" and image["reasons"] == [] and image["object_key"] == "c_1/i_1"
        assert (image["media_type"], image["size"], image["sha256"]) == ("application/dicom", 51234, "ab" * 32)
        assert (image["modality"], image["series_uid"], image["series_number"], image["series_description"],
                image["instance_number"], image["rows"], image["columns"], image["frames"]) == (
            "CT", "2.25.1", 3, "Axial bone", 7, 512, 512, 2)
        assert gw.count("casebook_gateway_images_ready_total") == 1
        assert gw.objects.deleted == [] and gw.objects.keys == {"c_1/i_1", "c_1/i_1.deid-report.json"}


async def test_an_image_of_a_deleted_case_has_its_copy_and_report_removed() -> None:
    async with gateway() as gw:
        in_review(gw)
        gw.rm.add_image("i_1", "c_1")
        gw.rm.delete_case("c_1")  # deleted while the anonymiser worked on it
        await gw.svc.send(anonymised())
        assert gw.objects.deleted == ["c_1/i_1", "c_1/i_1.deid-report.json"] and gw.objects.keys == set()
        assert gw.rm.images == {} and gw.count("casebook_gateway_images_ready_total") == 0


async def test_a_quarantined_image_keeps_its_reasons_and_counts_each() -> None:
    async with gateway() as gw:
        in_review(gw)
        gw.rm.add_image("i_1", "c_1")
        gw.rm.add_image("i_2", "c_1")
        await gw.svc.send(CaseQuarantined(case_id="c_1", image_id="i_1", study_id="s_1",
                                          reasons=["burned_in_text", "invalid_dicom"]))
        await gw.svc.send(CaseQuarantined(case_id="c_1", image_id="i_2", study_id="s_1", reasons=["burned_in_text"]))
        assert gw.rm.images["i_1"]["status"] == "quarantined"
        assert gw.rm.images["i_1"]["reasons"] == ["burned_in_text", "invalid_dicom"]
        assert gw.rm.images["i_2"]["reasons"] == ["burned_in_text"]
        assert gw.count("casebook_gateway_images_quarantined_total", reason="burned_in_text") == 2
        assert gw.count("casebook_gateway_images_quarantined_total", reason="invalid_dicom") == 1
        assert gw.objects.deleted == []


async def test_approving_the_current_revision_publishes_it_as_frozen() -> None:
    async with gateway() as gw:
        in_review(gw)
        await gw.svc.send(approval(1))
        case = gw.rm.cases["c_1"]
        assert case["status"] == "approved" and case["listed_public"] and case["approved_at"] == AT
        assert case["public_snapshot"] == V1 and case["title"] == "working copy"  # the frozen text, not the row's
        assert case["moderation_reasons"] == []
        rev = gw.rm.revisions[("c_1", 1)]
        assert (rev["status"], rev["decided_by"], rev["decided_at"]) == ("approved", "erin", AT)
        [h] = gw.rm.history
        assert (h["actor"], h["action"], h["from_status"], h["to_status"], h["revision"]) == (
            "erin", "approved", "in_review", "approved", 1)


async def test_approving_an_older_revision_publishes_it_and_leaves_the_newer_one_in_review() -> None:
    async with gateway() as gw:
        in_review(gw, revision=3)
        gw.rm.add_revision("c_1", 2, status="superseded", content=V1)  # raced with the owner's resubmission
        await gw.svc.send(approval(2))
        case = gw.rm.cases["c_1"]
        assert case["listed_public"] and case["public_snapshot"] == V1 and case["approved_at"] == AT
        assert case["status"] == "in_review" and case["revision"] == 3
        assert case["moderation_reasons"] == [{"code": "old", "message": "an earlier rejection"}]
        assert gw.rm.revisions[("c_1", 2)]["status"] == "approved"
        assert gw.rm.revisions[("c_1", 3)]["status"] == "submitted"
        [h] = gw.rm.history
        assert (h["from_status"], h["to_status"], h["revision"]) == ("in_review", "in_review", 2)


async def test_an_approval_after_a_withdrawal_publishes_nothing() -> None:
    async with gateway() as gw:
        # The owner took the case back to draft before the editor's approval arrived.
        gw.rm.add_case("c_1", status="draft", visibility="draft", revision=1)
        gw.rm.add_revision("c_1", 1, status="withdrawn", content=V1)
        gw.rm.add_case("c_2", status="in_review", visibility="public", revision=2)
        gw.rm.add_revision("c_2", 2, status="withdrawn", content=V2)  # public, but that revision was withdrawn
        await gw.svc.send(approval(1))
        await gw.svc.send(approval(2).model_copy(update={"case_id": "c_2"}))
        for case_id, n in (("c_1", 1), ("c_2", 2)):
            assert not gw.rm.cases[case_id]["listed_public"] and gw.rm.cases[case_id]["public_snapshot"] is None
            assert gw.rm.revisions[(case_id, n)]["status"] == "withdrawn"
        assert gw.rm.cases["c_2"]["status"] == "in_review" and gw.rm.history == []


async def test_an_approval_of_a_deleted_case_is_ignored() -> None:
    async with gateway() as gw:
        await gw.svc.send(approval(1))
        assert gw.rm.cases == {} and gw.rm.history == [] and gw.svc.dead_letters(Topic.CASE_APPROVED) == []


async def test_a_rejection_returns_a_never_approved_case_to_its_owner_as_a_draft() -> None:
    async with gateway() as gw:
        in_review(gw)
        await gw.svc.send(rejection(1, editor_id=None))  # the automatic checks
        case = gw.rm.cases["c_1"]
        assert (case["status"], case["visibility"], case["listed_public"]) == ("rejected", "draft", False)
        assert case["moderation_reasons"] == [FIX.model_dump()]
        rev = gw.rm.revisions[("c_1", 1)]
        assert (rev["status"], rev["decided_by"], rev["reasons"]) == ("rejected", "automatic-checks",
                                                                      [FIX.model_dump()])
        [h] = gw.rm.history
        assert (h["actor"], h["action"], h["from_status"], h["to_status"], h["reasons"], h["revision"]) == (
            "automatic-checks", "rejected", "in_review", "rejected", [FIX.model_dump()], 1)


async def test_a_rejected_edit_of_an_approved_case_keeps_the_published_revision_public() -> None:
    async with gateway() as gw:
        in_review(gw, revision=2, listed_public=True, public_snapshot=V1, approved_at=AT)
        await gw.svc.send(rejection(2))
        case = gw.rm.cases["c_1"]
        assert (case["status"], case["visibility"], case["listed_public"]) == ("approved", "public", True)
        assert case["public_snapshot"] == V1 and case["moderation_reasons"] == [FIX.model_dump()]
        assert gw.rm.revisions[("c_1", 2)]["status"] == "rejected"
        [h] = gw.rm.history
        assert (h["actor"], h["from_status"], h["to_status"]) == ("erin", "in_review", "approved")


async def test_rejecting_an_older_revision_is_recorded_on_that_revision_only() -> None:
    async with gateway() as gw:
        in_review(gw, revision=3)
        gw.rm.add_revision("c_1", 2, status="superseded", content=V1)
        await gw.svc.send(rejection(2))
        assert gw.rm.revisions[("c_1", 2)]["status"] == "rejected"
        case = gw.rm.cases["c_1"]
        assert (case["status"], case["visibility"]) == ("in_review", "public") and gw.rm.history == []


async def test_a_decision_on_a_decided_revision_is_ignored() -> None:
    async with gateway() as gw:
        in_review(gw)
        await gw.svc.send(approval(1))
        await gw.svc.send(rejection(1))  # a late rejection of what was approved
        await gw.svc.send(approval(1, at=AT + timedelta(hours=1)))  # a second approval (a new event)
        case = gw.rm.cases["c_1"]
        assert case["status"] == "approved" and case["visibility"] == "public" and case["approved_at"] == AT
        rev = gw.rm.revisions[("c_1", 1)]
        assert (rev["status"], rev["decided_at"], rev["reasons"]) == ("approved", AT, [])
        assert [h["action"] for h in gw.rm.history] == ["approved"]


async def test_featuring_and_the_case_of_the_month_are_written_to_the_history() -> None:
    async with gateway() as gw:
        in_review(gw, listed_public=True)
        await gw.svc.send(CaseFeatured(case_id="c_1", editor_id="erin", title="Osteoid osteoma", featured_at=AT))
        await gw.svc.send(CaseOfTheMonthPicked(case_id="c_1", month="2026-11", picked_by="frank"))
        await gw.svc.send(CaseFeatured(case_id="c_9", editor_id="erin", featured_at=AT))  # deleted meanwhile
        assert [(h["case_id"], h["actor"], h["action"], h["from_status"], h["to_status"]) for h in gw.rm.history] == [
            ("c_1", "erin", "featured", None, None), ("c_1", "frank", "case_of_the_month:2026-11", None, None)]
        assert gw.svc.dead_letters(Topic.CASE_FEATURED) == []


async def test_an_export_becomes_ready_or_failed() -> None:
    async with gateway() as gw:
        gw.rm.add_export("x_1")
        gw.rm.add_export("x_2")
        expires = AT + timedelta(days=7)
        await gw.svc.send(ExportReady(export_id="x_1", object_key="exports/x_1.zip", size=9000, sha256="cd" * 32,
                                      expires_at=expires))
        await gw.svc.send(ExportFailed(export_id="x_2", reason="too_large", message="The archive is too large."))
        assert gw.rm.exports["x_1"] == {"id": "x_1", "status": "ready", "object_key": "exports/x_1.zip",
                                        "expires_at": expires, "error": None}
        assert gw.rm.exports["x_2"] == {"id": "x_2", "status": "failed", "object_key": None, "expires_at": None,
                                        "error": "too_large"}

"""Moderation, featuring and achievements as real processes on the real broker, object store and database.

Events go in as encoded envelopes through a real producer (key = case id, as the gateway and the anonymiser
send them); effects are read back through each service's HTTP API, and produced events by consuming the
output topics with a fresh consumer group from `earliest`. Every test uses its own ids, because the stack
(and its topics) is shared with other tests.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from atom_feed import parse_atom
from harness import ServiceProcess, fresh_database, wait_for
from pydantic import BaseModel

from casebook_events import (
    CaseAnonymised,
    CaseApproved,
    CaseDeleted,
    CaseQuarantined,
    CaseSnapshot,
    CaseSubmitted,
    CaseUpdated,
    Envelope,
    decode,
    encode,
    make_envelope,
)
from casebook_platform.identifiers import identifier_digests

pytestmark = pytest.mark.integration

# Ports of this module's processes: clear of the `platform` fixture (18080-18085).
PORTS = {"moderation": 18182, "featuring": 18183, "achievements": 18184}
REPLAY_PORTS = {"featuring": 18185, "achievements": 18186}
# A fresh consumer group first replays the shared topics' whole history (~20 events/s on the embedded broker).
EVENT_TIMEOUT = 120.0


def uid(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


# Producer names of the services these tests start: the platform's own services may be running on the
# same topics (an end-to-end session), and their events must not be counted as ours.
PRODUCERS: set[str] = set()


def start_isolated(stack: Any, name: str, port: int) -> ServiceProcess:
    """A service with its own empty database, consumer group and producer name, sharing no work with others."""
    me = f"it-{name}-{uuid.uuid4().hex[:8]}"
    PRODUCERS.add(me)
    env = {"CASEBOOK_DATABASE_URL": fresh_database(stack, f"it_{name}"), "CASEBOOK_CONSUMER_GROUP": me,
           "CASEBOOK_SERVICE_NAME": me}
    return ServiceProcess(stack, name, env=env, port=port)


@pytest.fixture(scope="module")
def editorial(stack: Any, tokens: Any) -> Iterator[dict[str, ServiceProcess]]:
    """The three services, each on its own database and consumer group, caught up with the topics."""
    procs = {name: start_isolated(stack, name, port) for name, port in PORTS.items()}
    try:
        for p in procs.values():
            p.start(wait=False)
        for p in procs.values():
            p.wait_ready()
        wait_caught_up(stack, procs, tokens(uid("ed"), "editor"))
        yield procs
    finally:
        for p in procs.values():
            p.stop()


def wait_caught_up(stack: Any, procs: dict[str, ServiceProcess], editor: str) -> None:
    """Publish markers on every consumed topic and wait for their effects, so each test starts on a consumer
    that has replayed the history (and its own timeouts measure only its own events)."""
    owner, kept, deleted, delisted = uid("u_warm"), uid("c_warm"), uid("c_warm"), uid("c_warm")
    queued, withdrawn = uid("c_warm"), uid("c_warm")
    at = datetime(1999, 6, 15, tzinfo=UTC)
    publish(stack, *(approval(c, owner, at) for c in (kept, deleted, delisted)),
            *(e for c in (queued, withdrawn) for e in (submission(c, owner, ["i1"]), anonymised(c, "i1"))))
    wait_for(lambda: collector(procs["achievements"], owner)["count"] == 3
             and candidate_ids(procs["featuring"], "1999-07") >= {kept, deleted, delisted}
             and {queued, withdrawn} <= set(queue_items(procs["moderation"], editor)),
             timeout=EVENT_TIMEOUT * 2, what="services replaying the topics' history")
    publish(stack, *(envelope(CaseDeleted(case_id=c, owner_id=owner, deleted_by=owner), c) for c in (deleted, queued)),
            *(envelope(CaseUpdated(case_id=c, owner_id=owner, revision=2, status="draft", visibility="draft",
                                   listed_public=False, changed=["visibility"]), c) for c in (delisted, withdrawn)))
    wait_for(lambda: collector(procs["achievements"], owner)["count"] == 1
             and candidate_ids(procs["featuring"], "1999-07") & {kept, deleted, delisted} == {kept}
             and not {queued, withdrawn} & set(queue_items(procs["moderation"], editor)),
             timeout=EVENT_TIMEOUT, what="deletions and de-listings of the markers")


# ---------------------------------------------------------------- events in and out


def envelope(event: BaseModel, key: str, producer: str = "gateway", occurred_at: datetime | None = None) -> Envelope:
    return make_envelope(event, producer=producer, key=key, occurred_at=occurred_at)


def publish(stack: Any, *envelopes: Envelope, same_partition_as: str | None = None) -> None:
    """Send envelopes in order, each to its topic and keyed by its key.

    `same_partition_as` sends them to the partition that key maps to instead, so that a marker event of
    another case is consumed only after that case's earlier events on the same topic.
    """

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{stack.ports.kafka}", acks="all",
                                    enable_idempotence=False)
        await producer.start()
        try:
            for env in envelopes:
                partition = None
                if same_partition_as is not None:
                    partitions = sorted(await producer.partitions_for(env.type))
                    partition = DefaultPartitioner()(same_partition_as.encode(), partitions, partitions)
                await producer.send_and_wait(env.type, encode(env), key=env.key.encode(), partition=partition)
        finally:
            await producer.stop()

    asyncio.run(send())


def consume(stack: Any, topic: str, keys: set[str], until: Callable[[list[Envelope]], bool],
            timeout: float = EVENT_TIMEOUT, settle: float = 2.0) -> list[Envelope]:
    """Envelopes on `topic` with one of `keys` from the services started here, read from the beginning.

    Once `until` holds, keeps reading for `settle` seconds so that an extra (duplicate) event would show.
    """

    async def run() -> list[Envelope]:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=f"127.0.0.1:{stack.ports.kafka}",
                                    group_id=f"it-reader-{uuid.uuid4().hex[:8]}", auto_offset_reset="earliest",
                                    enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=1500)
        await consumer.start()
        found: list[Envelope] = []
        deadline = time.monotonic() + timeout
        settled_at: float | None = None
        try:
            while time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=300)
                for records in batches.values():
                    found += [e for e in (decode(r.value) for r in records if r.key and r.key.decode() in keys)
                              if e.producer in PRODUCERS]
                if settled_at is None and until(found):
                    settled_at = time.monotonic() + settle
                if settled_at is not None and time.monotonic() >= settled_at:
                    return found
            raise AssertionError(f"timed out reading {topic} for {sorted(keys)}; got {[e.payload for e in found]}")
        finally:
            await consumer.stop()

    return asyncio.run(run())


def snapshot(**overrides: Any) -> CaseSnapshot:
    base: dict[str, Any] = {
        "title": "Osteoid osteoma", "presentation": "Night pain relieved by aspirin.", "patient_age": 15,
        "patient_sex": "male", "systems": ["musculoskeletal"], "diagnosis": "Osteoid osteoma",
        "diagnostic_certainty": "certain", "discussion": "Classic nidus with surrounding sclerosis.",
        "findings": ["Lucent nidus in the femoral cortex."],
    }
    return CaseSnapshot.model_validate({**base, **overrides})


def submission(case_id: str, owner: str, image_ids: list[str], revision: int = 1, **case: Any) -> Envelope:
    return envelope(CaseSubmitted(case_id=case_id, owner_id=owner, owner_name=owner.title(), revision=revision,
                                  case=snapshot(**case), image_ids=image_ids), case_id)


def anonymised(case_id: str, image_id: str, flags: list[str] | None = None,
               digests: list[str] | None = None) -> Envelope:
    return envelope(CaseAnonymised(case_id=case_id, image_id=image_id, study_id="s_1",
                                   object_key=f"{case_id}/{image_id}", media_type="application/dicom", size=1000,
                                   sha256="1" * 64, flags=flags or [], identifier_digests=digests or []),
                    case_id, producer="anonymiser")


def quarantined(case_id: str, image_id: str, reasons: list[str]) -> Envelope:
    return envelope(CaseQuarantined(case_id=case_id, image_id=image_id, study_id="s_1", reasons=reasons), case_id,
                    producer="anonymiser")


def approval(case_id: str, owner: str, approved_at: datetime, revision: int = 1, title: str = "") -> Envelope:
    return envelope(CaseApproved(case_id=case_id, owner_id=owner, editor_id="ed_seed", revision=revision,
                                 title=title or f"Case {case_id}", approved_at=approved_at), case_id,
                    producer="moderation")


# ---------------------------------------------------------------- HTTP


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def queue_items(svc: ServiceProcess, token: str) -> dict[str, dict[str, Any]]:
    """Every item of the queue (all pages), by case id."""
    out: dict[str, dict[str, Any]] = {}
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        body = httpx.get(svc.url + "/v1/moderation/queue", params=params, headers=auth(token), timeout=10).json()
        out.update({i["case_id"]: i for i in body["items"]})
        cursor = body["next_cursor"]
        if cursor is None:
            return out


def wait_in_queue(svc: ServiceProcess, token: str, case_id: str,
                  check: Callable[[dict[str, Any]], bool] = lambda _: True) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        item = queue_items(svc, token).get(case_id)
        return item if item is not None and check(item) else None

    item: dict[str, Any] = wait_for(ready, timeout=EVENT_TIMEOUT, what=f"{case_id} in the queue")
    return item


def collector(svc: ServiceProcess, user: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{svc.url}/v1/users/{user}/achievements", timeout=10).json()["collector"]
    return body


def candidate_ids(svc: ServiceProcess, month: str) -> set[str]:
    ids: set[str] = set()
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        body = httpx.get(f"{svc.url}/v1/case-of-the-month/{month}/candidates", params=params, timeout=10).json()
        ids |= {c["case_id"] for c in body["items"]}
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


def featured_ids(svc: ServiceProcess) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        body = httpx.get(f"{svc.url}/v1/featured", params=params, timeout=10).json()
        ids += [c["case_id"] for c in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


# ---------------------------------------------------------------- moderation


def test_failing_checks_return_the_case_at_once(stack: Any, editorial: dict[str, ServiceProcess],
                                                tokens: Any) -> None:
    mod, editor = editorial["moderation"], tokens(uid("ed"), "editor")
    low, dirty, named = uid("c_low"), uid("c_dirty"), uid("c_named")
    owner = uid("u")
    digests = identifier_digests(named, names=["Jonathan Smithers"])
    publish(stack,
            submission(low, owner, ["i1"], diagnostic_certainty="possible"), anonymised(low, "i1"),
            quarantined(dirty, "i1", ["burned_in_text"]), submission(dirty, owner, ["i1"]),
            submission(named, owner, ["i1"], discussion="Mr Smithers recovered."),
            anonymised(named, "i1", digests=digests))

    keys = {low, dirty, named}
    events = consume(stack, "case.rejected", keys, until=lambda f: {e.key for e in f} == keys)
    by_case = {e.key: e.payload for e in events}
    assert len(events) == 3
    assert [r["code"] for r in by_case[low]["reasons"]] == ["certainty_too_low"]
    assert [r["code"] for r in by_case[dirty]["reasons"]] == ["image_quarantined"]
    assert [r["code"] for r in by_case[named]["reasons"]] == ["identifier_in_text"]
    assert "Smithers" not in by_case[named]["reasons"][0]["message"]
    assert all(p["automatic"] and p["editor_id"] is None and p["owner_id"] == owner for p in by_case.values())

    assert not keys & set(queue_items(mod, editor))
    r = httpx.post(f"{mod.url}/v1/moderation/{low}/claim", headers=auth(editor), timeout=10)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    metrics = httpx.get(mod.url + "/metrics", timeout=10).text
    assert 'casebook_cases_rejected_total{kind="automatic"}' in metrics


def test_checks_wait_for_the_last_image_in_any_order(stack: Any, editorial: dict[str, ServiceProcess],
                                                     tokens: Any) -> None:
    mod, editor = editorial["moderation"], tokens(uid("ed"), "editor")
    case_id, marker = uid("c_wait"), uid("c_marker")
    # One image is reported before the submission arrives, the other is still processing.
    publish(stack, anonymised(case_id, "i1"), submission(case_id, uid("u"), ["i1", "i2"]))
    publish(stack, submission(marker, uid("u"), [], diagnostic_certainty="possible"),
            same_partition_as=case_id)
    consume(stack, "case.rejected", {marker}, until=bool, settle=0.5)
    assert case_id not in queue_items(mod, editor), "checks must not run before every image is reported"

    publish(stack, anonymised(case_id, "i2"))
    item = wait_in_queue(mod, editor, case_id)
    assert item["revision"] == 1 and item["claimed_by"] is None
    assert {c["code"] for c in item["checks"]} >= {"certainty_too_low", "no_images", "image_quarantined"}
    assert all(c["passed"] for c in item["checks"])


def test_one_case_applies_in_order_and_duplicates_change_nothing(stack: Any, editorial: dict[str, ServiceProcess],
                                                                 tokens: Any) -> None:
    mod, editor = editorial["moderation"], tokens(uid("ed"), "editor")
    case_id, owner = uid("c_rev"), uid("u")
    rev2 = submission(case_id, owner, ["i1"], revision=2, title="Second revision")
    publish(stack, anonymised(case_id, "i1"), submission(case_id, owner, ["i1"], revision=1, title="First"), rev2)
    item = wait_in_queue(mod, editor, case_id, lambda i: i["revision"] == 2)
    assert item["title"] == "Second revision"

    # A stale resubmission and a redelivered rev 2, then a marker on the same partition to know they were seen.
    marker = uid("c_marker")
    publish(stack, submission(case_id, owner, ["i1"], revision=1, title="Stale"), rev2, rev2,
            submission(marker, owner, [], diagnostic_certainty="possible"), same_partition_as=case_id)
    consume(stack, "case.rejected", {marker, case_id}, until=lambda f: marker in {e.key for e in f}, settle=0.5)
    item = queue_items(mod, editor)[case_id]
    assert (item["revision"], item["title"]) == (2, "Second revision")
    assert datetime.fromisoformat(item["submitted_at"]) == rev2.occurred_at


def test_claim_race_has_one_winner_and_one_approval(stack: Any, editorial: dict[str, ServiceProcess],
                                                    tokens: Any) -> None:
    mod, feat, ach = editorial["moderation"], editorial["featuring"], editorial["achievements"]
    case_id, owner = uid("c_race"), uid("u")
    eds = {uid("ed_a"): None, uid("ed_b"): None}
    tok = {ed: tokens(ed, "editor") for ed in eds}
    publish(stack, submission(case_id, owner, ["i1"], title="Race case"), anonymised(case_id, "i1"))
    wait_in_queue(mod, next(iter(tok.values())), case_id)

    assert httpx.post(f"{mod.url}/v1/moderation/{case_id}/claim", timeout=10).status_code == 401
    r = httpx.post(f"{mod.url}/v1/moderation/{case_id}/claim", headers=auth(tokens(owner)), timeout=10)
    assert r.status_code == 403 and r.json()["error"]["code"] == "role_required"

    barrier = threading.Barrier(len(tok))

    def claim(ed: str) -> tuple[str, httpx.Response]:
        barrier.wait()
        return ed, httpx.post(f"{mod.url}/v1/moderation/{case_id}/claim", headers=auth(tok[ed]), timeout=10)

    with ThreadPoolExecutor(len(tok)) as pool:
        results = dict(pool.map(claim, tok))
    assert sorted(r.status_code for r in results.values()) == [200, 409]
    winner = next(ed for ed, r in results.items() if r.status_code == 200)
    loser = next(ed for ed in tok if ed != winner)
    assert results[loser].json()["error"]["code"] == "already_claimed"
    assert results[winner].json()["claimed_by"] == winner

    item = queue_items(mod, tok[loser])[case_id]
    assert item["claimed_by"] == winner and item["claim_expires_at"]
    r = httpx.post(f"{mod.url}/v1/moderation/{case_id}/approve", headers=auth(tok[loser]), timeout=10)
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_claimed"
    again = httpx.post(f"{mod.url}/v1/moderation/{case_id}/claim", headers=auth(tok[winner]), timeout=10)
    assert again.status_code == 200 and again.json()["claim_expires_at"] >= item["claim_expires_at"]

    r = httpx.post(f"{mod.url}/v1/moderation/{case_id}/approve", headers=auth(tok[winner]), timeout=10)
    assert r.status_code == 200, r.text
    assert httpx.post(f"{mod.url}/v1/moderation/{case_id}/approve", headers=auth(tok[winner]),
                      timeout=10).status_code == 404
    assert case_id not in queue_items(mod, tok[winner])

    approvals = consume(stack, "case.approved", {case_id}, until=bool)
    assert len(approvals) == 1
    p = approvals[0].payload
    assert (p["editor_id"], p["owner_id"], p["revision"], p["title"]) == (winner, owner, 1, "Race case")

    # The approval reaches the other editorial services.
    now = datetime.now(UTC)
    next_month = f"{now.year + now.month // 12}-{now.month % 12 + 1:02d}"
    wait_for(lambda: case_id in candidate_ids(feat, next_month), timeout=EVENT_TIMEOUT, what="featuring candidate")
    wait_for(lambda: collector(ach, owner)["count"] == 1, timeout=EVENT_TIMEOUT, what="collector count")
    assert "casebook_cases_approved_total 1.0" in httpx.get(mod.url + "/metrics", timeout=10).text


def test_editor_rejection_needs_reasons(stack: Any, editorial: dict[str, ServiceProcess], tokens: Any) -> None:
    mod, ed = editorial["moderation"], uid("ed")
    editor = tokens(ed, "editor")
    case_id = uid("c_rej")
    publish(stack, submission(case_id, uid("u"), ["i1"]), anonymised(case_id, "i1"))
    wait_in_queue(mod, editor, case_id)
    url = f"{mod.url}/v1/moderation/{case_id}/reject"
    reason = {"code": "poor_image_quality", "message": "Window the CT for bone."}
    for bad in ({"reasons": []}, {}, {"reasons": [{**reason, "severity": "high"}]},
                {"reasons": [reason], "note": "extra"}, {"reasons": [{"code": "x"}]},
                {"reasons": [{"code": "x", "message": "   "}]}, {"reasons": None}):
        r = httpx.post(url, json=bad, headers=auth(editor), timeout=10)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request", bad
    r = httpx.post(url, json={"reasons": [reason]}, headers=auth(editor), timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert httpx.post(url, json={"reasons": [reason]}, headers=auth(editor), timeout=10).status_code == 404

    rejected = consume(stack, "case.rejected", {case_id}, until=bool)
    assert len(rejected) == 1
    assert rejected[0].payload["automatic"] is False and rejected[0].payload["editor_id"] == ed
    assert rejected[0].payload["reasons"] == [reason]


def test_editors_never_decide_their_own_cases(stack: Any, editorial: dict[str, ServiceProcess],
                                             tokens: Any) -> None:
    mod, ach, owner = editorial["moderation"], editorial["achievements"], uid("ed")
    owner_token, other = tokens(owner, "contributor,editor"), tokens(uid("ed"), "editor")
    case_id = uid("c_own")
    publish(stack, submission(case_id, owner, ["i1"]), anonymised(case_id, "i1"))
    wait_in_queue(mod, other, case_id)
    reason = {"reasons": [{"code": "poor_image_quality", "message": "Window the CT for bone."}]}
    for action, body in (("claim", None), ("approve", None), ("reject", reason)):
        r = httpx.post(f"{mod.url}/v1/moderation/{case_id}/{action}", json=body, headers=auth(owner_token),
                       timeout=10)
        assert r.status_code == 403 and r.json()["error"]["code"] == "own_case", (action, r.text)
    # another editor may decide; the owner's Collector count moves with that approval only
    r = httpx.post(f"{mod.url}/v1/moderation/{case_id}/approve", headers=auth(other), timeout=10)
    assert r.status_code == 200, r.text
    wait_for(lambda: collector(ach, owner)["count"] == 1, timeout=EVENT_TIMEOUT, what="collector count")


def test_a_replayed_self_approval_earns_nothing(stack: Any, editorial: dict[str, ServiceProcess]) -> None:
    ach, owner = editorial["achievements"], uid("ed")
    self_approved, approved = uid("c_self"), uid("c_ok")
    publish(stack, envelope(CaseApproved(case_id=self_approved, owner_id=owner, editor_id=owner, revision=1,
                                         title="Self", approved_at=datetime.now(UTC)), self_approved,
                            producer="moderation"),
            approval(approved, owner, datetime.now(UTC)))
    wait_for(lambda: collector(ach, owner)["count"] == 1, timeout=EVENT_TIMEOUT, what="collector count")
    time.sleep(1)
    assert collector(ach, owner)["count"] == 1


def test_deletion_and_resubmission_replace_the_item(stack: Any, editorial: dict[str, ServiceProcess],
                                                    tokens: Any) -> None:
    mod, editor = editorial["moderation"], tokens(uid("ed"), "editor")
    gone, owner = uid("c_gone"), uid("u")
    publish(stack, submission(gone, owner, ["i1"]), anonymised(gone, "i1"))
    wait_in_queue(mod, editor, gone)
    publish(stack, envelope(CaseDeleted(case_id=gone, owner_id=owner, deleted_by=owner), gone))
    wait_for(lambda: gone not in queue_items(mod, editor), timeout=EVENT_TIMEOUT, what="deleted case leaves")
    # A late submission of the deleted case stays out.
    publish(stack, submission(gone, owner, ["i1"], revision=5))
    marker = uid("c_marker")
    publish(stack, submission(marker, owner, [], diagnostic_certainty="possible"),
            same_partition_as=gone)
    consume(stack, "case.rejected", {marker}, until=bool, settle=0.5)
    assert gone not in queue_items(mod, editor)


# ---------------------------------------------------------------- featuring


def test_featuring_and_case_of_the_month(stack: Any, editorial: dict[str, ServiceProcess], tokens: Any) -> None:
    feat, ed = editorial["featuring"], uid("ed")
    editor, contributor = tokens(ed, "editor"), tokens(uid("u"), "contributor")
    owner = uid("u")
    dec_a, dec_b, jan = uid("c_dec_a"), uid("c_dec_b"), uid("c_jan")
    publish(stack,
            approval(dec_a, owner, datetime(2030, 12, 1, 0, 0, tzinfo=UTC), title="December A"),
            approval(dec_b, owner, datetime(2030, 12, 31, 23, 59, tzinfo=UTC), title="December B"),
            approval(jan, owner, datetime(2031, 1, 1, 0, 0, tzinfo=UTC), title="January"))
    wait_for(lambda: {dec_a, dec_b} <= candidate_ids(feat, "2031-01"), timeout=EVENT_TIMEOUT, what="candidates")
    wait_for(lambda: jan in candidate_ids(feat, "2031-02"), timeout=EVENT_TIMEOUT, what="january approval")
    assert jan not in candidate_ids(feat, "2031-01")

    def feature(case_id: str, token: str = editor) -> httpx.Response:
        return httpx.post(feat.url + "/v1/featured", json={"case_id": case_id}, headers=auth(token), timeout=10)

    assert feature(dec_a, contributor).status_code == 403
    r = feature(uid("c_unknown"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "not_approved"
    first = feature(dec_a)
    assert first.status_code == 201 and first.json()["featured_by"] == ed and first.json()["title"] == "December A"
    second = feature(dec_a)
    assert second.status_code == 200 and second.json() == first.json()
    assert feature(dec_b).status_code == 201
    mine = [c for c in featured_ids(feat) if c in {dec_a, dec_b}]
    assert mine == [dec_b, dec_a], "newest first"

    def pick(month: str, case_id: str, token: str = editor) -> httpx.Response:
        return httpx.put(f"{feat.url}/v1/case-of-the-month/{month}", json={"case_id": case_id},
                         headers=auth(token), timeout=10)

    for month, case_id, code in (("2031-01", jan, "not_from_preceding_month"),
                                 ("2030-12", dec_a, "not_from_preceding_month"),
                                 ("2031-01", uid("c_unknown"), "not_approved"),
                                 ("2031-13", dec_a, "invalid_request"), ("2031-1", dec_a, "invalid_request")):
        r = pick(month, case_id)
        assert r.status_code == 422 and r.json()["error"]["code"] == code, (month, r.text)
    assert pick("2031-01", dec_a, contributor).status_code == 403
    assert pick("2031-01", dec_a).status_code == 200
    r = pick("2031-01", dec_b)
    assert r.status_code == 200 and r.json()["case_id"] == dec_b and r.json()["picked_by"] == ed
    assert httpx.get(f"{feat.url}/v1/case-of-the-month/2031-01", timeout=10).json()["case_id"] == dec_b
    r = httpx.get(f"{feat.url}/v1/case-of-the-month/2031-03", timeout=10)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert httpx.get(f"{feat.url}/v1/case-of-the-month/2031-13", timeout=10).status_code == 422

    def feed(**params: Any) -> list[tuple[str, str, str]]:
        r = httpx.get(f"{feat.url}/v1/featured.atom", params={"limit": 100, **params}, timeout=10)
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml"), r.text
        _, entries = parse_atom(r.content)  # valid Atom, newest entry first
        return [(e.category, e.link.rsplit("/cases/", 1)[1], e.title) for e in entries
                if e.link.rsplit("/cases/", 1)[1] in {dec_a, dec_b}]

    # Featured entries count as updated at the case's (future-dated) approval, after the picks made now.
    assert feed() == [("featured", dec_b, "December B"), ("featured", dec_a, "December A"),
                      ("case-of-the-month", dec_b, "Case of the Month, January 2031: December B")]
    r = httpx.get(f"{feat.url}/v1/featured.atom", params={"limit": 0}, timeout=10)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"

    # Deleting the picked case removes it from the featured list; the pick stays as history.
    publish(stack, envelope(CaseDeleted(case_id=dec_b, owner_id=owner, deleted_by=owner), dec_b),
            envelope(CaseUpdated(case_id=dec_a, owner_id=owner, revision=2, status="draft", visibility="draft",
                                 listed_public=False, changed=["visibility"]), dec_a))
    wait_for(lambda: not {dec_a, dec_b} & set(featured_ids(feat)), timeout=EVENT_TIMEOUT, what="leave featured")
    assert not {dec_a, dec_b} & candidate_ids(feat, "2031-01")
    assert httpx.get(f"{feat.url}/v1/case-of-the-month/2031-01", timeout=10).json()["case_id"] == dec_b
    assert feed() == [], "a removed case leaves the feed, its pick included"
    assert feature(dec_b).json()["error"]["code"] == "not_approved"
    # A stale approval of the de-listed revision does not bring it back.
    marker = uid("c_marker")
    publish(stack, approval(dec_a, owner, datetime(2030, 12, 1, tzinfo=UTC), revision=1),
            approval(marker, owner, datetime(2030, 12, 2, tzinfo=UTC)), same_partition_as=dec_a)
    wait_for(lambda: marker in candidate_ids(feat, "2031-01"), timeout=EVENT_TIMEOUT, what="marker approval")
    assert dec_a not in candidate_ids(feat, "2031-01")

    featured = consume(stack, "case.featured", {dec_a, dec_b}, until=lambda f: len(f) >= 2)
    assert sorted(e.key for e in featured) == sorted([dec_a, dec_b]), "featuring twice announces once"
    picks = consume(stack, "case.of_the_month", {dec_a, dec_b}, until=lambda f: len(f) >= 2)
    assert sorted((e.key, e.payload["month"], e.payload["picked_by"]) for e in picks) == sorted(
        [(dec_a, "2031-01", ed), (dec_b, "2031-01", ed)]), "each PUT announces its pick"


# ---------------------------------------------------------------- achievements and replay


@pytest.mark.slow
def test_duplicates_count_once_and_a_full_replay_agrees(stack: Any, editorial: dict[str, ServiceProcess]) -> None:
    ach, feat = editorial["achievements"], editorial["featuring"]
    alice, bob = uid("u_alice"), uid("u_bob")
    at = datetime(2032, 5, 10, tzinfo=UTC)
    a_cases = [uid("c_a") for _ in range(4)]
    b_case = uid("c_b")
    first = approval(a_cases[0], alice, at)
    publish(stack, first, first, *(approval(c, alice, at) for c in a_cases[1:]), first,
            approval(b_case, bob, at),
            envelope(CaseDeleted(case_id=a_cases[3], owner_id=alice, deleted_by=alice), a_cases[3]))
    wait_for(lambda: collector(ach, alice)["count"] == 3 and collector(ach, bob)["count"] == 1,
             timeout=EVENT_TIMEOUT, what="collector counts")
    time.sleep(1.5)  # a duplicate that counted twice would show by now
    assert collector(ach, alice) == {"count": 3, "level": 2, "tier": "bronze", "next_level_at": 6}
    assert collector(ach, bob) == {"count": 1, "level": 1, "tier": "bronze", "next_level_at": 3}

    awarded = consume(stack, "achievement.awarded", {alice, bob}, until=lambda f: len(f) >= 3)
    assert sorted((e.key, e.payload["level"]) for e in awarded) == sorted([(alice, 1), (alice, 2), (bob, 1)])

    replicas = [start_isolated(stack, name, port) for name, port in REPLAY_PORTS.items()]
    try:
        for p in replicas:
            p.start()
        ach2, feat2 = replicas[1], replicas[0]
        mine = {*a_cases, b_case}
        wait_for(lambda: all(collector(ach2, u) == collector(ach, u) for u in (alice, bob)),
                 timeout=EVENT_TIMEOUT * 2, what="replayed achievements")
        expected = {*a_cases[:3], b_case}
        assert candidate_ids(feat, "2032-06") & mine == expected
        wait_for(lambda: candidate_ids(feat2, "2032-06") & mine == expected, timeout=EVENT_TIMEOUT * 2,
                 what="replayed featuring")
    finally:
        for p in replicas:
            p.stop()

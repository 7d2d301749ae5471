"""Load: contributors uploading studies through the whole pipeline, beside the store's ceiling and Orthanc.

    python benchmarks/load.py --quick [--json out.json]     # make bench: about 3 minutes in all
    python benchmarks/load.py --sustained [--json out.json]  # >= 3,000 images over >= 3 minutes (about 15 min)
    python benchmarks/load.py --light-only [--light 40] [--poll-ms 5]  # only part 1 below (about a minute)

One run measures, in order (each part alone on the machine):

1. light load: one image at a time (a single DICOM upload, then wait for `ready`): p50/p99 latency;
2. sustained: K contributors, each keeping at most `--window` studies (zips of `--files` images) in flight, for at
   least `--seconds` and `--images`; steady-state img/min between the end of warm-up and the last upload,
   p50/p99 upload→ready, and the per-stage time split (client timestamps, the two services' database
   timestamps, and the histograms of their `/metrics`);
3. one study of `--study` images uploaded as one zip: time until every image is `ready`;
4. the store's ceiling: exactly the object-store and broker operations one image costs (listed in
   `OPERATIONS`), run alone against the same SeaweedFS and Tansu at the pipeline's concurrency;
5. the de-identification core alone on every core (the compute ceiling);
6. Orthanc 1.10.1 (Debian package, installed by `orthanc.py` when missing) on the same files: upload over
   REST + anonymise by study, img/min; and the same one-zip study.

Files: CT_small and MR_small copies, each with its own SOPInstanceUID, one study per zip.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import statistics
import sys
import threading
import time
import uuid
import zipfile
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx
from common import Result, bench_stack, cpu_seconds, emit, stack_pids, token, unique_copies

# What one image costs the object store and the broker (read from the services' code):
#   gateway upload route     PUT incoming/<case>/<image>            (routes/images.py, 4 at a time per upload)
#   gateway outbox relay     produce case.uploaded (acks=all, linger 0: the relay hands over a batch at once)
#   anonymiser consumer      fetch case.uploaded (batches of <= 2 x in flight), commit at most once a second
#   anonymiser handler       GET incoming, PUT images/<case>/<image>  (handlers.py; in flight: 4 per worker)
#   anonymiser outbox relay  produce case.anonymised
#   anonymiser after commit  DELETE incoming
#   gateway consumer         fetch case.anonymised, commit every 50 messages or 1 s
# Tansu keeps its log in SeaweedFS too, so every produce and commit is also an S3 write there.
OPERATIONS = {
    "object store": ["PUT raw", "GET raw", "PUT de-identified", "DELETE raw"],
    "broker": ["produce case.uploaded", "fetch case.uploaded", "produce case.anonymised",
               "fetch case.anonymised", "commit (1 per anonymiser batch, 1 per 50 at the gateway)"],
    # (the ceiling commits once per fetched batch: at least as often as the anonymiser's one a second)
}
# Envelope sizes as the services write them (JSON of the event with its envelope).
UPLOADED_BYTES = 500
ANONYMISED_BYTES = 1200
POLL_S = 0.5  # sustained: how often the cases in flight are listed (listing costs the gateway too)
LIGHT_POLL_S = 0.005  # light load: pause between two listings of the one image's case (see `light_load`)


def _arg(argv: list[str], name: str, default: int) -> int:
    return int(argv[argv.index(name) + 1]) if name in argv else default


def _templates() -> list[bytes]:
    from pydicom.data import get_testdata_file

    return [open(str(get_testdata_file(n, download=False)), "rb").read() for n in ("CT_small.dcm", "MR_small.dcm")]


def _zip(files: list[bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for i, data in enumerate(files):
            z.writestr(f"{i:04d}.dcm", data)
    return buf.getvalue()


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


# --- the pipeline -------------------------------------------------------------------------------------


@dataclass
class Tracker:
    """When each image was sent, accepted and seen `ready`, from the client's side (wall clock)."""

    sent: dict[str, float] = field(default_factory=dict)
    accepted: dict[str, float] = field(default_factory=dict)
    ready: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def outstanding(self, ids: list[str]) -> int:
        with self.lock:
            return sum(i not in self.ready and i not in self.failed for i in ids)


class Contributor:
    """One contributor: each upload goes to a case of its own (a teaching case holds a study or two), so
    watching an upload lists only its own images.  A person may hold 10 draft cases, so the contributor
    signs in as a new account every 9 cases."""

    def __init__(self, base: str, stack: Any, name: str) -> None:
        self.name = name
        self.stack = stack
        self.http = httpx.Client(base_url=base, timeout=600)
        self.cases: dict[str, tuple[dict[str, str], list[str]]] = {}

    def upload(self, body: bytes, filename: str, tracker: Tracker) -> list[str]:
        auth = {"Authorization": f"Bearer {token(self.stack, f'{self.name}-{len(self.cases) // 9}', 'contributor')}"}
        r = self.http.post("/v1/cases", json={"title": f"load {self.name}"}, headers=auth)
        assert r.status_code == 201, f"create case: {r.status_code} {r.text[:300]}"
        case = r.json()["id"]
        r = self.http.post(f"/v1/cases/{case}/studies", json={"modality": "CT"}, headers=auth)
        assert r.status_code == 201, f"create study: {r.status_code} {r.text[:300]}"
        sid = r.json()["id"]
        t0 = time.time()
        r = self.http.post(f"/v1/cases/{case}/studies/{sid}/uploads", files={"file": (filename, body)}, headers=auth)
        t1 = time.time()
        assert r.status_code == 202, r.text
        ids = [im["id"] for im in r.json()["images"]]
        with tracker.lock:
            for i in ids:
                tracker.sent[i], tracker.accepted[i] = t0, t1
            self.cases[case] = (auth, ids)
        return ids

    def poll(self, tracker: Tracker) -> None:
        """List the images of every case that still has images processing."""
        for case, (auth, ids) in list(self.cases.items()):
            if not tracker.outstanding(ids):
                continue
            now = time.time()
            for im in self.http.get(f"/v1/cases/{case}/images", headers=auth).json():
                if im["status"] == "processing" or im["id"] in tracker.ready or im["id"] in tracker.failed:
                    continue
                with tracker.lock:
                    if im["status"] == "ready":
                        tracker.ready[im["id"]] = now
                    else:
                        tracker.failed[im["id"]] = im["status"]


def light_load(base: str, stack: Any, files: list[bytes], poll_s: float = LIGHT_POLL_S) -> Tracker:
    """One image at a time: upload a single DICOM, list its case every `poll_s` until it is ready.

    `ready` is stamped when the listing that shows it is sent, so the poll adds between 0 and one pause
    plus one listing to each figure; a pause of 20 ms (before) added about 10 ms on average, 5 ms about 3.
    """
    c = Contributor(base, stack, "light")
    t = Tracker()
    for data in files:
        (image,) = c.upload(data, "one.dcm", t)
        deadline = time.monotonic() + 60
        while image not in t.ready and image not in t.failed and time.monotonic() < deadline:
            c.poll(t)
            time.sleep(poll_s)
        assert image in t.ready, f"{image}: {t.failed.get(image, 'timed out')}"
    return t


def latencies(t: Tracker, ids: list[str] | None = None) -> list[float]:
    return [t.ready[i] - t.sent[i] for i in (ids if ids is not None else list(t.sent))]


def stage_split(t: Tracker, stamps: dict[str, float]) -> list[tuple[str, float, float]]:
    """(stage, mean s, p50 s) per image, from the client's and the two databases' timestamps (one clock)."""
    ids = [i for i in t.sent if f"{i}|started" in stamps]
    stages = {
        "upload request (spool, validate, record, PUT raw, outbox write)":
            [t.accepted[i] - t.sent[i] for i in ids],
        "accepted -> anonymiser transaction begins (relay, broker, queue)":
            [stamps[f"{i}|started"] - t.accepted[i] for i in ids],
        "anonymiser begins -> seen ready (GET, deid, PUT, relay, gateway)":
            [t.ready[i] - stamps[f"{i}|started"] for i in ids],
    }
    return [(name, statistics.fmean(xs), statistics.median(xs)) for name, xs in stages.items() if xs]


def print_split(title: str, rows: list[tuple[str, float, float]], poll_ms: float) -> None:
    print(f"\n{title}  (mean / p50 per image; `ready` is seen by a {poll_ms:.0f} ms poll)")
    for name, avg, p50 in rows:
        print(f"  {name:<68}{avg * 1000:8.0f} ms {p50 * 1000:8.0f} ms")


def print_histograms(title: str, hs: dict[str, list[tuple[str, str, float, float]]]) -> None:
    print(f"\nhistograms in /metrics, {title} (observations during that run, mean):")
    for svc, rows in hs.items():
        for name, labels, count, avg in rows:
            if name.startswith("casebook_http_request") and "/images" not in labels and "/uploads" not in labels:
                continue
            shown = f"{avg * 1000:.1f} ms" if name.endswith("_seconds") else f"{avg:.0f}"
            print(f"  {svc:<11}{name}{labels}  n={count:.0f}  mean {shown}")


def sustained(base: str, stack: Any, files: list[bytes], *, contributors: int, per: int, min_images: int,
              min_seconds: float, window: int = 1, name: str = "load") -> tuple[Tracker, float, float]:
    """K contributors, each with at most `window` studies in flight, until both minimums are met.

    Returns the tracker, the start time and the time of the last upload (wall clock).
    """
    t = Tracker()
    people = [Contributor(base, stack, f"{name}{i}") for i in range(contributors)]
    start = time.time()
    counter = {"sent": 0}
    stop = threading.Event()

    def run(c: Contributor, k: int) -> None:
        inflight: list[list[str]] = []
        n = 0
        while True:
            with t.lock:
                enough = counter["sent"] >= min_images and time.time() - start >= min_seconds
                if not enough:
                    counter["sent"] += per
            if enough:
                return
            inflight = [ids for ids in inflight if t.outstanding(ids)]
            while len(inflight) >= window:
                time.sleep(0.02)
                inflight = [ids for ids in inflight if t.outstanding(ids)]
            # A new study each time (own UIDs, own pixels): nothing the pipeline has seen before.
            inflight.append(c.upload(_zip(unique_copies(files, per, per_study=per)), "study.zip", t))
            n += 1

    def watch() -> None:
        while not stop.is_set():
            for c in people:
                c.poll(t)
            time.sleep(POLL_S)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with ThreadPoolExecutor(contributors) as pool:
        for f in [pool.submit(run, c, k) for k, c in enumerate(people)]:
            f.result()
    last_upload = max(t.accepted.values())
    deadline = time.monotonic() + 600
    while len(t.ready) + len(t.failed) < len(t.sent) and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    watcher.join()
    assert not t.failed, f"{len(t.failed)} images not ready: {list(t.failed.values())[:5]}"
    assert len(t.ready) == len(t.sent), f"{len(t.ready)}/{len(t.sent)} images ready"
    return t, start, last_upload


def one_zip(base: str, stack: Any, files: list[bytes], name: str = "study") -> float:
    """Seconds from the start of one zip upload of `files` until every image in it is ready."""
    c = Contributor(base, stack, name)
    t = Tracker()
    body = _zip(files)
    ids = c.upload(body, "study.zip", t)
    t0 = t.sent[ids[0]]
    deadline = time.monotonic() + 600
    while t.outstanding(ids) and time.monotonic() < deadline:
        c.poll(t)
        time.sleep(0.02)
    assert not t.outstanding(ids) and not t.failed, "study not ready"
    return max(t.ready[i] for i in ids) - t0


# --- scale-out: one and two anonymiser replicas sharing a consumer group ----------------------------------


def assigned(url: str) -> list[int]:
    """The case.uploaded partitions a replica's consumer holds (its `casebook_consumer_assigned_partitions`)."""
    out = []
    for (name, labels), value in scrape(url).items():
        if name == "casebook_consumer_assigned_partitions" and 'topic="case.uploaded"' in labels and value == 1:
            m = re.search(r'partition="(\d+)"', labels)
            if m:
                out.append(int(m.group(1)))
    return sorted(out)


def scale_out(base: str, stack: Any, procs: dict[str, Any], templates: list[bytes], *, contributors: int,
              per: int, images: int, seconds: float) -> list[dict[str, Any]]:
    """The same load with 1, then 2 anonymiser replicas of one worker each (same consumer group and outbox).

    The service's own replica is stopped first; replica 2 listens on the launcher's replica port. Returns per
    replica count: whole-run img/min, and per replica the partitions it held and the events it processed.
    """
    from common import ServiceProcess

    procs["anonymiser"].stop()
    partitions = stack.partitions_of("case.uploaded")
    replicas: list[Any] = []
    rows = []
    try:
        for n in (1, 2):
            while len(replicas) < n:
                r = len(replicas) + 1
                replicas.append(ServiceProcess(stack, "anonymiser", env={"CASEBOOK_DEID_WORKERS": "1"},
                                               port=stack.http_port(f"anonymiser-{r}")).start())
            deadline = time.monotonic() + 90  # the group settles: every partition held, each replica some
            while time.monotonic() < deadline:
                held = [assigned(r.url) for r in replicas]
                if sum(map(len, held)) == partitions and all(held):
                    break
                time.sleep(0.5)
            one_zip(base, stack, unique_copies(templates, 2 * per), name=f"warm{n}")  # OCR models loaded
            before = [scrape(r.url) for r in replicas]
            t, start, _ = sustained(base, stack, templates, contributors=contributors, per=per, min_images=images,
                                    min_seconds=seconds, name=f"scale{n}-")
            rate = len(t.sent) / (max(t.ready.values()) - start) * 60
            key = ("casebook_events_processed_total", '{service="anonymiser",topic="case.uploaded"}')
            per_replica = [{"port": r.port, "partitions": assigned(r.url),
                            "processed": scrape(r.url).get(key, 0) - b.get(key, 0)} for r, b in zip(replicas, before,
                                                                                                   strict=True)]
            rows.append({"replicas": n, "img_min": rate, "images": len(t.sent), "per_replica": per_replica,
                         "load": os.getloadavg()[0]})
            print(f"scale-out: {n} anonymiser replica(s) x 1 worker: {rate:.0f} img/min over {len(t.sent)} images; "
                  + "; ".join(f"port {x['port']}: partitions {x['partitions']}, {x['processed']:.0f} events"
                              for x in per_replica) + f"  (load {os.getloadavg()[0]:.1f})", flush=True)
    finally:
        for r in replicas:
            r.stop()
    return rows


# --- the services' own figures ------------------------------------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+([-+0-9.eEinfNa]+)$')  # routes hold braces


def scrape(url: str) -> dict[tuple[str, str], float]:
    """Every sample of a Prometheus text page, by (name, labels)."""
    out: dict[tuple[str, str], float] = {}
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        m = _SAMPLE.match(line)
        if m:
            out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


def histograms(before: dict[tuple[str, str], float], after: dict[tuple[str, str], float]
               ) -> list[tuple[str, str, float, float]]:
    """(histogram, labels, count, mean seconds) of what was observed between two scrapes."""
    rows = []
    for (name, labels), total in after.items():
        if not name.endswith("_sum"):
            continue
        base = name[: -len("_sum")]
        count = after.get((base + "_count", labels), 0) - before.get((base + "_count", labels), 0)
        if count <= 0:
            continue
        spent = total - before.get((name, labels), 0)
        rows.append((base, labels, count, spent / count))
    return sorted(rows)


def db_stages(stack: Any, image_ids: list[str]) -> dict[str, float]:
    """Per image: when the gateway recorded it and when the anonymiser's transaction for it began."""
    import asyncpg

    def dsn(service: str) -> str:  # the services' own URL (credentials included), in asyncpg's spelling
        return str(stack.service_env(service)["CASEBOOK_DATABASE_URL"]).replace("postgresql+asyncpg://", "postgresql://")

    async def run() -> dict[str, float]:
        gw = await asyncpg.connect(dsn("gateway"))
        an = await asyncpg.connect(dsn("anonymiser"))
        try:
            created = {r["id"]: r["created_at"].timestamp() for r in await gw.fetch(
                "select id, created_at from images where id = any($1::text[])", image_ids)}
            started = {r["image_id"]: r["created_at"].timestamp() for r in await an.fetch(
                "select image_id, created_at from runs where image_id = any($1::text[])", image_ids)}
        finally:
            await gw.close()
            await an.close()
        return {f"{k}|created": v for k, v in created.items()} | {f"{k}|started": v for k, v in started.items()}

    return asyncio.run(run())


# --- the store's ceiling ------------------------------------------------------------------------------


async def _store_ceiling(stack: Any, raw: list[bytes], out: list[bytes], *, gateway_inflight: int,
                         anonymiser_concurrency: int) -> float:
    """Images/min that the object-store and broker operations alone allow, at the pipeline's concurrency."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from minio import Minio

    env = stack.service_env("gateway")
    s3 = Minio(env["CASEBOOK_S3_ENDPOINT"], env["CASEBOOK_S3_ACCESS_KEY"], env["CASEBOOK_S3_SECRET_KEY"], secure=False)
    bootstrap = env["CASEBOOK_KAFKA_BOOTSTRAP_SERVERS"]
    run = uuid.uuid4().hex[:8]
    b_in, b_out = f"ceiling-in-{run}", f"ceiling-out-{run}"
    t_up, t_an = f"ceiling.uploaded.{run}", f"ceiling.anonymised.{run}"
    for b in (b_in, b_out):
        s3.make_bucket(b)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0, max_batch_size=1024 * 1024,
                                enable_idempotence=False)
    await producer.start()
    for topic in (t_up, t_an):
        await producer.send_and_wait(topic, b"warm", key=b"warm")
    group = {"auto_offset_reset": "earliest", "enable_auto_commit": False, "fetch_max_wait_ms": 100,
             "session_timeout_ms": 6000, "heartbeat_interval_ms": 1500, "bootstrap_servers": bootstrap}
    c_an = AIOKafkaConsumer(t_up, group_id=f"ceiling-an-{run}", max_poll_records=anonymiser_concurrency * 4, **group)
    c_gw = AIOKafkaConsumer(t_an, group_id=f"ceiling-gw-{run}", **group)
    await c_an.start()
    await c_gw.start()
    for c in (c_an, c_gw):  # group joins are not throughput
        while not c.assignment():
            await c.getmany(timeout_ms=200)
    n = len(raw)
    done = asyncio.Event()
    finished = {"n": 0}
    up_payload, an_payload = b"u" * UPLOADED_BYTES, b"a" * ANONYMISED_BYTES

    async def gateway() -> None:
        gate = asyncio.Semaphore(gateway_inflight)

        async def one(i: int) -> None:
            async with gate:
                await asyncio.to_thread(s3.put_object, b_in, f"c/{i}", io.BytesIO(raw[i]), len(raw[i]),
                                        content_type="application/dicom")
                await producer.send_and_wait(t_up, up_payload, key=str(i).encode())

        await asyncio.gather(*(one(i) for i in range(n)))

    async def anonymiser() -> None:
        gate = asyncio.Semaphore(anonymiser_concurrency)

        async def one(key: bytes) -> None:
            async with gate:
                i = int(key)
                resp = await asyncio.to_thread(s3.get_object, b_in, f"c/{i}")
                try:
                    await asyncio.to_thread(resp.read)
                finally:
                    resp.close()
                    resp.release_conn()
                await asyncio.to_thread(s3.put_object, b_out, f"c/{i}", io.BytesIO(out[i]), len(out[i]),
                                        content_type="application/dicom")
                await producer.send_and_wait(t_an, an_payload, key=key)
                await asyncio.to_thread(s3.remove_object, b_in, f"c/{i}")

        while not done.is_set():
            batch = await c_an.getmany(timeout_ms=100, max_records=anonymiser_concurrency * 4)
            records = [r for rs in batch.values() for r in rs if r.key != b"warm"]
            if records:
                await asyncio.gather(*(one(r.key) for r in records))
            if batch:
                await c_an.commit()

    async def gateway_consumer() -> None:
        pending, last = 0, time.monotonic()
        while finished["n"] < n:
            batch = await c_gw.getmany(timeout_ms=100)
            for rs in batch.values():
                for r in rs:
                    if r.key != b"warm":
                        finished["n"] += 1
                        pending += 1
            if pending >= 50 or (pending and time.monotonic() - last > 1.0):
                await c_gw.commit()
                pending, last = 0, time.monotonic()
        done.set()

    t0 = time.perf_counter()
    tasks = [asyncio.create_task(f()) for f in (gateway, anonymiser, gateway_consumer)]
    await asyncio.wait_for(asyncio.gather(tasks[0], tasks[2]), timeout=900)
    elapsed = time.perf_counter() - t0
    await tasks[1]
    await c_an.stop()
    await c_gw.stop()
    await producer.stop()
    for b in (b_in, b_out):
        for obj in s3.list_objects(b, recursive=True):
            s3.remove_object(b, obj.object_name)
        s3.remove_bucket(b)
    return n / elapsed * 60


def store_ceiling(stack: Any, raw: list[bytes], out: list[bytes], **kw: int) -> float:
    return asyncio.run(_store_ceiling(stack, raw, out, **kw))


# --- the de-identification core alone -----------------------------------------------------------------


def _deid(data: bytes, case_id: str) -> tuple[str, int]:
    from casebook_anonymiser.deid import CaseKey, deidentify_bytes

    key = CaseKey(secret=b"benchmark-secret-0123456789", key_id="b", case_id=case_id)
    r = deidentify_bytes(data, key=key)
    return r.status, len(r.data or b"")


def core_ceiling(files: list[bytes], n: int) -> tuple[float, list[int]]:
    """Images/min of the de-identification core alone, all cores, same files; and the output sizes."""
    workers = os.cpu_count() or 1
    warm, timed = files[: workers * 2], files[workers * 2: workers * 2 + n]
    # The workers' ONNX threads as the anonymiser sets them (cores / workers: one each here).
    with ProcessPoolExecutor(workers, initializer=_one_thread_each, initargs=(workers,)) as pool:
        list(pool.map(partial(_deid, case_id="warm"), warm))  # start-up is not throughput
        t0 = time.perf_counter()
        results = list(pool.map(partial(_deid, case_id="c1"), timed))
        elapsed = time.perf_counter() - t0
    assert all(s == "ready" for s, _ in results), results[:5]
    return len(timed) / elapsed * 60, [size for _, size in results]


def _one_thread_each(workers: int) -> None:
    os.environ.setdefault("CASEBOOK_OCR_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))


# --- the run ------------------------------------------------------------------------------------------


def main(argv: list[str]) -> None:
    quick = "--quick" in argv or "--sustained" not in argv
    k = _arg(argv, "--contributors", 3 if quick else 4)
    per = _arg(argv, "--files", 10 if quick else 20)
    min_images = _arg(argv, "--images", 300 if quick else 3000)
    min_seconds = _arg(argv, "--seconds", 20 if quick else 180)
    warmup = _arg(argv, "--warmup", 5 if quick else 30)
    window = _arg(argv, "--window", 1)
    light_n = _arg(argv, "--light", 20 if quick else 60)
    light_poll_s = _arg(argv, "--poll-ms", round(LIGHT_POLL_S * 1000)) / 1000
    study_n = _arg(argv, "--study", 100 if quick else 300)
    cores = os.cpu_count() or 1
    anonymiser_concurrency = 4 * cores  # the anonymiser's in-flight window (deid_in_flight: four per worker)
    templates = _templates()
    pool_files = unique_copies(templates, 600, per_study=per)
    mode = "quick" if quick else "sustained"
    print(f"load ({mode}): light {light_n} images; sustained {k} contributors x {per}-image zips "
          f"({window} in flight each: latency = in flight / throughput), "
          f">= {min_images} images and >= {min_seconds} s, warm-up {warmup} s; one zip of {study_n}; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)

    with bench_stack(("gateway", "anonymiser")) as (stack, procs):
        base = procs["gateway"].url
        one_zip(base, stack, unique_copies(templates, 20), name="warm")  # connections, pools, group joins
        light_before = {s: scrape(p.url) for s, p in procs.items()}
        light_t = light_load(base, stack, unique_copies(templates, light_n), light_poll_s)
        light_hist = {s: histograms(light_before[s], scrape(p.url)) for s, p in procs.items()}
        light = latencies(light_t)
        light_split = stage_split(light_t, db_stages(stack, list(light_t.sent)))
        print(f"light load: p50 {statistics.median(light) * 1000:.0f} ms, p99 {_pct(light, 0.99) * 1000:.0f} ms "
              f"(n {len(light)}, load {os.getloadavg()[0]:.1f})", flush=True)
        light_results = [
            Result(f"load light (1 at a time, {light_n})", "latency p50 upload→ready", statistics.median(light) * 1000,
                   "ms", target="< 150 ms"),
            Result(f"load light (1 at a time, {light_n})", "latency p99 upload→ready", _pct(light, 0.99) * 1000,
                   "ms"),
        ]
        if "--light-only" in argv:
            print_split("where an image's time goes at light load", light_split, light_poll_s * 1000)
            print_histograms("light load", light_hist)
            emit(light_results, argv)
            return

        scrapes = {s: scrape(p.url) for s, p in procs.items()}
        pids = stack_pids(stack, procs)
        cpu_before, wall_before = cpu_seconds(pids), time.monotonic()
        tracker, t_start, t_last = sustained(base, stack, templates, contributors=k, per=per,
                                             min_images=min_images, min_seconds=min_seconds, window=window)
        after = {s: scrape(p.url) for s, p in procs.items()}
        cpu_after, wall = cpu_seconds(pids), time.monotonic() - wall_before
        cpu_use = {n: (cpu_after[n] - cpu_before[n]) / wall for n in pids}
        ids = list(tracker.sent)
        stamps = db_stages(stack, ids)
        total = len(ids)
        steady_from = t_start + warmup
        steady = [i for i in ids if steady_from <= tracker.ready[i] <= t_last]
        steady_rate = len(steady) / (t_last - steady_from) * 60 if t_last > steady_from else float("nan")
        overall = total / (max(tracker.ready.values()) - t_start) * 60
        lat = latencies(tracker)
        steady_lat = latencies(tracker, [i for i in ids if tracker.sent[i] >= steady_from])
        print(f"sustained: {total} images in {max(tracker.ready.values()) - t_start:.0f} s, steady "
              f"{steady_rate:.0f} img/min, p50 {statistics.median(steady_lat or lat) * 1000:.0f} ms, "
              f"p99 {_pct(steady_lat or lat, 0.99) * 1000:.0f} ms (load {os.getloadavg()[0]:.1f})", flush=True)

        study_files = unique_copies(templates, study_n)
        study_s = one_zip(base, stack, study_files)
        print(f"one zip of {study_n}: all ready in {study_s:.1f} s (load {os.getloadavg()[0]:.1f})", flush=True)

        split = stage_split(tracker, stamps)
        hist = {s: histograms(scrapes[s], after[s]) for s in procs}

        out_sizes = core_ceiling(pool_files[:54], 50)[1]
        n_ceiling = min(total, 1500)
        raw = [pool_files[i % len(pool_files)] for i in range(n_ceiling)]
        out = [b"\0" * out_sizes[i % len(out_sizes)] for i in range(n_ceiling)]
        store = store_ceiling(stack, raw, out, gateway_inflight=4 * k, anonymiser_concurrency=anonymiser_concurrency)
        print(f"store ceiling ({n_ceiling} images' operations, gateway {4 * k} in flight, anonymiser "
              f"{anonymiser_concurrency}): {store:.0f} img/min (load {os.getloadavg()[0]:.1f})", flush=True)
        scaled = [] if "--no-scale" in argv else scale_out(
            base, stack, procs, templates, contributors=k, per=per, images=_arg(argv, "--scale-images", 200),
            seconds=_arg(argv, "--scale-seconds", 20))

    n_core = max(300, min(total, 1000))
    compute, _ = core_ceiling(unique_copies(templates, n_core + 2 * cores, per_study=per), n_core)
    print(f"de-identification core alone ({cores} processes): {compute:.0f} img/min "
          f"(load {os.getloadavg()[0]:.1f})", flush=True)

    from orthanc import Orthanc, upload_and_anonymise, version

    orth = upload_and_anonymise(pool_files[: min(len(pool_files), total)])
    with Orthanc() as peer:
        t0 = time.perf_counter()
        answers = peer.upload(study_files)
        for study_id in {a["ParentStudy"] for a in answers}:  # one: the files share a patient and a study
            peer.anonymise_study(study_id)
        orth_study_s = time.perf_counter() - t0
    print(f"Orthanc {version()}: upload+anonymise {orth['both_img_min']:.0f} img/min "
          f"(ingest {orth['ingest_files_s']:.0f}/s, anonymise {orth['anonymise_files_s']:.0f}/s); "
          f"one study of {study_n}: {orth_study_s:.1f} s", flush=True)

    print(f"\nCPU during the sustained run (cores busy, of {cores}; the client's own work not counted): "
          + ", ".join(f"{n} {c:.2f}" for n, c in sorted(cpu_use.items(), key=lambda x: -x[1]))
          + f"; total {sum(cpu_use.values()):.2f}; per image {sum(cpu_use.values()) * wall / max(1, total) * 1000:.0f} "
          f"ms of CPU (anonymiser incl. its workers {cpu_use['anonymiser'] * wall / max(1, total) * 1000:.0f} ms)")
    ops = "; ".join(f"{what}: {', '.join(v)}" for what, v in OPERATIONS.items())
    print(f"\nper-image operations the ceiling runs: {ops}")
    print_split("where an image's time goes at light load", light_split, light_poll_s * 1000)
    print_split("where an image's time goes, sustained", split, POLL_S * 1000)
    print("\nhistograms the services export: " + "; ".join(
        f"{svc}: {', '.join(sorted({n[:-len('_count')] for n, _ in after[svc] if n.endswith('_count')}))}"
        for svc in after))
    for title, hs in (("light load", light_hist), ("sustained", hist)):
        print_histograms(title, hs)

    label = f"load {mode} {total} img, {k} contributors"
    results = [
        *light_results,
        Result(label, "steady upload→ready", steady_rate, "img/min", "store ops alone (ceiling)", store, ">= 0.7x"),
        Result(label, "steady upload→ready", steady_rate, "img/min", "Orthanc upload+anonymise",
               orth["both_img_min"], ">= 1x"),
        Result(label, "whole run upload→ready", overall, "img/min", "de-identification core alone", compute),
        Result(label, "latency p50", statistics.median(steady_lat or lat) * 1000, "ms"),
        Result(label, "latency p99", _pct(steady_lat or lat, 0.99) * 1000, "ms"),
        Result(f"load one zip of {study_n}", "all ready", study_s, "s", "Orthanc upload+anonymise", orth_study_s,
               "<= 1x"),
    ]
    if len(scaled) == 2:
        one, two = scaled
        shared = all(x["partitions"] and x["processed"] for x in two["per_replica"])
        results.append(Result(f"load scale-out ({two['images']} img, 1 worker per replica)",
                              f"2 anonymiser replicas ({'partitions shared' if shared else 'NOT shared'})",
                              two["img_min"], "img/min", "1 replica", one["img_min"], "> 1x"))
    emit(results, argv)


if __name__ == "__main__":
    main(sys.argv[1:])

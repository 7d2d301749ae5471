"""Orthanc 1.10.1 as the benchmarks' peer: installed from Debian by this set-up, run with a config of its own.

    with Orthanc() as peer:
        ids = peer.upload(blobs)                 # POST /instances, a thread pool
        peer.anonymise_study(study_id)           # POST /studies/{id}/anonymize, synchronous
        peer.anonymise_instance(instance_id)     # POST /instances/{id}/anonymize -> the anonymised file

The package is installed with `apt-get install -y orthanc orthanc-dicomweb` only when the `Orthanc`
binary is missing (this is the one place it is installed).  The server listens on 127.0.0.1 on a free
port, keeps its storage and index in a temporary folder that is removed on exit, has no DICOM port,
no authentication and no remote access, and loads no plugins (none is needed for REST upload and
anonymisation) unless asked:

    with Orthanc(dicomweb=True, dicomweb_servers={"casebook": "http://127.0.0.1:8080/dicomweb"}) as pacs:
        pacs.dicomweb_url                        # its own DICOMweb server: <url>/dicom-web
        pacs.http.post("/dicom-web/servers/casebook/retrieve", json={"Resources": [{"Study": uid}]})

`dicomweb=True` loads Debian's DICOMweb plugin (`/usr/share/orthanc/plugins/libOrthancDicomWeb.so`) with
its QIDO/WADO/STOW server at `/dicom-web/` and, for each entry of `dicomweb_servers` (name -> base URL,
or name -> `{"Url", "HttpHeaders", ...}` as Orthanc's `DicomWeb.Servers` takes it), a remote DICOMweb
server Orthanc can query and pull from.

    python benchmarks/orthanc.py [--files 200]   # smoke test: ingest and anonymise CT_small copies
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

PACKAGES = ("orthanc", "orthanc-dicomweb")
BINARY = "Orthanc"
PLUGIN_DIRS = (Path("/usr/share/orthanc/plugins"), Path("/usr/lib/orthanc"))
DICOMWEB_PLUGIN = "libOrthancDicomWeb.so"


def dicomweb_plugin() -> str:
    """Path of the DICOMweb plugin of Debian's `orthanc-dicomweb` (installed with Orthanc by `ensure_installed`)."""
    ensure_installed()
    for d in PLUGIN_DIRS:
        found = sorted(d.glob(DICOMWEB_PLUGIN + "*")) if d.is_dir() else []
        if found:
            return str(found[0])
    raise RuntimeError(f"no {DICOMWEB_PLUGIN} under {', '.join(map(str, PLUGIN_DIRS))}; is orthanc-dicomweb installed?")


def ensure_installed() -> str:
    """Path of the `Orthanc` binary; installs Debian's packages first when it is missing."""
    found = shutil.which(BINARY)
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
    if subprocess.run(install, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode != 0:
        # A stale package index is the usual cause; refresh it once and retry.
        subprocess.run(["apt-get", "update"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        done = subprocess.run(install, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if done.returncode != 0:
            raise RuntimeError(f"apt-get install {' '.join(PACKAGES)} failed: {done.stderr.decode()[-2000:]}")
    # Debian starts a system-wide service on install; the benchmark runs its own server.
    subprocess.run(["service", "orthanc", "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    found = shutil.which(BINARY) or ("/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else None)
    if not found:
        raise RuntimeError("orthanc installed but no Orthanc binary on PATH")
    return found


def version() -> str:
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "orthanc"], capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def _exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so `stop()` (in `finally`/`with`) still ends the server and removes its files."""
    import threading

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Orthanc:
    """One private Orthanc server; a context manager that removes everything it wrote."""

    def __init__(self, threads: int = 4, concurrent_jobs: int = 2, *, dicomweb: bool = False,
                 dicomweb_servers: dict[str, str | dict[str, Any]] | None = None) -> None:
        self.threads = threads
        self.concurrent_jobs = concurrent_jobs
        self.dicomweb = dicomweb or bool(dicomweb_servers)
        self.dicomweb_servers = dict(dicomweb_servers or {})
        self.dir = Path(tempfile.mkdtemp(prefix="casebook-orthanc-"))
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.client: httpx.Client | None = None

    @property
    def dicomweb_url(self) -> str:
        """Base URL of Orthanc's own DICOMweb server (with `dicomweb=True`)."""
        return f"{self.url}/dicom-web"

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "Name": "casebook-bench",
            "HttpPort": self.port,
            "HttpServerEnabled": True,
            "StorageDirectory": str(self.dir / "storage"),
            "IndexDirectory": str(self.dir / "index"),
            "AuthenticationEnabled": False,
            "RemoteAccessAllowed": False,
            "DicomServerEnabled": False,
            "Plugins": [],
            "HttpThreadsCount": 50,
            "ConcurrentJobs": self.concurrent_jobs,
            "StorageCompression": False,
            "HttpCompressionEnabled": False,
            "SaveJobs": False,
        }
        if self.dicomweb:
            servers = {name: {"Url": v} if isinstance(v, str) else v for name, v in self.dicomweb_servers.items()}
            cfg["Plugins"] = [dicomweb_plugin()]
            cfg["DicomWeb"] = {"Enable": True, "Root": "/dicom-web/", "EnableWado": False,
                               "Host": "127.0.0.1", "Ssl": False, "Servers": servers}
        return cfg

    def start(self, timeout: float = 60) -> Orthanc:
        binary = ensure_installed()
        _exit_on_sigterm()
        cfg = self.dir / "orthanc.json"
        cfg.write_text(json.dumps(self.config(), indent=2))
        log = open(self.dir / "orthanc.log", "wb")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([binary, str(cfg)], stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.client = httpx.Client(base_url=self.url, timeout=600,
                                   limits=httpx.Limits(max_connections=self.threads * 2))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Orthanc exited ({self.proc.returncode}): {self.log_tail()}")
            try:
                if self.client.get("/system").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"Orthanc not answering /system in {timeout}s: {self.log_tail()}")

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join((self.dir / "orthanc.log").read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    @property
    def http(self) -> httpx.Client:
        assert self.client is not None, "start() first"
        return self.client

    def upload_one(self, data: bytes) -> dict[str, Any]:
        r = self.http.post("/instances", content=data, headers={"Content-Type": "application/dicom"})
        r.raise_for_status()
        return dict(r.json())

    def upload(self, blobs: Iterable[bytes]) -> list[dict[str, Any]]:
        """`POST /instances` for every blob, `threads` at a time; Orthanc's answers (ID, ParentStudy, ...)."""
        with ThreadPoolExecutor(self.threads) as pool:
            return list(pool.map(self.upload_one, blobs))

    def anonymise_study(self, study_id: str) -> dict[str, Any]:
        """`POST /studies/{id}/anonymize`, synchronous: returns when every instance has its anonymised copy."""
        r = self.http.post(f"/studies/{study_id}/anonymize", json={"Synchronous": True, "Force": True})
        r.raise_for_status()
        return dict(r.json())

    def anonymise_instance(self, instance_id: str) -> bytes:
        """`POST /instances/{id}/anonymize`: the anonymised file (Orthanc does not store it)."""
        r = self.http.post(f"/instances/{instance_id}/anonymize", json={"Force": True})
        r.raise_for_status()
        return r.content

    def anonymise_instances(self, instance_ids: Iterable[str]) -> list[bytes]:
        with ThreadPoolExecutor(self.threads) as pool:
            return list(pool.map(self.anonymise_instance, instance_ids))

    def studies(self) -> list[str]:
        return list(self.http.get("/studies").json())

    def statistics(self) -> dict[str, Any]:
        return dict(self.http.get("/statistics").json())

    def clear(self) -> None:
        """Delete every patient, so the next measurement starts from an empty index."""
        for pid in self.http.get("/patients").json():
            self.http.delete(f"/patients/{pid}")

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Orthanc:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def upload_and_anonymise(blobs: list[bytes], threads: int = 4) -> dict[str, float]:
    """Orthanc's figures for one set of files on a fresh server: ingest, anonymise (by study), both."""
    with Orthanc(threads=threads) as peer:
        t0 = time.perf_counter()
        answers = peer.upload(blobs)
        t1 = time.perf_counter()
        studies = sorted({a["ParentStudy"] for a in answers})
        with ThreadPoolExecutor(max(1, min(len(studies), peer.concurrent_jobs))) as pool:
            list(pool.map(peer.anonymise_study, studies))
        t2 = time.perf_counter()
    n = len(blobs)
    return {
        "files": n,
        "studies": len(studies),
        "ingest_files_s": n / (t1 - t0),
        "anonymise_files_s": n / (t2 - t1),
        "both_img_min": n / (t2 - t0) * 60,
        "seconds": t2 - t0,
    }


def main(argv: list[str]) -> int:
    from pydicom.data import get_testdata_file

    n = int(argv[argv.index("--files") + 1]) if "--files" in argv else 200
    from common import unique_copies

    data = Path(str(get_testdata_file("CT_small.dcm"))).read_bytes()
    figures = upload_and_anonymise(unique_copies([data], n, per_study=100))
    print(f"Orthanc {version()}: {n} CT_small copies — ingest {figures['ingest_files_s']:.0f} files/s, "
          f"anonymise {figures['anonymise_files_s']:.0f} files/s, "
          f"upload+anonymise {figures['both_img_min']:.0f} img/min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

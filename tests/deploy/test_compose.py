"""docker-compose.yml and the Dockerfiles: every service built, configured by environment, health-checked."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

REQUIRED = re.compile(r"^\$\{[A-Z0-9_]+:\?[^}]*\}$")
SECRETISH = re.compile(r"SECRET|PASSWORD|KEY")
INFRA = ("kafka", "kafka-init", "minio", "minio-init", "postgres")


def casebook_services(compose: dict[str, Any], services: dict[str, int]) -> dict[str, dict[str, Any]]:
    return {name: compose["services"][name] for name in services}


def dockerfile(repo: Path, name: str) -> str:
    return (repo / "services" / name / "Dockerfile").read_text()


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


# --- compose ------------------------------------------------------------------------


def test_every_service_and_its_infrastructure_is_present(compose: dict[str, Any], services: dict[str, int]) -> None:
    missing = {*services, *INFRA} - set(compose["services"])
    assert not missing
    assert not any("zookeeper" in name for name in compose["services"])


def test_services_are_built_from_their_dockerfiles(
    compose: dict[str, Any], services: dict[str, int], repo: Path
) -> None:
    for name, svc in casebook_services(compose, services).items():
        build = svc["build"]
        assert build["context"] == "."
        assert build["dockerfile"] == f"services/{name}/Dockerfile"
        assert (repo / build["dockerfile"]).is_file()
        assert build["additional_contexts"]["casebook-base"] == "service:base"
    base = compose["services"]["base"]["build"]
    assert (repo / base["dockerfile"]).resolve() == repo / "deploy" / "docker" / "base.Dockerfile"


def test_services_are_configured_only_by_casebook_environment(
    compose: dict[str, Any], services: dict[str, int]
) -> None:
    for name, svc in casebook_services(compose, services).items():
        env = svc["environment"]
        assert isinstance(env, dict) and env, name
        assert all(key.startswith("CASEBOOK_") for key in env), name
        assert "env_file" not in svc and "command" not in svc and "volumes" not in svc, name
        assert env["CASEBOOK_HTTP_PORT"] == str(services[name])
        assert env["CASEBOOK_HTTP_HOST"] == "0.0.0.0"
        assert env["CASEBOOK_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["CASEBOOK_KAFKA_IDEMPOTENT"] == "true", "Apache Kafka accepts the idempotent producer"
        assert env["CASEBOOK_DATABASE_URL"].endswith(f"@postgres:5432/casebook_{name}"), name


def test_secrets_come_from_required_variables(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        env = svc.get("environment") or {}
        for key, value in env.items():
            if SECRETISH.search(key):
                assert REQUIRED.match(str(value)), f"{name}: {key} must be ${{VAR:?}}, not a literal"
            if key == "CASEBOOK_DATABASE_URL":
                assert "${POSTGRES_PASSWORD:?" in value, name


def test_every_service_is_health_checked_and_waits_for_healthy_dependencies(
    compose: dict[str, Any], services: dict[str, int]
) -> None:
    for name in ("kafka", "minio", "postgres"):
        assert compose["services"][name]["healthcheck"]["test"], name
    for name, svc in casebook_services(compose, services).items():
        test = " ".join(svc["healthcheck"]["test"])
        assert f"127.0.0.1:{services[name]}/" in test and "python" in test, name
        deps = svc["depends_on"]
        for infra in ("kafka", "minio", "postgres"):
            assert deps[infra]["condition"] == "service_healthy", f"{name} -> {infra}"
        for one_shot in ("kafka-init", "minio-init"):
            assert deps[one_shot]["condition"] == "service_completed_successfully", f"{name} -> {one_shot}"
        assert all(d["condition"] in {"service_healthy", "service_completed_successfully"} for d in deps.values())


def test_only_the_gateway_is_published(compose: dict[str, Any], services: dict[str, int]) -> None:
    published = {name: svc["ports"] for name, svc in casebook_services(compose, services).items() if svc.get("ports")}
    assert set(published) == {"gateway"}
    assert any(str(p).endswith("8080:8080") for p in published["gateway"])


def test_containers_run_hardened(compose: dict[str, Any], services: dict[str, int]) -> None:
    for name, svc in casebook_services(compose, services).items():
        assert svc["user"] == "10001:10001", name
        assert svc["read_only"] is True, name
        assert svc["cap_drop"] == ["ALL"], name
        assert any(str(t).startswith("/tmp") for t in svc["tmpfs"]), name


def test_kafka_runs_in_kraft_mode(compose: dict[str, Any], repo: Path) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:") and not kafka["image"].endswith(":latest")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] and env["CLUSTER_ID"]
    assert not any("ZOOKEEPER" in key for key in env)
    init = compose["services"]["kafka-init"]
    mounted = [v.split(":")[0] for v in init["volumes"]]
    assert "./deploy/k8s/base/kafka/create-topics.sh" in mounted, "one topic list for compose and Kubernetes"
    assert (repo / "deploy/k8s/base/kafka/create-topics.sh").is_file()


def test_one_database_per_service(compose: dict[str, Any], services: dict[str, int], repo: Path) -> None:
    sql = (repo / "deploy" / "compose" / "init-databases.sql").read_text()
    created = set(re.findall(r"CREATE DATABASE (\w+);", sql))
    assert created == {f"casebook_{name}" for name in services}
    mounts = compose["services"]["postgres"]["volumes"]
    assert any(m.startswith("./deploy/compose/init-databases.sql:/docker-entrypoint-initdb.d/") for m in mounts)


def test_incoming_bucket_credentials_reach_only_the_gateway_and_the_anonymiser(
    compose: dict[str, Any], services: dict[str, int]
) -> None:
    def s3_source(svc: dict[str, Any]) -> str:
        return str(svc["environment"]["CASEBOOK_S3_SECRET_KEY"])

    sources = {name: s3_source(svc) for name, svc in casebook_services(compose, services).items()}
    assert "CASEBOOK_S3_INCOMING_WRITER_SECRET_KEY" in sources.pop("gateway")
    assert "CASEBOOK_S3_INCOMING_SECRET_KEY" in sources.pop("anonymiser")
    assert not any("INCOMING" in source for source in sources.values())
    anonymiser_env = compose["services"]["anonymiser"]["environment"]
    assert {"CASEBOOK_DEID_SECRET", "CASEBOOK_DEID_KEY_ID"} <= set(anonymiser_env)


# --- Dockerfiles --------------------------------------------------------------------


def test_service_dockerfiles_are_multi_stage_non_root_and_health_checked(repo: Path, services: dict[str, int]) -> None:
    for name, port in services.items():
        steps = instructions(dockerfile(repo, name))
        stages = [args for word, args in steps if word == "FROM"]
        assert len(stages) >= 2, f"{name}: multi-stage"
        assert stages[0].split()[0] == "casebook-base", f"{name}: builds on the shared base"
        assert stages[-1].split()[0] == "python:3.11-slim", f"{name}: slim runtime"
        runtime = steps[max(i for i, (w, _) in enumerate(steps) if w == "FROM") :]
        users = [args for word, args in runtime if word == "USER"]
        assert users and users[-1].split(":")[0] == "10001", f"{name}: non-root"
        assert any(w == "COPY" and args.startswith("--from=builder /opt/venv") for w, args in runtime), name
        healthchecks = [args for word, args in runtime if word == "HEALTHCHECK"]
        assert healthchecks and "/healthz" in healthchecks[0] and '"python"' in healthchecks[0], name
        assert ("EXPOSE", str(port)) in runtime, name
        assert ("CMD", f'["python", "-m", "casebook_{name}"]') in runtime, name
        assert any(w == "COPY" and f"services/{name}/" in args for w, args in steps), name


def test_dockerfiles_install_pinned_requirements_by_name_only(repo: Path, services: dict[str, int]) -> None:
    base = (repo / "deploy" / "docker" / "base.Dockerfile").read_text()
    base_steps = instructions(base)
    assert [args for word, args in base_steps if word == "FROM"] == ["python:3.11-slim"]
    assert ("COPY", "requirements.txt ./requirements.txt") in base_steps
    assert any(w == "RUN" and "pip install -r requirements.txt" in args for w, args in base_steps)
    assert any(w == "COPY" and args.startswith("libs/") for w, args in base_steps)
    texts = {"base.Dockerfile": base} | {name: dockerfile(repo, name) for name in services}
    for name, text in texts.items():
        for word, args in instructions(text):
            if word == "RUN":
                assert not re.search(r"--(extra-)?index-url|--find-links|--trusted-host|\s-i\s", args), name
            urls = re.findall(r"[a-z+]+://[^\s'\"]+", args)
            assert all(u.startswith("http://127.0.0.1:") for u in urls), f"{name}: {urls}"


def test_dockerignore_keeps_the_context_small_and_secret_free(repo: Path) -> None:
    lines = [
        ln.strip() for ln in (repo / ".dockerignore").read_text().splitlines() if ln.strip() and not ln.startswith("#")
    ]
    assert lines[0] == "*", "allow-list: only what the images need"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    assert allowed == {"requirements.txt", "libs", "services"}
    for pattern in ("**/.venv", "**/__pycache__", "**/.env"):
        assert pattern in lines

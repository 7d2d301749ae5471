"""Fixtures for the deployment tests: the repository root and rendered Kustomize trees."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
SERVICES = {
    "gateway": 8080,
    "anonymiser": 8081,
    "moderation": 8082,
    "featuring": 8083,
    "achievements": 8084,
    "export": 8085,
}
WORKERS = ("anonymiser", "moderation", "featuring", "achievements", "export")
OVERLAYS = ("dev", "production")


def render(path: Path) -> list[dict[str, Any]]:
    """Render a Kustomize directory with `kubectl kustomize`; raises CalledProcessError on a broken tree."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl (with kustomize) is needed to render deploy/k8s")
    out = subprocess.run(
        [kubectl, "kustomize", str(path)], check=True, capture_output=True, text=True, timeout=120
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@functools.cache
def rendered(name: str) -> list[dict[str, Any]]:
    """The objects of `base` or of an overlay, rendered once per session."""
    return render(K8S / "base" if name == "base" else K8S / "overlays" / name)


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    """Each overlay's name and rendered objects."""
    return request.param, rendered(request.param)


@pytest.fixture(params=("base", "production"))
def secretless(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    """The trees that must carry no secret material."""
    return request.param, rendered(request.param)


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture(scope="session")
def services() -> dict[str, int]:
    """Every service and its HTTP port (docs/CONVENTIONS.md)."""
    return dict(SERVICES)


@pytest.fixture(scope="session")
def workers() -> tuple[str, ...]:
    """The services that scale on Kafka consumer lag."""
    return WORKERS


@pytest.fixture(scope="session")
def base_tree() -> list[dict[str, Any]]:
    """The rendered base."""
    return rendered("base")


@pytest.fixture(scope="session")
def dev_tree() -> list[dict[str, Any]]:
    """The rendered dev overlay."""
    return rendered("dev")


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    """docker-compose.yml, parsed (YAML anchors and merge keys resolved)."""
    parsed: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return parsed

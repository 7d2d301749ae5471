"""One partition count everywhere, and no autoscaler allowed more consumers of a group than it has partitions.

The partitions of a topic are the most members of one consumer group that get work: the anonymiser's
replicas beyond that sit idle. So the Kubernetes topic job, docker compose's kafka-init and the embedded
launcher create topics with the same count (`CASEBOOK_TOPIC_PARTITIONS`), and the worker autoscalers
(KEDA ScaledObjects, HorizontalPodAutoscalers of any worker) stop at it. The gateway's HPA scales on CPU for
HTTP and is not bound by it (its consumers beyond the count idle; its requests do not).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from test_kustomize import of_kind, topic_settings

REPO = Path(__file__).resolve().parents[2]


def _launcher() -> Any:
    from harness import embedded  # deploy/local/embedded.py, loaded once for the tests

    return embedded


def _compose_partitions() -> int:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return int(compose["services"]["kafka-init"]["environment"]["CASEBOOK_TOPIC_PARTITIONS"])


def test_one_partition_count_for_kubernetes_compose_and_the_launcher(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objs = overlay
    k8s = int(topic_settings(objs)["CASEBOOK_TOPIC_PARTITIONS"])
    assert k8s == _compose_partitions() == _launcher().DEFAULT_PARTITIONS
    script = (REPO / "deploy" / "k8s" / "base" / "kafka" / "create-topics.sh").read_text()
    assert f'PARTITIONS="${{CASEBOOK_TOPIC_PARTITIONS:-{k8s}}}"' in script, "the script's own default agrees"


def test_worker_autoscalers_stop_at_the_partition_count(overlay: tuple[str, list[dict[str, Any]]],
                                                        workers: tuple[str, ...]) -> None:
    name, objs = overlay
    partitions = int(topic_settings(objs)["CASEBOOK_TOPIC_PARTITIONS"])
    deployments = {f"casebook-{w}" for w in workers}
    maxima = {n: so["spec"]["maxReplicaCount"] for n, so in of_kind(objs, "ScaledObject").items()}
    maxima |= {n: hpa["spec"]["maxReplicas"] for n, hpa in of_kind(objs, "HorizontalPodAutoscaler").items()
               if hpa["spec"]["scaleTargetRef"]["name"] in deployments}
    assert set(maxima) >= deployments, f"{name}: every worker has an autoscaler"
    over = {n: m for n, m in maxima.items() if m > partitions}
    assert not over, f"{name}: autoscalers above the {partitions} partitions: {over}"
    assert maxima["casebook-anonymiser"] == partitions or name == "dev", (
        "production lets the anonymiser use every partition")


def test_the_launcher_splits_replicas_and_their_ports() -> None:
    launcher = _launcher()
    assert launcher.parse_replicas("anonymiser=2,gateway=2") == {"anonymiser": 2, "gateway": 2}
    names = launcher.replica_names({"anonymiser": 3})
    assert names.count("anonymiser") == 1 and "anonymiser-2" in names and "anonymiser-3" in names
    assert set(launcher.SERVICES) <= set(names)
    assert launcher.split_replica("anonymiser-2") == ("anonymiser", 2)
    assert launcher.split_replica("gateway") == ("gateway", 1)
    for bad in ("anonymiser", "anonymiser=0", "nosuch=2", f"gateway={launcher.MAX_REPLICAS + 1}"):
        try:
            launcher.parse_replicas(bad)
        except SystemExit as exc:
            assert "--replicas" in str(exc)
        else:
            raise AssertionError(f"{bad!r} accepted")

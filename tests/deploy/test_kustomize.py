"""The Kubernetes manifests: both overlays render, validate offline, and keep the operational promises."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import kubernetes_validate
import pytest

K8S_VERSION = "1.37.0"
CRD_KINDS = {"ScaledObject", "ServiceMonitor", "PrometheusRule"}
SECRETISH = re.compile(r"SECRET|PASSWORD|KEY", re.IGNORECASE)
INCOMING_READER = "casebook-s3-incoming"
INCOMING_WRITER = "casebook-s3-incoming-writer"

Objects = list[dict[str, Any]]


def of_kind(objs: Objects, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def one(objs: Objects, kind: str, name: str) -> dict[str, Any]:
    found = of_kind(objs, kind)
    assert name in found, f"no {kind} {name}; have {sorted(found)}"
    return found[name]


def container(deploy: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deploy["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, deploy["metadata"]["name"]
    return containers[0]


def pod_labels(deploy: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = deploy["spec"]["template"]["metadata"]["labels"]
    return labels


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def secret_refs(deploy: dict[str, Any], secret_names: set[str]) -> set[str]:
    """Every Secret a Deployment's pods read, by its name before any generator hash suffix."""
    spec = deploy["spec"]["template"]["spec"]
    names: set[str] = set()
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        for env in c.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                names.add(ref["name"])
        for src in c.get("envFrom", []):
            if "secretRef" in src:
                names.add(src["secretRef"]["name"])
    for vol in spec.get("volumes", []):
        if "secret" in vol:
            names.add(vol["secret"]["secretName"])
        for source in vol.get("projected", {}).get("sources", []):
            if "secret" in source:
                names.add(source["secret"]["name"])

    def unhashed(name: str) -> str:
        stem = re.sub(r"-[a-z0-9]{10}$", "", name)
        return stem if name in secret_names and stem != name else name

    return {unhashed(n) for n in names}


def env_values(objs: Objects) -> Iterator[tuple[str, str, Any]]:
    """(where, key, literal value) of every container env entry and ConfigMap entry."""
    for o in objs:
        if o["kind"] == "ConfigMap":
            for key, value in (o.get("data") or {}).items():
                yield f"ConfigMap/{o['metadata']['name']}", key, value
        pod = None
        if o["kind"] in ("Deployment", "Job"):
            pod = o["spec"]["template"]["spec"]
        if pod:
            for c in pod.get("containers", []) + pod.get("initContainers", []):
                for env in c.get("env", []):
                    if "value" in env:
                        yield f"{o['kind']}/{o['metadata']['name']}", env["name"], env["value"]


def topic_settings(objs: Objects) -> dict[str, str]:
    data: dict[str, str] = one(objs, "ConfigMap", "casebook-topics")["data"]
    return data


def topics_script(objs: Objects) -> str:
    scripts = [o for n, o in of_kind(objs, "ConfigMap").items() if n.startswith("casebook-create-topics-script")]
    assert len(scripts) == 1
    script: str = scripts[0]["data"]["create-topics.sh"]
    return script


def scripted_topics(objs: Objects) -> list[str]:
    block = re.search(r"TOPICS=\((.*?)\)", topics_script(objs), re.S)
    assert block, "create-topics.sh lists its topics in TOPICS=( ... )"
    return block.group(1).split()


# --- rendering and schemas ---------------------------------------------------------


def test_every_object_is_valid_against_the_kubernetes_schemas(overlay: tuple[str, Objects]) -> None:
    name, objs = overlay
    assert objs, f"{name} rendered nothing"
    errors = []
    for o in objs:
        if o["kind"] in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(o, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{o['kind']}/{o['metadata']['name']}: {exc.message}")
    assert not errors, "\n".join(errors)


def test_the_validator_does_reject_a_broken_object() -> None:
    broken = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"replicas": "two", "selector": {}, "template": {}},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_custom_resources_are_well_formed(overlay: tuple[str, Objects]) -> None:
    _, objs = overlay
    for so in of_kind(objs, "ScaledObject").values():
        assert so["apiVersion"] == "keda.sh/v1alpha1"
        assert so["spec"]["scaleTargetRef"]["name"]
        assert so["spec"]["triggers"]
        for trigger in so["spec"]["triggers"]:
            assert trigger["type"] in {"kafka", "cpu"}
            assert all(isinstance(v, str) for v in trigger["metadata"].values()), "KEDA metadata values are strings"
    for sm in of_kind(objs, "ServiceMonitor").values():
        assert sm["apiVersion"] == "monitoring.coreos.com/v1"
        assert sm["spec"]["selector"]["matchLabels"]
        for endpoint in sm["spec"]["endpoints"]:
            assert endpoint["port"] and endpoint["path"] == "/metrics"
    for rule in of_kind(objs, "PrometheusRule").values():
        assert rule["apiVersion"] == "monitoring.coreos.com/v1"
        for group in rule["spec"]["groups"]:
            assert group["name"] and group["rules"]
            for r in group["rules"]:
                assert r["alert"] and r["expr"].strip()
                assert r["labels"]["severity"] in {"warning", "critical"}
                assert r["annotations"]["summary"]


def test_each_service_has_deployment_service_configmap_and_pdb(
    overlay: tuple[str, Objects], services: dict[str, int]
) -> None:
    _, objs = overlay
    for svc, port in services.items():
        full = f"casebook-{svc}"
        deploy = one(objs, "Deployment", full)
        c = container(deploy)
        assert c["image"].startswith(f"casebook/{svc}:"), "overlays pin a tag"
        assert {"name": "http", "containerPort": port, "protocol": "TCP"} in c["ports"]
        service = one(objs, "Service", full)
        assert selects({"matchLabels": service["spec"]["selector"]}, pod_labels(deploy))
        assert service["spec"]["ports"][0]["name"] == "http"
        config = one(objs, "ConfigMap", full)
        assert config["data"]["CASEBOOK_HTTP_PORT"] == str(port)
        refs = {src["configMapRef"]["name"] for src in c["envFrom"] if "configMapRef" in src}
        assert {"casebook-common", full} <= refs


# --- pods ---------------------------------------------------------------------------


def test_probes_point_at_healthz_and_readyz(overlay: tuple[str, Objects]) -> None:
    _, objs = overlay
    for name, deploy in of_kind(objs, "Deployment").items():
        c = container(deploy)
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert c["livenessProbe"]["httpGet"]["port"] == "http", name


def test_requests_and_limits_are_set(overlay: tuple[str, Objects]) -> None:
    _, objs = overlay
    pods = [(n, d["spec"]["template"]["spec"]) for n, d in of_kind(objs, "Deployment").items()]
    pods += [(n, j["spec"]["template"]["spec"]) for n, j in of_kind(objs, "Job").items()]
    for name, pod in pods:
        for c in pod["containers"]:
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][part]), f"{name}: {part}"


def test_pods_run_non_root_with_a_read_only_root(overlay: tuple[str, Objects]) -> None:
    _, objs = overlay
    pods = [(n, d["spec"]["template"]["spec"]) for n, d in of_kind(objs, "Deployment").items()]
    pods += [(n, j["spec"]["template"]["spec"]) for n, j in of_kind(objs, "Job").items()]
    for name, pod in pods:
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 10001, name
        assert psc["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["automountServiceAccountToken"] is False, name
        tmp_volumes = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert sc.get("runAsNonRoot", True) is True and sc.get("runAsUser", 10001) == 10001, name
            mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
            assert mounts.get("/tmp") in tmp_volumes, f"{name}: writable /tmp"


def test_shutdown_is_graceful_and_pods_spread(overlay: tuple[str, Objects]) -> None:
    _, objs = overlay
    for name, deploy in of_kind(objs, "Deployment").items():
        pod = deploy["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] >= 30, name
        assert container(deploy)["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep", name
        keys = {t["topologyKey"] for t in pod["topologySpreadConstraints"]}
        assert {"kubernetes.io/hostname", "topology.kubernetes.io/zone"} <= keys, name
        for t in pod["topologySpreadConstraints"]:
            assert selects(t["labelSelector"], pod_labels(deploy)), name


def test_every_deployment_has_a_pod_disruption_budget(overlay: tuple[str, Objects]) -> None:
    _, objs = overlay
    pdbs = list(of_kind(objs, "PodDisruptionBudget").values())
    for name, deploy in of_kind(objs, "Deployment").items():
        covering = [p for p in pdbs if selects(p["spec"]["selector"], pod_labels(deploy))]
        assert len(covering) == 1, name


# --- secrets ------------------------------------------------------------------------


def test_base_and_production_carry_no_secret_material(secretless: tuple[str, Objects]) -> None:
    name, objs = secretless
    for o in objs:
        if o["kind"] == "Secret":
            assert not o.get("data") and not o.get("stringData"), f"{name}: Secret {o['metadata']['name']}"
    for where, key, value in env_values(objs):
        if SECRETISH.search(key):
            assert not value, f"{name}: {where} sets {key} literally"
    for where, key, value in env_values(objs):
        assert not re.search(r"://[^/\s:@]+:[^@\s]+@", str(value)), f"{name}: {where} {key} embeds a password"


def test_secrets_are_referenced_not_defined(overlay: tuple[str, Objects], services: dict[str, int]) -> None:
    _, objs = overlay
    secret_names = set(of_kind(objs, "Secret"))
    for svc in services:
        deploy = one(objs, "Deployment", f"casebook-{svc}")
        env = {e["name"]: e for e in container(deploy)["env"]}
        for key in ("CASEBOOK_DATABASE_URL", "CASEBOOK_S3_ACCESS_KEY", "CASEBOOK_S3_SECRET_KEY"):
            assert "secretKeyRef" in env[key]["valueFrom"], f"{svc}: {key}"
        assert f"casebook-{svc}-db" in secret_refs(deploy, secret_names)


def test_dev_secrets_are_visibly_dev_only(dev_tree: Objects) -> None:
    secrets = of_kind(dev_tree, "Secret")
    assert secrets, "dev generates its throwaway Secrets"
    for secret in secrets.values():
        for key, value in secret.get("data", {}).items():
            assert "dev-only" in base64.b64decode(value).decode(), f"{secret['metadata']['name']}/{key}"


def test_incoming_bucket_credentials_reach_only_the_anonymiser_and_the_gateway(
    overlay: tuple[str, Objects],
) -> None:
    _, objs = overlay
    secret_names = set(of_kind(objs, "Secret"))
    users: dict[str, set[str]] = {INCOMING_READER: set(), INCOMING_WRITER: set()}
    for name, deploy in of_kind(objs, "Deployment").items():
        for ref in secret_refs(deploy, secret_names):
            if ref in users:
                users[ref].add(name)
    assert users[INCOMING_READER] == {"casebook-anonymiser"}, "only the anonymiser reads raw uploads"
    assert users[INCOMING_WRITER] == {"casebook-gateway"}, "the gateway writes with the put-only credential"
    anonymiser_env = {e["name"] for e in container(one(objs, "Deployment", "casebook-anonymiser"))["env"]}
    assert {"CASEBOOK_DEID_SECRET", "CASEBOOK_DEID_KEY_ID"} <= anonymiser_env


# --- scaling ------------------------------------------------------------------------


def test_workers_scale_on_lag_within_the_partition_count(
    overlay: tuple[str, Objects], workers: tuple[str, ...]
) -> None:
    _, objs = overlay
    partitions = int(topic_settings(objs)["CASEBOOK_TOPIC_PARTITIONS"])
    bootstrap = one(objs, "ConfigMap", "casebook-common")["data"]["CASEBOOK_KAFKA_BOOTSTRAP_SERVERS"]
    topics = set(scripted_topics(objs))
    scaled = of_kind(objs, "ScaledObject")
    assert set(scaled) == {f"casebook-{w}" for w in workers}
    for worker in workers:
        so = scaled[f"casebook-{worker}"]
        assert so["spec"]["scaleTargetRef"]["name"] == f"casebook-{worker}"
        one(objs, "Deployment", f"casebook-{worker}")
        assert 1 <= so["spec"]["minReplicaCount"] <= so["spec"]["maxReplicaCount"] <= partitions
        kafka = [t for t in so["spec"]["triggers"] if t["type"] == "kafka"]
        assert kafka, worker
        for trigger in kafka:
            meta = trigger["metadata"]
            assert meta["consumerGroup"] == f"casebook-{worker}"
            assert meta["topic"] in topics
            assert int(meta["lagThreshold"]) > 0
            assert meta["bootstrapServers"] == bootstrap, "KEDA and the pods must see the same brokers"
            assert meta["offsetResetPolicy"] == "earliest"


def test_gateway_scales_on_cpu(overlay: tuple[str, Objects]) -> None:
    _, objs = overlay
    hpas = of_kind(objs, "HorizontalPodAutoscaler")
    assert set(hpas) == {"casebook-gateway"}
    hpa = hpas["casebook-gateway"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "casebook-gateway"}
    assert 1 <= hpa["minReplicas"] < hpa["maxReplicas"]
    cpu = [m for m in hpa["metrics"] if m["type"] == "Resource" and m["resource"]["name"] == "cpu"]
    assert cpu and 0 < cpu[0]["resource"]["target"]["averageUtilization"] <= 100


def test_topic_job_creates_every_topic_and_its_dlq(overlay: tuple[str, Objects]) -> None:
    _, objs = overlay
    job = one(objs, "Job", "casebook-create-topics")
    pod = job["spec"]["template"]["spec"]
    scripts = {v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v}
    assert any(s.startswith("casebook-create-topics-script") for s in scripts)
    script = topics_script(objs)
    assert '"$topic.dlq"' in script and "--partitions" in script and "retention.ms" in script
    settings = topic_settings(objs)
    assert int(settings["CASEBOOK_TOPIC_PARTITIONS"]) == 6
    assert int(settings["CASEBOOK_TOPIC_RETENTION_MS"]) > 0 and int(settings["CASEBOOK_DLQ_RETENTION_MS"]) > 0
    events = pytest.importorskip("casebook_events.topics")
    assert sorted(scripted_topics(objs)) == sorted(str(t) for t in events.Topic)


# --- network ------------------------------------------------------------------------


def test_ingress_is_denied_by_default_and_only_the_gateway_faces_the_controller(
    overlay: tuple[str, Objects],
) -> None:
    _, objs = overlay
    policies = of_kind(objs, "NetworkPolicy")
    deny = [p for p in policies.values() if p["spec"]["podSelector"] == {} and not p["spec"].get("ingress")]
    assert deny and "Ingress" in deny[0]["spec"]["policyTypes"]
    from_controller = set()
    for name, deploy in of_kind(objs, "Deployment").items():
        mine = [
            p
            for p in policies.values()
            if p["spec"]["podSelector"] and selects(p["spec"]["podSelector"], pod_labels(deploy))
        ]
        assert mine, f"{name} has no NetworkPolicy of its own"
        for p in mine:
            for rule in p["spec"].get("ingress", []):
                for peer in rule.get("from", []):
                    ns = peer.get("namespaceSelector", {}).get("matchLabels", {})
                    if ns.get("kubernetes.io/metadata.name", "").startswith("ingress"):
                        from_controller.add(name)
                    assert peer, f"{name}: an empty peer would admit everyone"
    assert from_controller == {"casebook-gateway"}


def test_ingress_routes_public_paths_to_the_gateway(overlay: tuple[str, Objects]) -> None:
    _, objs = overlay
    ingress = one(objs, "Ingress", "casebook")
    paths = {
        p["path"]: p["backend"]["service"]["name"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]
    }
    for path in ("/v1", "/v1/moderation", "/v1/featured", "/v1/case-of-the-month", "/v1/achievements", "/v1/exports"):
        assert paths.get(path) == "casebook-gateway", path
    assert not any(p.startswith(("/metrics", "/healthz", "/readyz")) for p in paths)


# --- observability ------------------------------------------------------------------


def test_every_service_is_scraped(overlay: tuple[str, Objects]) -> None:
    _, objs = overlay
    monitors = list(of_kind(objs, "ServiceMonitor").values())
    assert monitors
    for name, service in of_kind(objs, "Service").items():
        assert any(selects(m["spec"]["selector"], service["metadata"]["labels"]) for m in monitors), name


def test_alerts_cover_lag_dlq_quarantine_outbox_and_errors(overlay: tuple[str, Objects]) -> None:
    _, objs = overlay
    exprs = " ".join(
        r["expr"]
        for rule in of_kind(objs, "PrometheusRule").values()
        for g in rule["spec"]["groups"]
        for r in g["rules"]
    )
    for metric in (
        "kafka_consumergroup_lag",
        "casebook_dlq_messages_total",
        "casebook_images_quarantined_total",
        "casebook_outbox_backlog",
        "casebook_http_requests_total",
    ):
        assert metric in exprs, metric


def test_grafana_dashboard_is_shipped_as_a_configmap(overlay: tuple[str, Objects]) -> None:
    _, objs = overlay
    config = one(objs, "ConfigMap", "casebook-grafana-dashboard")
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config["data"]["grafana-dashboard.json"])
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))
    for metric in (
        "casebook_http_requests_total",
        "kafka_consumergroup_lag",
        "faststream_",
        "casebook_uploads_total",
        "casebook_exports_built_total",
        "casebook_cases_approved_total",
    ):
        assert metric in exprs, metric

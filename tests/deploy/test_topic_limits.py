"""Topics are created with a stated `max.message.bytes`, the same in compose and Kubernetes and equal to the
producers' limit, so the broker and the services agree on what fits (the outbox parks anything larger)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from casebook_platform.settings import CommonSettings

ROOT = Path(__file__).resolve().parents[2]


def test_topics_are_created_with_the_producers_message_limit() -> None:
    script = (ROOT / "deploy/k8s/base/kafka/create-topics.sh").read_text()
    default = re.search(r'MAX_MESSAGE_BYTES="\$\{CASEBOOK_TOPIC_MAX_MESSAGE_BYTES:-(\d+)\}"', script)
    assert default, "create-topics.sh states a default max.message.bytes"
    assert '--config "max.message.bytes=$MAX_MESSAGE_BYTES"' in script  # on create
    assert "max.message.bytes=$MAX_MESSAGE_BYTES" in script.split("--add-config", 1)[1]  # and on re-runs
    job = [d for d in yaml.safe_load_all((ROOT / "deploy/k8s/base/kafka/topics-job.yaml").read_text())
           if d and d.get("kind") == "ConfigMap" and d["metadata"]["name"] == "casebook-topics"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    limits = {int(default.group(1)), int(job[0]["data"]["CASEBOOK_TOPIC_MAX_MESSAGE_BYTES"]),
              int(compose["services"]["kafka-init"]["environment"]["CASEBOOK_TOPIC_MAX_MESSAGE_BYTES"])}
    producer = CommonSettings.model_fields["kafka_max_request_size"].default
    assert limits == {producer}

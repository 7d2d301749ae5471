#!/bin/bash
# Creates every Casebook topic and its dead-letter topic, and (re)applies their
# retention. Safe to run again: existing topics are kept and only reconfigured.
# Used by the Kubernetes Job (casebook-create-topics) and by docker compose (kafka-init).
set -euo pipefail

BOOTSTRAP="${CASEBOOK_KAFKA_BOOTSTRAP_SERVERS:?set CASEBOOK_KAFKA_BOOTSTRAP_SERVERS}"
PARTITIONS="${CASEBOOK_TOPIC_PARTITIONS:-6}"
REPLICATION="${CASEBOOK_TOPIC_REPLICATION_FACTOR:-3}"
MIN_ISR="${CASEBOOK_TOPIC_MIN_INSYNC_REPLICAS:-2}"
RETENTION_MS="${CASEBOOK_TOPIC_RETENTION_MS:-1209600000}"      # 14 days: room to replay
DLQ_RETENTION_MS="${CASEBOOK_DLQ_RETENTION_MS:-2592000000}"    # 30 days: time to inspect and drain
# Largest record a topic takes: the producers' limit (CASEBOOK_KAFKA_MAX_REQUEST_SIZE, 8 MiB), so the broker
# and the services agree on what fits. A record the broker refuses is parked in its outbox, never lost.
MAX_MESSAGE_BYTES="${CASEBOOK_TOPIC_MAX_MESSAGE_BYTES:-8388608}"
BIN="${KAFKA_BIN:-/opt/kafka/bin}"

# Keep in step with casebook_events.topics.Topic.
TOPICS=(
  case.uploaded
  case.anonymised
  case.quarantined
  case.submitted
  case.updated
  case.deleted
  case.approved
  case.rejected
  case.featured
  case.of_the_month
  achievement.awarded
  export.requested
  export.ready
  export.failed
)

for attempt in $(seq 1 30); do
  if "$BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --list >/dev/null 2>&1; then
    break
  fi
  if [ "$attempt" -eq 30 ]; then
    echo "kafka at $BOOTSTRAP not reachable" >&2
    exit 1
  fi
  sleep 2
done

ensure_topic() {
  local topic="$1" retention="$2"
  "$BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
    --topic "$topic" --partitions "$PARTITIONS" --replication-factor "$REPLICATION" \
    --config "retention.ms=$retention" --config "min.insync.replicas=$MIN_ISR" \
    --config "max.message.bytes=$MAX_MESSAGE_BYTES" --config cleanup.policy=delete
  "$BIN/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP" --alter \
    --entity-type topics --entity-name "$topic" \
    --add-config "retention.ms=$retention,min.insync.replicas=$MIN_ISR,max.message.bytes=$MAX_MESSAGE_BYTES" >/dev/null
}

for topic in "${TOPICS[@]}"; do
  ensure_topic "$topic" "$RETENTION_MS"
  ensure_topic "$topic.dlq" "$DLQ_RETENTION_MS"
done

"$BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --describe | grep -E '^Topic:' || true
echo "created or updated ${#TOPICS[@]} topics and their dead-letter topics"

#!/bin/sh
# One-shot setup on a running Temporal server: the namespace and Switchyard's search attributes.
# Idempotent: what exists is left alone. Fails (exit 1) if they are not there after a minute.
set -eu
ns="${TEMPORAL_NAMESPACE:-default}"
addr="--address $TEMPORAL_ADDRESS"
waited=0
until temporal operator cluster health $addr >/dev/null 2>&1; do
  waited=$((waited + 2))
  if [ "$waited" -gt 300 ]; then echo "the Temporal server at $TEMPORAL_ADDRESS did not answer in 5 minutes" >&2; exit 1; fi
  sleep 2
done
temporal operator namespace describe $addr --namespace "$ns" >/dev/null 2>&1 ||
  temporal operator namespace create $addr --namespace "$ns" --retention 30d
attrs="LlmModel:Keyword LlmTier:Keyword LlmCategory:Keyword LlmOutcome:Keyword LlmBatch:Keyword LlmFeature:Keyword LlmCostNanos:Int LlmComplexity:Double DeferredProvider:Keyword DeferredBatchId:Keyword DeferredState:Keyword"
tries=0
while :; do
  have="$(temporal operator search-attribute list $addr --namespace "$ns" 2>/dev/null || true)"
  missing=""
  for a in $attrs; do
    echo "$have" | grep -qw "${a%%:*}" || missing="$missing $a"
  done
  [ -z "$missing" ] && break
  tries=$((tries + 1))
  if [ "$tries" -gt 30 ]; then
    echo "search attributes still missing after a minute:$missing" >&2
    exit 1
  fi
  # A namespace just created takes a few seconds to reach every service: try again.
  for a in $missing; do
    temporal operator search-attribute create $addr --namespace "$ns" --name "${a%%:*}" --type "${a##*:}" >/dev/null 2>&1 || true
  done
  sleep 2
done
echo "namespace $ns ready, with Switchyard's search attributes"

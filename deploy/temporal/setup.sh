#!/bin/sh
# One-shot setup on a running Temporal server: the namespace and Switchyard's search attributes.
# Idempotent: what exists is left alone.
set -eu
ns="${TEMPORAL_NAMESPACE:-default}"
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do sleep 2; done
temporal operator namespace describe --address "$TEMPORAL_ADDRESS" --namespace "$ns" >/dev/null 2>&1 ||
  temporal operator namespace create --address "$TEMPORAL_ADDRESS" --namespace "$ns" --retention 30d
for a in LlmModel:Keyword LlmTier:Keyword LlmCategory:Keyword LlmOutcome:Keyword LlmBatch:Keyword LlmFeature:Keyword LlmCostNanos:Int LlmComplexity:Double; do
  temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" --namespace "$ns" --name "${a%%:*}" --type "${a##*:}" 2>/dev/null || true
done
echo "namespace $ns ready"

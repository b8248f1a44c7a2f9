#!/usr/bin/env bash
# Starts rayvault-worker on this node's tailnet address (Linux and macOS).
# The secret must come from the environment (RAYVAULT_CLUSTER_SECRET); it is never a flag.
set -euo pipefail
: "${RAYVAULT_CLUSTER_SECRET:?set RAYVAULT_CLUSTER_SECRET (and RAYVAULT_CLUSTER_SECRET_PREVIOUS while rotating)}"
host=${RAYVAULT_WORKER_HOST:-}
if [ -z "$host" ] && command -v tailscale >/dev/null 2>&1; then host=$(tailscale ip -4 2>/dev/null | head -n1 || true); fi
export RAYVAULT_WORKER_HOST=${host:-127.0.0.1}
export RAYVAULT_WORKER_PORT=${RAYVAULT_WORKER_PORT:-8787}
export RAYVAULT_WORKER_ROOT=${RAYVAULT_WORKER_ROOT:-$HOME/.rayvault/worker}
export RAYVAULT_WORKER_ID=${RAYVAULT_WORKER_ID:-$(hostname -s)}
exec "${RAYVAULT_WORKER_BIN:-rayvault-worker}" "$@"

#!/usr/bin/env bash
# Soak: 100,000 signed JOB_STATUS requests at concurrency 64 against one worker on loopback
# (REQUESTS and CONCURRENCY override); prints errors, latency percentiles and the worker's RSS
# before and after. Builds first. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh >/dev/null
cmake --preset dev >/dev/null
cmake --build build --target rayvault-worker rayvault_soak >/dev/null
dir=$(mktemp -d /tmp/rayvault-soak.XXXXXX)
export RAYVAULT_CLUSTER_SECRET=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
build/worker/rayvault-worker --host 127.0.0.1 --port 0 --root "$dir/root" --ready-file "$dir/ready" 2>"$dir/worker.log" &
worker=$!
trap 'kill $worker 2>/dev/null; wait $worker 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do [ -s "$dir/ready" ] && break; sleep 0.05; done
port=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$dir/ready")
build/tests/rayvault_soak "$port" "$worker" "${REQUESTS:-100000}" "${CONCURRENCY:-64}"

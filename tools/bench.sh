#!/usr/bin/env bash
# The benchmark harness, one command: installs wrk and gnuplot, builds the worker, the controller
# and rayvault-bench (the plain-server baseline and the request signer), then measures every figure
# of docs/benchmarks.md against its baseline in the same run and writes that file (with its plots).
#   bash tools/bench.sh            the full run (about 15 minutes on 2 cores; a 10-minute 1080p test
#                                  video is made once and cached in build/bench-cache)
#   bash tools/bench.sh --smoke    every part for a second or so (CI runs it so the harness keeps working)
#   bash tools/bench.sh --only http,submit   some parts
# The health figure needs root (it makes a test tailnet); elsewhere it says why it was skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh wrk gnuplot-nox curl
preset=dev
if [ "${CI:-}" = "true" ] || [ "${RAYVAULT_WERROR:-}" = "1" ]; then preset=ci; fi
cmake --preset "$preset" ${RAYVAULT_CMAKE_ARGS:-} >/dev/null
cmake --build --preset "$preset" --target rayvault-worker rayvault-controller rayvault-bench
exec python3 tools/bench/bench.py "$@"

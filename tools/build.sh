#!/usr/bin/env bash
# Configures and builds RayVault cluster with CMake and Ninja into build/ (warnings are errors in CI).
set -euo pipefail
cd "$(dirname "$0")/.."
preset=dev
if [ "${CI:-}" = "true" ] || [ "${RAYVAULT_WERROR:-}" = "1" ]; then preset=ci; fi
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset"

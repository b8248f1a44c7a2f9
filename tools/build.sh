#!/usr/bin/env bash
# Configures and builds RayVault cluster with CMake and Ninja into build/ (warnings are errors in CI).
set -euo pipefail
cd "$(dirname "$0")/.."
preset=dev
if [ "${CI:-}" = "true" ] || [ "${RAYVAULT_WERROR:-}" = "1" ]; then preset=ci; fi
# RAYVAULT_CMAKE_ARGS: extra configure arguments (tools/test.sh passes the Windows build to test).
# shellcheck disable=SC2086
cmake --preset "$preset" ${RAYVAULT_CMAKE_ARGS:-} >/dev/null
cmake --build --preset "$preset"

#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test with ctest: unit and integration tests on
# Linux, and the Windows build (cross-built with mingw-w64) under wine. RAYVAULT_SKIP_WINDOWS=1
# leaves the Windows part out for a quick local run.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${RAYVAULT_SKIP_WINDOWS:-}" = "1" ]; then
  bash tools/install_deps.sh
  export RAYVAULT_CMAKE_ARGS="-DRAYVAULT_WINE_BUILD="
else
  bash tools/install_deps.sh --with-wine
  if [ "${CI:-}" = "true" ]; then export RAYVAULT_WERROR=1; fi
  bash tools/windows/cross_build.sh
  export RAYVAULT_CMAKE_ARGS="-DRAYVAULT_WINE_BUILD=$PWD/build-win"
fi
bash tools/build.sh
ctest --test-dir build --output-on-failure -j 2 --timeout 600

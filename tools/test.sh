#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test with ctest: unit and integration tests on
# Linux, the Windows build (cross-built with mingw-w64) under wine, then unit and integration tests
# again under ASan+UBSan and TSan. RAYVAULT_SKIP_WINDOWS=1 and RAYVAULT_SKIP_SANITIZERS=1 leave
# those parts out for a quick local run.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${RAYVAULT_SKIP_WINDOWS:-}" = "1" ]; then
  bash tools/install_deps.sh --with-slurm wrk gnuplot-nox curl
  export RAYVAULT_CMAKE_ARGS="-DRAYVAULT_WINE_BUILD="
else
  bash tools/install_deps.sh --with-wine --with-slurm wrk gnuplot-nox curl
  if [ "${CI:-}" = "true" ]; then export RAYVAULT_WERROR=1; fi
  bash tools/windows/cross_build.sh
  export RAYVAULT_CMAKE_ARGS="-DRAYVAULT_WINE_BUILD=$PWD/build-win"
fi
bash tools/build.sh
ctest --test-dir build --output-on-failure -j 2 --timeout 600

# The same suites under the sanitizers (RAYVAULT_SKIP_SANITIZERS=1 leaves them out): unit and
# integration tests under ASan+UBSan, and under TSan for the threads of the engine, the server and
# the controller. The workers and controllers the integration tests start are built with them too.
if [ "${RAYVAULT_SKIP_SANITIZERS:-}" != "1" ]; then
  for preset in asan-ubsan:build-asan tsan:build-tsan; do
    echo "test: building and testing under ${preset%%:*}"
    cmake --preset "${preset%%:*}" -DRAYVAULT_WINE_BUILD= >/dev/null
    cmake --build "${preset#*:}" --target rayvault_unit_tests rayvault_integration_tests
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 TSAN_OPTIONS="halt_on_error=1 suppressions=$PWD/tools/tsan.supp" \
      ctest --test-dir "${preset#*:}" --output-on-failure -j 2 --timeout 600 -E '^(wine|tools|bench)/'
  done
fi

#!/usr/bin/env bash
# Cross-builds rayvault-worker.exe, rayvault-controller.exe, the unit tests and the tool stand-ins
# for Windows x86-64 with Debian's mingw-w64, statically linked. libsodium, SQLite (with
# SQLiteCpp), libmicrohttpd and cpp-httplib's full header come from Debian's source packages, built
# once into build-win/deps/prefix and reused; header-only libraries come from Debian's -dev packages.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=${RAYVAULT_WIN_BUILD:-$repo/build-win}
deps=$out/deps
prefix=$deps/prefix
stamp=$prefix/.built-v2
host=x86_64-w64-mingw32
cc=$host-gcc-posix
cxx=$host-g++-posix
jobs=$(nproc)

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
bash "$repo/tools/install_deps.sh" g++-mingw-w64-x86-64-posix mingw-w64-tools binutils-mingw-w64-x86-64 dpkg-dev tcl \
  autoconf automake libtool

fetch_sources() {
  # A deb-src entry for as long as `apt-get source` needs it, removed again whatever happens.
  local list=/etc/apt/sources.list.d/rayvault-cross-build-src.sources
  "${sudo_cmd[@]}" tee "$list" >/dev/null <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  trap '"${sudo_cmd[@]}" rm -f '"$list"'; "${sudo_cmd[@]}" apt-get update -qq || true' RETURN
  "${sudo_cmd[@]}" apt-get update -qq
  rm -rf "$deps/src" && mkdir -p "$deps/src"
  (cd "$deps/src" && apt-get source -qq cpp-httplib libsodium sqlite3 sqlitecpp libmicrohttpd >/dev/null 2>&1) ||
    (cd "$deps/src" && apt-get source cpp-httplib libsodium sqlite3 sqlitecpp libmicrohttpd)
}

build_deps() {
  echo "cross_build: building libsodium, SQLite, SQLiteCpp, libmicrohttpd for $host (once)"
  rm -rf "$prefix" && mkdir -p "$prefix/include" "$prefix/lib"
  fetch_sources
  local src=$deps/src

  cp "$(find "$src" -maxdepth 2 -name httplib.h -path '*cpp-httplib*' | head -n1)" "$prefix/include/httplib.h"

  (cd "$src"/libsodium-*/ &&
    { [ -x configure ] || ./autogen.sh -s >/dev/null 2>&1 || ./autogen.sh >/dev/null; } &&
    ./configure --host=$host --prefix="$prefix" --disable-shared --enable-static CC=$cc >/dev/null &&
    make -j"$jobs" >/dev/null && make install >/dev/null)

  # The worker's HTTP server; no TLS (the tailnet encrypts), WSAPoll where Linux has epoll.
  (cd "$src"/libmicrohttpd-*/ &&
    ./configure --host=$host --prefix="$prefix" --disable-https --disable-shared --enable-static --disable-doc \
      --disable-examples --disable-curl CC=$cc >/dev/null &&
    make -j"$jobs" -C src/microhttpd >/dev/null && make -C src/microhttpd install >/dev/null &&
    make -C src/include install >/dev/null)

  # The amalgamation is generated natively (tclsh), then compiled for Windows.
  (cd "$src"/sqlite3-*/ && mkdir -p native && cd native && ../configure >/dev/null && make sqlite3.c >/dev/null &&
    $cc -O2 -DSQLITE_THREADSAFE=1 -DSQLITE_OMIT_LOAD_EXTENSION -c sqlite3.c -o sqlite3.o &&
    $host-ar rcs "$prefix/lib/libsqlite3.a" sqlite3.o && cp sqlite3.h sqlite3ext.h "$prefix/include/")

  (cd "$src"/sqlitecpp-*/ 2>/dev/null || cd "$src"/SQLiteCpp-*/
    mkdir -p objs
    for f in src/*.cpp; do $cxx -std=c++17 -O2 -DSQLITE_OMIT_LOAD_EXTENSION -w -Iinclude -I"$prefix/include" -c "$f" -o "objs/$(basename "$f" .cpp).o"; done
    $host-ar rcs "$prefix/lib/libsqlitecpp.a" objs/*.o
    cp -r include/SQLiteCpp "$prefix/include/")

  for d in nlohmann CLI doctest fmt; do cp -r "/usr/include/$d" "$prefix/include/"; done
  touch "$stamp"
}

[ -f "$stamp" ] || build_deps

cmake -G Ninja -S "$repo" -B "$out" -DCMAKE_TOOLCHAIN_FILE="$repo/tools/windows/mingw-toolchain.cmake" \
  -DRAYVAULT_DEPS_PREFIX="$prefix" -DCMAKE_BUILD_TYPE=Release -DRAYVAULT_WERROR="${RAYVAULT_WERROR:-OFF}" >/dev/null
cmake --build "$out" --target rayvault-worker rayvault-controller rayvault_unit_tests

mkdir -p "$out/standins"
$cxx -std=c++20 -O2 -static -municode "$repo/tools/windows/standins/ffprobe_standin.cpp" -o "$out/standins/ffprobe.exe"

# Only Windows' own DLLs may be imported.
allowed='^(kernel32|ws2_32|shell32|advapi32|msvcrt|user32|bcrypt|crypt32|ntdll|ucrtbase|api-ms-win-.*)\.dll$'
for exe in "$out/worker/rayvault-worker.exe" "$out/controller/rayvault-controller.exe" \
           "$out/tests/rayvault_unit_tests.exe" "$out/standins/ffprobe.exe"; do
  dlls=$($host-objdump -p "$exe" | sed -n 's/.*DLL Name: //p' | tr 'A-Z' 'a-z' | sort -u)
  bad=$(echo "$dlls" | grep -Ev "$allowed" || true)
  if [ -n "$bad" ]; then echo "cross_build: $exe imports non-system DLLs: $bad" >&2; exit 1; fi
  echo "cross_build: $(basename "$exe") imports $(echo $dlls)"
done

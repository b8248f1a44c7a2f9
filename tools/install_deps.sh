#!/usr/bin/env bash
# Installs the Debian 12 packages RayVault cluster needs to build, test and run its demo.
# --with-wine adds wine, which the tests use to run the Windows build; --with-slurm adds Slurm and
# munge, which the Slurm tests start as a throwaway cluster; further arguments are more packages to
# install (tools/windows/cross_build.sh passes its toolchain).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkgconf ccache git
  libcpp-httplib-dev libmicrohttpd-dev libssl-dev nlohmann-json3-dev libsodium-dev libfmt-dev
  libcli11-dev doctest-dev libsqlitecpp-dev libsqlite3-dev sqlite3
  ffmpeg espeak-ng openssl xvfb x11-utils python3
)
# Node.js checks the PowerShell scripts' syntax in the tests; a machine that has node keeps its own.
command -v node >/dev/null 2>&1 || packages+=(nodejs npm)

for arg in "$@"; do
  if [ "$arg" = "--with-wine" ]; then packages+=(wine wine64 procps)
  elif [ "$arg" = "--with-slurm" ]; then packages+=(slurm-wlm munge iproute2 procps)
  else packages+=("$arg"); fi
done

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install_deps: all packages present"
  exit 0
fi
echo "install_deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"

#!/usr/bin/env bash
# Parses every PowerShell script under tools/ and worker/ (or the files given) with the tree-sitter-powershell
# grammar; exits 1 on a syntax error. Installs its two npm packages on first use.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
if [ ! -d "$here/ps_check/node_modules/web-tree-sitter" ]; then
  (cd "$here/ps_check" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
fi
if [ "$#" -eq 0 ]; then
  mapfile -t files < <(find "$repo/tools" "$repo/worker" -name '*.ps1' -not -path '*/node_modules/*' | sort)
  set -- "${files[@]}"
fi
exec node "$here/ps_check/check.mjs" "$@"

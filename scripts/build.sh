#!/usr/bin/env bash
# Installs what is missing (Debian packages) and builds detops into build/.
# Quiet when there is nothing to do. Usage: scripts/build.sh [cmake targets...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
if [ ! -f build/CMakeCache.txt ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
if [ $# -gt 0 ]; then
  cmake --build build -j "$jobs" --target "$@" >/dev/null
else
  cmake --build build -j "$jobs" >/dev/null
fi

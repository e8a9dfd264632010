#!/usr/bin/env bash
# Installs what is missing (Debian packages) and builds detops into build/.
# Quiet when there is nothing to do. Usage: scripts/build.sh [cmake targets...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# The npm packages (package-lock.json): installed by `npm ci` once, and again
# whenever the lock changes.
lock_sha=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.detops-lock 2>/dev/null)" != "$lock_sha" ]; then
  echo "detops: npm ci (pretrained weights, TensorFlow.js for the tests)" >&2
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  echo "$lock_sha" >node_modules/.detops-lock
fi
jobs=$(nproc 2>/dev/null || echo 2)
if [ ! -f build/CMakeCache.txt ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
if [ $# -gt 0 ]; then
  cmake --build build -j "$jobs" --target "$@" >/dev/null
else
  cmake --build build -j "$jobs" >/dev/null
fi

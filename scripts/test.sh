#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test (unit and end to end).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
cd build
# Tests run in parallel, and LibTorch and OpenBLAS share OpenMP workers that
# spin while they wait: two training tests side by side on two cores took
# 228 s each, against 38-46 s with passive waiting (docs/BENCHMARKS.md).
export OMP_WAIT_POLICY=PASSIVE
ctest --output-on-failure -j "$(nproc 2>/dev/null || echo 2)" "$@"

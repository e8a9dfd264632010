#!/usr/bin/env bash
# The training quality bar: a seeded synthetic set of N images (default 600)
# of KIND (car | road), imported and validated, the n model trained within a
# time budget of MINUTES (default 10) on this machine, then evaluated on the
# test split. Prints the run's figures; the run stays in the workspace for
# `detops runs show`.
#   bench/quality_bar.sh [KIND] [N] [MINUTES] [SCRATCH_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-car}
n=${2:-600}
minutes=${3:-10}
scratch=${4:-$(mktemp -d)}
scripts/build.sh detops
detops="$PWD/build/detops"
src="$scratch/$kind-$n"
ws="$scratch/ws-$kind"
rm -rf "$ws"
[ -f "$src/data.yaml" ] || "$detops" synth "$src" --kind "$kind" --n "$n" --seed 1 2>/dev/null
"$detops" -w "$ws" data import "$kind" "$src" >/dev/null
echo "== $kind: $n images, model n, ${minutes} min budget; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s)
"$detops" -w "$ws" train "$kind" --model n --epochs 300 --minutes "$minutes" --threads "$(nproc)" \
  --name "quality-$kind" 2>&1 | tr '\r' '\n' | grep -v '^epoch .* step ' || true
echo "wall: $(( $(date +%s) - start )) s"
"$detops" -w "$ws" eval "quality-$kind" "$kind" --split test --threads "$(nproc)"

#!/usr/bin/env bash
# The near-duplicate check (no_split_leakage, near_duplicates) on distinct
# scenes and on real exports: synthesizes car and road sets (N images each,
# default 1500, seeds 1 and 2), imports each, validates it with the default
# suite and with the old dHash-only rule (max_hamming 2, no thumbnail check),
# and prints a Markdown table: images flagged as cross-split leakage and
# near-duplicate pairs. With REALDATA (default ../shared/realdata, if there)
# the two real exports too. The synthetic scenes are all distinct, so every
# synthetic flag is a false positive.
#   bench/near_duplicates.sh [N] [SCRATCH_DIR]   (NO_BUILD=1: no build; DETOPS=path: that binary)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1500}
scratch=${2:-$(mktemp -d)}
realdata=${REALDATA:-$PWD/../shared/realdata}
[ -n "${NO_BUILD:-}" ] || scripts/build.sh detops
detops="${DETOPS:-$PWD/build/detops}"
ws="$scratch/ws"
rm -rf "$ws"
cat > "$scratch/old.yaml" <<'YAML'
name: dhash-only
base: none
expectations:
  no_split_leakage: {max_hamming: 2, min_correlation: -1}
  near_duplicates: {max_hamming: 3, min_correlation: -1}
YAML
# row NAME: leakage images and near-duplicate pairs of NAME's latest report
row() {
  "$detops" -w "$ws" data report "$1" --json | python3 -c '
import json, sys
r = {e["type"]: e for e in json.load(sys.stdin)["results"]}
print(int(r["no_split_leakage"]["observed"]), int(r["near_duplicates"]["observed"]))'
}
echo "| set | images | leakage images, dHash <= 2 only | near-dup pairs, dHash <= 3 only | leakage images, default | near-dup pairs, default |"
echo "|---|---|---|---|---|---|"
check() {  # check NAME SOURCE
  local name=$1 src=$2 images old new
  images=$("$detops" -w "$ws" data import "$name" "$src" --threads 2 2>/dev/null |
    grep -o '[0-9]* images' | head -1 | cut -d' ' -f1)
  "$detops" -w "$ws" data validate "$name" --suite "$scratch/old.yaml" --threads 2 >/dev/null || true
  old=$(row "$name")
  "$detops" -w "$ws" data validate "$name" --threads 2 >/dev/null || true
  new=$(row "$name")
  echo "| $name | $images | ${old% *} | ${old#* } | ${new% *} | ${new#* } |"
}
for kind in car road; do
  for seed in 1 2; do
    src="$scratch/$kind-$seed-$n"
    if [ ! -f "$src/data.yaml" ]; then
      rm -rf "$src"
      "$detops" synth "$src" --kind "$kind" --n "$n" --seed "$seed" --threads 2 >/dev/null 2>&1
    fi
    check "$kind-$seed" "$src"
  done
done
if [ -d "$realdata" ]; then
  check cardamage-real "$realdata/cardamage-roboflow"
  check pothole-real "$realdata/pothole-roboflow/dataset"  # its data.yaml names paths that exist for nobody
fi

#!/usr/bin/env bash
# Import and validate N synthetic 640x480 images (default 10,000): first
# import, validation, unchanged re-import, re-validation; wall time,
# images/s and peak resident memory of each command. Prints a Markdown table
# for docs/BENCHMARKS.md.
#   bench/import_validate.sh [N] [SCRATCH_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
scratch=${2:-$(mktemp -d)}
scripts/build.sh detops
detops="$PWD/build/detops"
src="$scratch/src-$n"
ws="$scratch/ws"
rm -rf "$ws"
if [ ! -f "$src/data.yaml" ]; then
  rm -rf "$src"
  start=$(date +%s.%N)
  "$detops" synth "$src" --kind road --n "$n" --seed 1 --threads 2 2>/dev/null
  echo "synth: $n images in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s" >&2
fi
sync
# measure LABEL CMD...: prints "| LABEL | seconds | images/s | peak RSS MiB |"
measure() {
  local label=$1
  shift
  local out
  # Validation exits 4 on failed expectations; the figures still count.
  out=$(/usr/bin/time -f "%e %M" -o /dev/stdout "$@" 2>/dev/null | tail -1) || true
  awk -v l="$label" -v n="$n" -v s="${out% *}" -v k="${out#* }" \
    'BEGIN{printf "| %s | %.2f | %.0f | %.0f |\n", l, s, n / s, k / 1024}'
}
echo "| step ($n images, 640x480 JPEG) | seconds | images/s | peak RSS MiB |"
echo "|---|---|---|---|"
measure "first import" "$detops" -w "$ws" data import roads "$src" --threads 2
measure "validate (decode + profile)" "$detops" -w "$ws" data validate roads --threads 2
measure "re-import, unchanged" "$detops" -w "$ws" data import roads "$src" --threads 2
measure "re-validate (profiles cached)" "$detops" -w "$ws" data validate roads --threads 2

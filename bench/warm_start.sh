#!/usr/bin/env bash
# Unattended retraining (issue 23): when new data arrives, is it better to
# start the new model from production's weights (warm start, `train --init`)
# or from scratch, given the same time budget?
#
#   bench/warm_start.sh WORK_DIR [BUDGET_MINUTES]     (budget default 2)
#   DETOPS=path/to/detops        the binary (default build/detops; not built here)
#   WARM_START_PROD_MINUTES=4    the production model's training budget
#   WARM_START_N=600             original car photos (seed 1)
#   WARM_START_DARK_N=200        "new conditions": dark car photos (seed 5)
#
# 1. cars@1: `synth car --n 600 --seed 1`, imported; `prod` trained on it for
#    WARM_START_PROD_MINUTES, registered as cars@1 and promoted to production.
# 2. New conditions: `synth car --n 200 --seed 5 --lighting dark`. Its train
#    split is copied (names prefixed dark_) into the original folder's train
#    split and the folder imported again: cars@2 = cars@1 + the dark train
#    photos, the same val and test. The dark set alone is imported as dark@1;
#    its test split is the second test set.
# 3. Two runs on cars@2, BUDGET minutes each: `warm` (--init prod) and
#    `scratch`. Then prod, warm and scratch are evaluated on cars@2's test
#    split and dark@1's test split (fp32, conf 0.25).
#
# Prints one table: model, mAP50 on each test split, epochs, best val mAP50.
# WORK_DIR's workspace and source folders are made anew each time. About
# PROD_MINUTES + 2 x BUDGET + 2 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:?usage: bench/warm_start.sh WORK_DIR [BUDGET_MINUTES]}
budget=${2:-2}
detops=${DETOPS:-$PWD/build/detops}
prod_minutes=${WARM_START_PROD_MINUTES:-4}
n=${WARM_START_N:-600}
dark_n=${WARM_START_DARK_N:-200}
py=/usr/bin/python3 # Debian's interpreter: the first python3 on PATH may lack its modules
if [ ! -x "$detops" ]; then
  echo "warm_start: $detops is missing: build it first (scripts/build.sh detops)" >&2
  exit 1
fi
mkdir -p "$work"
work=$(cd "$work" && pwd)
ws="$work/ws"
cars="$work/cars"
dark="$work/dark"
rm -rf "$ws" "$cars" "$dark"
log() { echo "warm_start: $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg): $*" >&2; }
d() { "$detops" -w "$ws" "$@"; }
# train DATASET NAME MINUTES [ARGS...]: prints the run's epochs and best val mAP50
train() {
  local dataset=$1 name=$2 minutes=$3
  shift 3
  if ! d train "$dataset" --model n --minutes "$minutes" --name "$name" --quiet --json "$@" \
    >"$work/$name.json" 2>"$work/$name.err"; then
    echo "warm_start: training $name failed:" >&2
    tail -20 "$work/$name.err" >&2
    exit 1
  fi
  "$py" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["epochs"], "%.3f" % r["best_val_map50"])' \
    "$work/$name.json"
}
map50() { # RUN DATASET -> test mAP50
  d eval "$1" "$2" --split test --json 2>/dev/null |
    "$py" -c 'import json,sys; print("%.3f" % json.load(sys.stdin)["map50"])'
}

log "synthesizing $n car photos (seed 1) and $dark_n dark ones (seed 5)"
"$detops" synth "$cars" --kind car --n "$n" --seed 1 >/dev/null 2>&1
"$detops" synth "$dark" --kind car --n "$dark_n" --seed 5 --lighting dark >/dev/null 2>&1
d data import cars "$cars" >/dev/null 2>&1

log "training prod on cars@1, $prod_minutes min"
out=$(train cars prod "$prod_minutes")
read -r prod_epochs prod_val <<<"$out"
d models register prod --name cars >/dev/null
d models promote cars@1 --to production --force --reason bench >/dev/null

log "cars@2 = cars@1 + the dark train split; dark@1 = the dark set"
dark_train=0
for img in "$dark"/images/train/*; do
  base=$(basename "$img")
  cp "$img" "$cars/images/train/dark_$base"
  cp "$dark/labels/train/${base%.*}.txt" "$cars/labels/train/dark_${base%.*}.txt"
  dark_train=$((dark_train + 1))
done
d data import cars "$cars" >/dev/null 2>&1
d data import dark "$dark" >/dev/null 2>&1

log "training warm (--init prod) on cars@2, $budget min"
out=$(train cars@2 warm "$budget" --init prod)
read -r warm_epochs warm_val <<<"$out"
log "training scratch on cars@2, $budget min"
out=$(train cars@2 scratch "$budget")
read -r scratch_epochs scratch_val <<<"$out"

log "evaluating"
echo "== $n car photos + $dark_train dark train photos; prod $prod_minutes min on cars@1," \
  "warm and scratch $budget min each on cars@2; $(nproc) cores"
echo "| model | test mAP50, original (cars@2) | test mAP50, dark (dark@1) | epochs | best val mAP50 (its own set) |"
echo "|---|---|---|---|---|"
echo "| prod (cars@1, $prod_minutes min) | $(map50 prod cars@2) | $(map50 prod dark@1) | $prod_epochs | $prod_val |"
echo "| warm (cars@2, --init prod, $budget min) | $(map50 warm cars@2) | $(map50 warm dark@1) | $warm_epochs | $warm_val |"
echo "| scratch (cars@2, $budget min) | $(map50 scratch cars@2) | $(map50 scratch dark@1) | $scratch_epochs | $scratch_val |"
log "done"

#!/usr/bin/env bash
# The main job: installs what is needed, builds, and runs the loop on the
# embedded default (SQLite + blob folder) in a fresh demo workspace,
# ./detops-demo (recreated on every run; your ./detops-ws is not touched).
# Data stage: synthesize car-damage photos, import them as a versioned
# dataset, validate, show; then a batch of dark photos arrives, becomes
# version 2, and validation flags the poor lighting. Model stage: train a
# detector on version 1 (a short time budget: DETOPS_DEMO_MINUTES, default
# 3), evaluate it on the test split, predict on a dark photo, list the runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
detops="$PWD/build/detops"
ws="$PWD/detops-demo"
rm -rf "$ws"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "synthesize 300 car-panel photos with scratches and dents"
"$detops" synth "$work/cars" --kind car --n 300 --seed 1 2>/dev/null

step "import them as dataset 'cars' (workspace $ws)"
"$detops" -w "$ws" data import cars "$work/cars" 2>/dev/null

step "validate cars against the default expectation suite"
"$detops" -w "$ws" data validate cars --max-findings 3 2>/dev/null || true

step "what is in it"
"$detops" -w "$ws" data show cars

step "a batch of 60 dark photos arrives; import the grown folder"
"$detops" synth "$work/dark" --kind car --n 60 --seed 2 --lighting dark 2>/dev/null
for split in train val test; do
  for f in "$work/dark/images/$split"/*; do cp "$f" "$work/cars/images/$split/dark_$(basename "$f")"; done
  for f in "$work/dark/labels/$split"/*; do cp "$f" "$work/cars/labels/$split/dark_$(basename "$f")"; done
done
"$detops" -w "$ws" data import cars "$work/cars" 2>/dev/null
"$detops" -w "$ws" data diff cars@1 cars@2 | head -8

step "validate cars@2: poor lighting is flagged"
"$detops" -w "$ws" data validate cars@2 --max-findings 3 2>/dev/null || true

step "all versions"
"$detops" -w "$ws" data ls

step "train a detector on cars@1 (${DETOPS_DEMO_MINUTES:-3} minute budget; tracked run)"
"$detops" -w "$ws" train cars@1 --model n --epochs 100 --minutes "${DETOPS_DEMO_MINUTES:-3}" \
  --name demo-train 2>&1 | tr '\r' '\n' | grep -v ' step ' || true

step "evaluate it on the test split"
"$detops" -w "$ws" eval demo-train cars@1 --split test --plots "$ws/plots"

step "predict on one of the dark photos"
dark_photo=$(ls "$work/dark/images/test"/* | head -1)
"$detops" -w "$ws" predict demo-train "$dark_photo" --out "$ws/predictions"

step "runs"
"$detops" -w "$ws" runs ls

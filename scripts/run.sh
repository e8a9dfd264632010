#!/usr/bin/env bash
# The main job: installs what is needed, builds, and runs the loop on the
# embedded default (SQLite + blob folder) in a fresh demo workspace,
# ./detops-demo (recreated on every run; your ./detops-ws is not touched).
# Data stage: synthesize car-damage photos, import them as a versioned
# dataset, validate, show; then a batch of dark photos arrives, becomes
# version 2, and validation flags the poor lighting. Model stage: train a
# detector on version 1 (a time budget: DETOPS_DEMO_MINUTES, default
# 10), evaluate it on the test split, predict on a dark photo, list the runs.
# Registry and serving: register the run as model 'cars', promote it through
# the gates (forced with a reason when a short demo budget misses the
# floors), serve it on 127.0.0.1, send photos with the client, send
# corrected boxes back. Monitoring: photos like the training data, then a
# burst taken at dusk; the monitor inside the server flags the drift (alert,
# levels, automation rate, resources). Stop the server (SIGTERM drains),
# and export the feedback as a new dataset version.
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

step "train a detector on cars@1 (${DETOPS_DEMO_MINUTES:-10} minute budget; tracked run)"
# The learning-rate schedule fills the budget (no --epochs). Measured on
# 2026-12-07: 2 minutes give test mAP50 0.009; 10 minutes (99 epochs) give
# val mAP50 0.016, the loss stalling at ~1.55 as in docs/detector.md's
# collapse at the default peak rate. The demo model needs that recipe fixed
# or a pretrained start (issue 24).
"$detops" -w "$ws" train cars@1 --model n --minutes "${DETOPS_DEMO_MINUTES:-10}" \
  --name demo-train 2>&1 | tr '\r' '\n' | grep -v ' step ' || true

step "evaluate it on the test split"
"$detops" -w "$ws" eval demo-train cars@1 --split test --plots "$ws/plots"

step "predict on one of the dark photos"
dark_photo=$(ls "$work/dark/images/test"/* | head -1)
"$detops" -w "$ws" predict demo-train "$dark_photo" --out "$ws/predictions"

step "runs"
"$detops" -w "$ws" runs ls

step "register the run as model 'cars' (weights, test metrics, reference profile)"
"$detops" -w "$ws" models register demo-train --name cars 2>/dev/null

step "promote cars@1 to staging, then production, through the default policy's gates"
"$detops" -w "$ws" models promote cars@1 --to staging 2>/dev/null ||
  "$detops" -w "$ws" models promote cars@1 --to staging --force \
    --reason "demo: ${DETOPS_DEMO_MINUTES:-10}-minute training budget" 2>/dev/null
"$detops" -w "$ws" models promote cars@1 --to production 2>/dev/null ||
  "$detops" -w "$ws" models promote cars@1 --to production --force \
    --reason "demo: ${DETOPS_DEMO_MINUTES:-10}-minute training budget" 2>/dev/null
"$detops" -w "$ws" models history cars

step "serve cars (production alias) on 127.0.0.1 with the monitor; keep every request image for labelling"
# The demo's traffic is short: windows of 40 photos (the default is 200),
# scored every 2 s.
printf 'window: {size: 40, min_samples: 30}\n' >"$work/monitor.yaml"
"$detops" -w "$ws" serve --model cars --port 0 --keep-images 1 \
  --monitor-policy "$work/monitor.yaml" --monitor-every 2 --monitor-every-requests 40 \
  --sample-every 1 >"$work/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 300); do
  grep -q "ready on" "$work/serve.log" && break
  kill -0 $server 2>/dev/null || { cat "$work/serve.log"; exit 1; }
  sleep 0.1
done
url=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/serve.log" | head -1)
echo "server: $url"

step "predict with the client (annotated copies in $ws/served)"
photos=$(ls "$work/cars/images/test"/*.jpg | head -3)
"$detops" client predict "$url" $photos --draw "$ws/served" | tee "$work/client.out"

step "the same over plain HTTP"
first=$(echo "$photos" | head -1)
curl -s -X POST --data-binary @"$first" -H 'Content-Type: image/jpeg' "$url/v1/predict?max_det=3"
echo

step "send corrected boxes for the first prediction (writer token)"
token=$("$detops" -w "$ws" tokens create --role writer --name demo 2>/dev/null | grep -o 'dtk_[0-9a-f_]*')
id=$(grep -o 'id [0-9a-f]*' "$work/client.out" | head -1 | cut -d' ' -f2)
"$detops" client feedback "$url" "$id" --box dent,100,120,180,200 --token "$token"

step "monitoring: photos like the training data, then 40 taken at dusk (poorer light)"
normal=$(ls "$work/cars/images/val"/*.jpg "$work/cars/images/test"/*.jpg | grep -v '/dark_' | sed -n '1,36p')
"$detops" client predict "$url" $normal >/dev/null
"$detops" synth "$work/dusk" --kind car --n 40 --seed 3 --lighting dusk 2>/dev/null
"$detops" client predict "$url" $(ls "$work/dusk/images"/*/*.jpg) >/dev/null
for _ in $(seq 1 30); do # the monitor scores each window of 40 within ~2 s
  windows=$("$detops" -w "$ws" monitor report --model cars --json 2>/dev/null | grep -c '"last_id"' || true)
  [ "$windows" -ge 2 ] && break
  sleep 1
done

step "monitor status: the level at a glance"
"$detops" -w "$ws" monitor status

step "monitor report: every window (drift, latency, automation), the dusk window in full, charts"
"$detops" -w "$ws" monitor report --model cars --plots "$ws/monitor"

step "the drift alert"
"$detops" -w "$ws" alerts ls

step "server metrics (excerpt of $url/metrics)"
curl -s "$url/metrics" | grep -E '^detops_(http_requests_total|predictions_total|model_info|prediction_log_written_total|drift_score\{signal="input\.brightness"|monitor_level|automation_rate|alerts_active|monitor_cpu_seconds_total|resource)' || true

step "stop the server (SIGTERM drains the queue and flushes the prediction log)"
kill -TERM $server
wait $server || true
tail -2 "$work/serve.log"

step "turn the feedback into a new dataset version"
"$detops" -w "$ws" feedback export cars 2>/dev/null
"$detops" -w "$ws" data ls

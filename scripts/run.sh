#!/usr/bin/env bash
# The main job: installs what is needed, builds, and runs the whole loop on
# the embedded default (SQLite + blob folder) in a fresh demo workspace,
# ./detops-demo (recreated on every run; your ./detops-ws is not touched):
#   synthesize -> import -> validate -> train -> register -> promote ->
#   serve (with the controller) -> normal traffic -> dark traffic, labelled
#   by an inspector -> drift alert -> automatic retraining on the labelled
#   dark photos -> gated on the test split and on held-out dark photos ->
#   canary under live traffic -> production when every check passes (else the
#   safeguard that stopped it is shown) -> traffic served by the new
#   version, then an account of what happened with the key numbers.
# Budgets: DETOPS_DEMO_MINUTES (first training, default 5) and
# DETOPS_DEMO_RETRAIN_MINUTES (the automatic retraining, default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
detops="$PWD/build/detops"
ws="$PWD/detops-demo"
minutes=${DETOPS_DEMO_MINUTES:-5}
retrain_minutes=${DETOPS_DEMO_RETRAIN_MINUTES:-3}
rm -rf "$ws"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
now() { date +%s; }
t_start=$(now)
declare -A took
mark() { took[$1]=$(($(now) - $2)); }

step "synthesize 600 car-panel photos with scratches and dents"
"$detops" synth "$work/cars" --kind car --n 600 --seed 1 2>/dev/null

step "import them as dataset 'cars' (workspace $ws)"
"$detops" -w "$ws" data import cars "$work/cars" 2>/dev/null

step "validate cars against the default expectation suite"
"$detops" -w "$ws" data validate cars --max-findings 3 2>/dev/null || true

step "what is in it"
"$detops" -w "$ws" data show cars

step "train a detector on cars@1 ($minutes minute budget; tracked run)"
# The learning-rate schedule fills the budget (no --epochs). Measured on
# 2026-12-07 (shared 2-core machine): 600 photos, 5 minutes -> test mAP50
# 0.53 (scratch 0.40, dent 0.66); 300 photos and 10 minutes had collapsed.
t=$(now)
"$detops" -w "$ws" train cars@1 --model n --minutes "$minutes" --name demo-train 2>&1 |
  tr '\r' '\n' | grep -v ' step ' || true
mark train "$t"

step "evaluate it on the test split"
"$detops" -w "$ws" eval demo-train cars@1 --split test --plots "$ws/plots"

step "register the run as model 'cars' (weights, test metrics, reference profile)"
"$detops" -w "$ws" models register demo-train --name cars 2>/dev/null

step "promote cars@1 to production through the default policy's gates"
"$detops" -w "$ws" models promote cars@1 --to production 2>/dev/null ||
  "$detops" -w "$ws" models promote cars@1 --to production --force \
    --reason "demo: ${minutes}-minute training budget" 2>/dev/null

step "serve cars on 127.0.0.1 with its monitor and its controller (triggers -> retrain pipeline)"
# Short windows for short traffic: 40 photos, scored every 2 s. The
# controller runs the built-in retrain pipeline (detops pipelines cat
# retrain) when the monitor's drift reaches `retrain`; the canary moves 25 %,
# then 50 % of requests to the candidate, 20 candidate answers a stage.
# This business retrains when photos darken and calls a person only past a
# PSI of 12 on the inputs or the predictions, or a 0.5 drop of mAP50 from
# feedback (defaults: 2 and 0.2, where these dusk photos escalate: nothing
# would be retrained and promotion would be frozen).
cat >"$work/monitor.yaml" <<EOF
window: {size: 40, min_samples: 30}
thresholds: {input: {escalate: 12}, prediction: {escalate: 12}, accuracy: {escalate: 0.5}}
EOF
printf 'production: {max_regression: {map50: 0.03, map: 0.03}}\n' >"$work/gates.yaml"
cat >"$work/controller.yaml" <<EOF
pipeline: retrain
tick_seconds: 1
params:
  minutes: $retrain_minutes
  holdout: 0.3
  rollout: canary
  stages: "0.25,0.5"
  min_requests: 20
  policy: $work/gates.yaml
  # The canary judges errors, latency and, from the inspectors' labels,
  # accuracy per arm. A model retrained on harder photos is expected to be
  # less sure of itself on them, so the low-confidence share is not held
  # against it (measured here: 0.73 vs 0.38 while it was better on the
  # labelled dark slice, 0.375 vs 0.288 mAP50).
  rollout_policy: '{"max_low_confidence_increase": 1, "min_labels": 20}'
EOF
"$detops" -w "$ws" serve --model cars --port 0 --keep-images 1 --poll-ms 500 \
  --monitor-policy "$work/monitor.yaml" --monitor-every 2 --monitor-every-requests 40 \
  --sample-every 1 --controller-config "$work/controller.yaml" >"$work/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; kill $traffic 2>/dev/null || true; rm -rf "$work"' EXIT
traffic=
for _ in $(seq 1 300); do
  grep -q "ready on" "$work/serve.log" && break
  kill -0 $server 2>/dev/null || { cat "$work/serve.log"; exit 1; }
  sleep 0.1
done
url=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/serve.log" | head -1)
echo "server: $url"
token=$("$detops" -w "$ws" tokens create --role writer --name inspector 2>/dev/null | grep -o 'dtk_[0-9a-f_]*')

step "predict with the client (annotated copies in $ws/served)"
photos=$(ls "$work/cars/images/test"/*.jpg | sed -n '1,6p')
"$detops" client predict "$url" $photos --draw "$ws/served"

step "daytime traffic: 40 photos like the training data"
"$detops" synth "$work/day" --kind car --n 40 --seed 7 2>/dev/null
"$detops" client predict "$url" $(ls "$work/day/images"/*/*.jpg) >/dev/null

step "dusk falls: 80 dark photos, each labelled by an inspector (feedback)"
"$detops" synth "$work/dark" --kind car --n 80 --seed 3 --lighting dark 2>/dev/null
t_drift=$(now)
"$detops" client predict "$url" $(ls "$work/dark/images"/*/*.jpg) --feedback-labels \
  --token "$token" | tail -1
# Dark traffic goes on, labelled, while the model is retrained and
# released: the canary needs live requests, and compares the arms'
# accuracy on the labels.
"$detops" synth "$work/night" --kind car --n 40 --seed 4 --lighting dark 2>/dev/null
(while true; do
  "$detops" client predict "$url" $(ls "$work/night/images"/*/*.jpg) --feedback-labels \
    --token "$token" >/dev/null 2>&1 || true
  sleep 1
done) &
traffic=$!

step "the monitor flags the drift; the controller starts the retrain pipeline"
run=
for _ in $(seq 1 120); do
  run=$("$detops" -w "$ws" pipelines ls --model cars 2>/dev/null | awk 'NR == 2 {print $1}')
  [ -n "$run" ] && break
  sleep 1
done
mark alert "$t_drift"
[ -n "$run" ] || { echo "no retraining started"; tail -20 "$work/serve.log"; exit 1; }
"$detops" -w "$ws" alerts ls
"$detops" -w "$ws" triggers ls --limit 6

step "pipeline run $run: feedback -> validate -> train (warm start) -> register -> gates -> canary"
t=$(now)
last=
while true; do
  state=$("$detops" -w "$ws" pipelines show "$run" --json 2>/dev/null |
    grep -o '"state": "[a-z_]*"' | head -1 | cut -d'"' -f4)
  line=$(grep "run $run" "$work/serve.log" | grep -v ' step ' | tail -1 || true)
  [ "$line" != "$last" ] && { echo "$line" | cut -c1-160; last=$line; }
  [ "$state" != "running" ] && break
  sleep 2
done
mark pipeline "$t"
kill $traffic 2>/dev/null || true
wait $traffic 2>/dev/null || true
traffic=
COLUMNS=220 "$detops" -w "$ws" pipelines show "$run"

step "the canary"
rollout=$("$detops" -w "$ws" rollouts ls --model cars 2>/dev/null | awk 'NR == 2 {print $1}')
if [ -n "$rollout" ]; then "$detops" -w "$ws" rollouts show "$rollout"; else echo "no rollout"; fi

step "registry history: who moved production, when, why"
"$detops" -w "$ws" models history cars

step "dark photos now: answered by the new production version"
sleep 1
"$detops" client predict "$url" $(ls "$work/night/images"/*/*.jpg | sed -n '1,6p') \
  --draw "$ws/served-after" | tee "$work/after.out"
t_served=$(now)

step "server metrics (excerpt of $url/metrics)"
curl -s "$url/metrics" | grep -E '^detops_(predictions_total|model_info|drift_score\{signal="input\.brightness"|monitor_level|alerts_active|rollout_requests_total)' || true

step "stop the server (SIGTERM drains the queue, stops the controller where it can resume)"
kill -TERM $server
wait $server || true
tail -1 "$work/serve.log"

step "what happened"
serving=$(grep -o 'cars@[0-9]*' "$work/after.out" | head -1 || true)
echo "serving ${serving:-?} (was cars@1); pipeline run $run: $state"
[ "$serving" = "cars@1" ] && t_served=0
printf '%-44s %6s s\n' "first training (budget ${minutes} min)" "${took[train]}"
printf '%-44s %6s s\n' "dark traffic start -> retraining started" "${took[alert]}"
printf '%-44s %6s s\n' "retraining: data, train, gates, canary" "${took[pipeline]}"
if [ "$t_served" -gt 0 ]; then
  printf '%-44s %6s s\n' "dark traffic start -> new version serving" "$((t_served - t_drift))"
else
  echo "the new version was not released: see the pipeline run's promote step"
fi
printf '%-44s %6s s\n' "whole demo (after the build)" "$(($(now) - t_start))"
echo "per step: detops -w $ws pipelines show $run; the gates' numbers on both test sets are in its promote row"

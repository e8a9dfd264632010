#!/usr/bin/env bash
# POST /v1/predict/batch with 8 JPEGs a request: median and p90 latency,
# images/s and the batch sizes the workers saw, for 1 then 2 concurrent
# clients (bench/batch_client.py, Debian's python3). A tiny model (n, 320 px,
# 1 epoch) trained on 60 synthetic car photos; `detops serve --workers 2
# --threads 1` unless other serve flags are given.
#   bench/batch_predict.sh [SCRATCH_DIR] [-- SERVE FLAGS...]
#   DETOPS=path/to/detops  another binary to serve with (e.g. an older build)
#   BATCH_BENCH_REQUESTS=30  requests per client
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
scratch=$(mktemp -d)
if [ $# -gt 0 ] && [ "$1" != "--" ]; then scratch=$1; shift; fi
[ "${1:-}" = "--" ] && shift
serve_flags=("$@")
[ ${#serve_flags[@]} -eq 0 ] && serve_flags=(--workers 2 --threads 1)
scripts/build.sh detops
builder="$root/build/detops"
detops=${DETOPS:-$builder}
ws="$scratch/ws"
if [ ! -f "$ws/detops.db" ]; then
  "$builder" synth "$scratch/cars" --kind car --n 60 --seed 5 >/dev/null 2>&1
  "$builder" -w "$ws" data import cars "$scratch/cars" >/dev/null 2>&1
  "$builder" -w "$ws" train cars --model n --imgsz 320 --epochs 1 --threads 2 --name tiny \
    --force >/dev/null 2>&1
  "$builder" -w "$ws" models register tiny --name cars >/dev/null 2>&1
  "$builder" -w "$ws" models promote cars@1 --to production --force \
    --reason "benchmark model" >/dev/null 2>&1
fi
port=${BATCH_BENCH_PORT:-18089}
log="$scratch/serve.log"
"$detops" -w "$ws" serve --model cars --port "$port" "${serve_flags[@]}" >"$log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "ready on" "$log" && break; sleep 0.3; done
/usr/bin/python3 bench/batch_client.py "$port" "$scratch/cars" "${BATCH_BENCH_REQUESTS:-30}" 1,2
kill -TERM $pid
wait $pid || true
trap - EXIT
grep -o "workers.*" "$log" | head -1

#!/usr/bin/env bash
# What monitoring costs a serving request (issue 22): the same model served
# back to back on 127.0.0.1, once with `--no-monitor` and once with the
# monitor ticking as often as it allows (`--monitor-every 1
# --monitor-every-requests 200 --sample-every 1`), each driven by the same
# single-image POST /v1/predict load with 1 and then 2 concurrent clients
# (keep-alive; Debian's python3). Reports images/s and latency p50/p95 for
# both, and the monitor thread's CPU time per prediction
# (detops_monitor_cpu_seconds_total / detops_predictions_total from /metrics
# at the end; goal <= 0.2 ms), beside the whole server's CPU per prediction
# while the load ran, and whether the windows included the embedding test.
#
#   bench/monitor_overhead.sh [SCRATCH_DIR]
#   DETOPS=path/to/detops       the binary (default build/detops; not built here)
#   MONITOR_BENCH_SECONDS=18    seconds of load per client count
#   MONITOR_BENCH_PORT=18095
#   MONITOR_BENCH_ROUNDS=2      1: one server of each
#
# MONITOR_BENCH_ROUNDS=2 rounds serve in the order without, with, with,
# without (ABBA), so that a drift of the machine's speed falls on both.
#
# The model: 60 synthetic car photos, `train --model n --imgsz 320 --epochs
# 1`, registered and promoted. Each server gets its own copy of the
# workspace, so the monitored one starts with an empty prediction log (the
# prediction log itself is written in both runs). About 3 minutes at the
# defaults, on an otherwise quiet machine (the server should get the cores
# it normally would).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
detops=${DETOPS:-$root/build/detops}
secs=${MONITOR_BENCH_SECONDS:-18}
port=${MONITOR_BENCH_PORT:-18095}
rounds=${MONITOR_BENCH_ROUNDS:-2}
py=/usr/bin/python3 # Debian's interpreter: the first python3 on PATH may lack its modules
if [ ! -x "$detops" ]; then
  echo "monitor_overhead: $detops is missing: build it first (scripts/build.sh detops)" >&2
  exit 1
fi
own_scratch=0
if [ $# -gt 0 ]; then
  scratch=$1
  mkdir -p "$scratch"
else
  scratch=$(mktemp -d /tmp/detops-monitor-overhead-XXXXXX)
  own_scratch=1
fi
scratch=$(cd "$scratch" && pwd)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "$own_scratch" = 1 ]; then rm -rf "$scratch"; fi
}
trap cleanup EXIT
log() { echo "monitor_overhead: $*" >&2; }

# ---- the model
ws="$scratch/ws"
start=$(date +%s)
if [ ! -f "$ws/detops.db" ]; then
  log "synthesizing, importing, training (1 epoch), registering"
  setup_log="$scratch/setup.log"
  if ! {
    "$detops" synth "$scratch/cars" --kind car --n 60 --seed 1 &&
      "$detops" -w "$ws" data import cars "$scratch/cars" &&
      "$detops" -w "$ws" train cars --name tiny --epochs 1 --imgsz 320 --batch 8 --model n \
        --quiet --force &&
      "$detops" -w "$ws" models register tiny --name cars &&
      "$detops" -w "$ws" models promote cars@1 --to production --force --reason bench
  } >"$setup_log" 2>&1; then
    log "setting up the model failed:"
    tail -20 "$setup_log" >&2
    exit 1
  fi
fi
log "model ready in $(($(date +%s) - start)) s"

# ---- the load: single-image POSTs for SECONDS per client count
cat >"$scratch/client.py" <<'EOF'
import glob, http.client, statistics, sys, threading, time

port, folder, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
images = [open(f, "rb").read()
          for f in sorted(glob.glob(folder + "/**/*.jpg", recursive=True))[:40]]
headers = {"Content-Type": "image/jpeg"}


def run(deadline, offset, latencies):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    i = offset
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        conn.request("POST", "/v1/predict", images[i % len(images)], headers)
        resp = conn.getresponse()
        data = resp.read()
        assert resp.status == 200, data[:300]
        latencies.append((time.perf_counter() - start) * 1000)
        i += 1


for clients in (1, 2):
    run(time.perf_counter() + 2, 0, [])  # warm-up
    latencies = []
    start = time.perf_counter()
    threads = [threading.Thread(target=run, args=(start + seconds, 7 * c, latencies))
               for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    latencies.sort()
    print(f"clients {clients}: {len(latencies) / elapsed:.1f} images/s, "
          f"p50 {statistics.median(latencies):.1f} ms, "
          f"p95 {latencies[int(0.95 * len(latencies))]:.1f} ms, {len(latencies)} requests")
EOF

# CPU seconds (user + system) of a process so far.
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
}

# serve NAME FLAGS...: starts a server on a fresh copy of the workspace,
# drives the load, scrapes /metrics, stops it.
serve() {
  local name=$1
  shift
  local wsx="$scratch/ws-$name" out="$scratch/serve-$name.log"
  rm -rf "$wsx"
  cp -a "$ws" "$wsx"
  "$detops" -w "$wsx" serve --model cars --port "$port" "$@" >"$out" 2>&1 &
  server_pid=$!
  for _ in $(seq 150); do
    grep -q "ready on" "$out" && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.2
  done
  if ! grep -q "ready on" "$out"; then
    log "$name: the server did not start:"
    cat "$out" >&2
    exit 1
  fi
  echo "### $name: detops serve $*"
  grep -o "workers .*" "$out" | head -1
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  local cpu0
  cpu0=$(cpu_seconds "$server_pid")
  "$py" "$scratch/client.py" "$port" "$scratch/cars" "$secs"
  sleep 1.5 # the last monitor run and service sample
  local metrics cpu preds monitor_cpu
  metrics=$(curl -sf "http://127.0.0.1:$port/metrics")
  cpu=$(cpu_seconds "$server_pid")
  preds=$(awk '$1 == "detops_predictions_total" {print $2}' <<<"$metrics")
  monitor_cpu=$(awk '$1 == "detops_monitor_cpu_seconds_total" {print $2}' <<<"$metrics")
  kill -TERM "$server_pid"
  wait "$server_pid" || true
  server_pid=""
  awk -v p="$preds" -v c="$cpu" -v c0="$cpu0" \
    'BEGIN {printf "predictions %d; server CPU under load %.1f s = %.3f ms a prediction\n", p, c - c0, 1000 * (c - c0) / p}'
  local windows
  windows=$(grep -c "monitor: window of" "$out" || true)
  if [ -n "$monitor_cpu" ] && [ "$windows" -gt 0 ]; then
    awk -v p="$preds" -v m="$monitor_cpu" -v w="$windows" \
      'BEGIN {printf "monitor thread CPU %.3f s = %.4f ms a prediction (goal <= 0.2 ms); %d windows scored\n", m, 1000 * m / p, w}'
    # Whether the windows paid for the embedding test (it is left out when
    # the reference was profiled in another precision).
    "$detops" -w "$wsx" monitor report --model cars --limit 1 --json | "$py" -c '
import json, sys
w = json.load(sys.stdin)["windows"][-1]
e = next(s for s in w["signals"] if s["signal"] == "embedding.mmd")
how = ("scored (mmd2 %.4f, p %.3f)" % (e["value"], e["p_value"]) if e["scored"]
       else "not scored: " + e.get("note", ""))
print("last window: level %s; embedding.mmd %s" % (w["level"], how))'
  fi
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
}

echo "detops: $detops; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%M:%SZ); $secs s per client count"
echo
unmonitored() { serve "no-monitor-$1" --no-monitor; }
monitored() { serve "monitor-$1" --monitor-every 1 --monitor-every-requests 200 --sample-every 1; }
for round in $(seq "$rounds"); do
  if [ $((round % 2)) = 1 ]; then
    unmonitored "$round"
    monitored "$round"
  else
    monitored "$round"
    unmonitored "$round"
  fi
done
log "done in $(($(date +%s) - start)) s"

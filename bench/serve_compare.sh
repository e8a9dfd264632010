#!/usr/bin/env bash
# Serving, side by side, in one go: detops in process (build/bench/serve_bench:
# JPEG decode + letterbox + forward + NMS, batch 1 and 8, 1 and 2 threads),
# `detops serve` over HTTP, and a peer that serves THE SAME network with THE
# SAME weights the way a Python user would (Flask + PyTorch under gunicorn,
# Debian's packages; bench/peer/). Prints a Markdown report for
# docs/BENCHMARKS.md: the goals first, then every point measured.
#
#   bench/serve_compare.sh [SCRATCH_DIR]
#
# What it measures, for every server setting:
#  - closed loop (wrk, one thread, POST of a 640x480 JPEG at 1/4/16/64
#    connections): requests/s, p50, p99, and the peak RSS and PSS of all the
#    server's processes (gunicorn: master and workers) during the point;
#  - open loop (bench/peer/loadgen.cc, fixed rate, latency from the scheduled
#    send time): p50/p99 at 50 % and 90 % of the server's own saturation
#    (the best closed-loop requests/s of its kind), and detops also at 90 %
#    of the peer's saturation.
# Each figure is then compared at each side's best setting for that figure,
# once with both sides in fp32 and once with both in bf16 (saturations, and
# the open-loop rates from them, are per precision).
#
# Settings (environment):
#   SERVE_BENCH_SECONDS=10      seconds per point (SERVE_BENCH_QUICK=1: 2 s)
#   SERVE_BENCH_CONNECTIONS="1 4 16 64"
#   SERVE_BENCH_DETOPS="t1b1 t2b1 t2b8 w2t1b8 t2b1-bf16 t2b8-bf16 w2t1b8-bf16"
#                               detops serve settings [wW]tTbB[-bf16]:
#                               --workers W (default 1) --threads T
#                               --batch-max-size B --precision fp32|bf16
#   SERVE_BENCH_DELAY_MS=0      detops --batch-max-delay-ms
#   SERVE_BENCH_DETOPS_FLAGS="" more `detops serve` flags
#   SERVE_BENCH_PEER="w1t2 w2t1 w1t1 w2t2 w1t2-bf16 w2t1-bf16"  gunicorn
#                               workers x torch threads [-bf16: the forward
#                               under torch.autocast] (an empty list leaves
#                               that side out)
#   PEER_WORKER_CLASS=gthread   gunicorn's threaded workers (keep-alive)
#                               instead of its default sync ones
#   SERVE_BENCH_PORT=18080      detops port; the peer uses PORT+10
#   SERVE_BENCH_INIT=FILE       warm-start the benchmark model from these
#                               weights (a trained model finds damage, so NMS
#                               and the JSON answer have work to do); default:
#                               one epoch from scratch, which detects nothing
#                               at conf 0.25
# About 25 minutes at the defaults (SERVE_BENCH_QUICK=1: 2-second points,
# not timed since the bf16 settings were added; about 6 minutes before). The
# machine should be quiet: the servers, wrk and the load generator share its
# cores, and LibTorch's OpenMP threads spin-wait, so a busy machine slows the
# 2-thread settings far more than its load suggests (OMP_WAIT_POLICY=PASSIVE
# in the environment applies to both sides). Needs root or sudo the first
# time (Debian packages).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [ "${SERVE_BENCH_QUICK:-0}" = 1 ]; then
  secs=${SERVE_BENCH_SECONDS:-2}
else
  secs=${SERVE_BENCH_SECONDS:-10}
fi
conns=${SERVE_BENCH_CONNECTIONS:-"1 4 16 64"}
detops_cfgs=${SERVE_BENCH_DETOPS-"t1b1 t2b1 t2b8 w2t1b8 t2b1-bf16 t2b8-bf16 w2t1b8-bf16"}
delay_ms=${SERVE_BENCH_DELAY_MS:-0}
peer_cfgs=${SERVE_BENCH_PEER-"w1t2 w2t1 w1t1 w2t2 w1t2-bf16 w2t1-bf16"}
port=${SERVE_BENCH_PORT:-18080}
peer_port=$((port + 10))
scratch=${1:-$(mktemp -d)}
mkdir -p "$scratch"
scratch=$(cd "$scratch" && pwd)
py=/usr/bin/python3  # Debian's interpreter: the first python3 on PATH may lack its modules
export PYTHONDONTWRITEBYTECODE=1
log() { echo "serve_compare: $*" >&2; }

# ---- what it needs: detops' build dependencies, then the peer's packages
scripts/install-deps.sh
peer_packages=(python3-flask python3-torch python3-torchvision python3-numpy python3-pil
  python3-opencv gunicorn wrk curl procps)
missing=()
for p in "${peer_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >/dev/null
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
scripts/build.sh detops serve_bench
detops="$root/build/detops"
loadgen="$root/build/bench/loadgen"
if [ ! -x "$loadgen" ] || [ bench/peer/loadgen.cc -nt "$loadgen" ]; then
  c++ -O2 -std=c++20 -o "$loadgen" bench/peer/loadgen.cc
fi
# detops refuses bf16 on a CPU without AVX512-BF16: its bf16 settings are
# left out there (the peer's autocast runs anywhere, slowly, and stays).
if ! grep -qw avx512_bf16 /proc/cpuinfo; then
  kept=""
  for cfg in $detops_cfgs; do [[ $cfg == *-bf16 ]] || kept="$kept $cfg"; done
  [ "$kept" != " $detops_cfgs" ] && log "no AVX512-BF16 here: detops' bf16 settings are left out"
  detops_cfgs=$kept
fi
have_serve=1
if ! "$detops" serve --help >/dev/null 2>&1; then
  have_serve=0
  log "this detops has no 'serve' command: the detops HTTP rows are left out"
fi

# ---- the model and the request image
ws="$scratch/ws"
src="$scratch/cars"
if [ ! -f "$scratch/weights.pt" ]; then
  rm -rf "$ws"
  [ -f "$src/data.yaml" ] || "$detops" synth "$src" --kind car --n 60 --seed 1 >/dev/null 2>&1
  "$detops" -w "$ws" data import cars "$src" >/dev/null 2>&1
  init=()
  [ -n "${SERVE_BENCH_INIT:-}" ] && init=(--init "$SERVE_BENCH_INIT")
  "$detops" -w "$ws" train cars --epochs 1 --name bench "${init[@]}" --quiet >/dev/null
  "$detops" -w "$ws" models register bench --name cars >/dev/null
  "$detops" -w "$ws" models promote cars@1 --to production --force --reason bench >/dev/null
  blob=$("$detops" -w "$ws" models show cars@1 --json 2>/dev/null |
    $py -c 'import json, sys; print(json.load(sys.stdin)["weights_blob"])')
  # The registry's copy: the very file the server loads.
  cp "$ws/blobs/${blob:0:2}/${blob:2}" "$scratch/weights.pt"
fi
weights="$scratch/weights.pt"
test_images=("$src"/images/test/*.jpg)
image=${test_images[0]}
image_info=$($py -c 'import cv2, os, sys; i = cv2.imread(sys.argv[1]); print(f"{i.shape[1]}x{i.shape[0]} JPEG, {os.path.getsize(sys.argv[1]) // 1024} KiB")' "$image")

# ---- the port: same detections as detops on the same weights, or stop
# Low confidence: an untrained model has nothing above 0.25.
port_check=$($py bench/peer/check_port.py "$detops" "$weights" "${test_images[@]:0:3}" --conf 0.005 \
  --max-det 10000) || {
  echo "$port_check" >&2
  log "the Python port does not match detops; figures would compare different work"
  exit 1
}
port_check_default=$($py bench/peer/check_port.py "$detops" "$weights" "${test_images[@]:0:3}") || true
log "$port_check"

results="$scratch/results.txt"
: >"$results"
record() { echo "$*" >>"$results"; }

# ---- in process
log "in-process: serve_bench, ${secs} s per point"
build/bench/serve_bench --weights="$weights" --image="$image" --benchmark_min_time="$secs" \
  --benchmark_out="$scratch/inproc.json" --benchmark_out_format=json >/dev/null 2>&1

# ---- servers
server_pid=""
sampler_pid=""
stop_server() {
  if [ -n "$sampler_pid" ]; then
    kill "$sampler_pid" 2>/dev/null || true
    wait "$sampler_pid" 2>/dev/null || true
    sampler_pid=""
  fi
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
trap stop_server EXIT

# Every 0.5 s: "RSS_KB PSS_KB" summed over the process tree under $1.
mem_sampler() {
  local top=$1 out=$2 pids p v rss pss
  while kill -0 "$top" 2>/dev/null; do
    pids=$(ps -eo pid=,ppid= | awk -v r="$top" '{ up[$1] = $2 }
      END { for (p in up) { q = p; while (q > 1) { if (q == r) { print p; break } q = up[q] } } }')
    rss=0
    pss=0
    for p in $pids; do
      v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null || true)
      rss=$((rss + ${v:-0}))
      v=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null || true)
      pss=$((pss + ${v:-0}))
    done
    echo "$rss $pss" >>"$out"
    sleep 0.5
  done
}
mem_file="$scratch/mem.txt"
peak_mem() { sort -n "$mem_file" | tail -1 | awk '{ printf "rss_kb=%d pss_kb=%d", $1, $2 }'; }

# start_server KIND CONFIG: starts it, waits for /readyz, warms it up.
# precision_of CONFIG: bf16 for a setting ending in -bf16, else fp32.
precision_of() { [[ $1 == *-bf16 ]] && echo bf16 || echo fp32; }
# detops_setting CONFIG: "W T B" of "[wW]tTbB[-bf16]" (W batch workers,
# model copies, default 1; T threads; batch <= B).
detops_setting() {
  local cfg=${1%-bf16} w=1 t b
  if [[ $cfg == w* ]]; then
    w=${cfg#w}
    w=${w%%t*}
  fi
  t=${cfg#*t}
  t=${t%b*}
  b=${cfg#*b}
  echo "$w $t $b"
}

# inproc_next_to CONFIG: the in-process point of the same batch on the same
# number of cores, measured right before that setting's HTTP points. This
# machine's speed drifts by 20 % within minutes, so a ratio of two figures
# taken ten minutes apart would mostly measure the drift.
inproc_next_to() {
  local w t b
  read -r w t b <<<"$(detops_setting "$1")"
  build/bench/serve_bench --weights="$weights" --image="$image" --benchmark_min_time="$secs" \
    --precision="$(precision_of "$1")" --benchmark_filter="batch:$b/threads:$((w * t))/" \
    --benchmark_out="$scratch/inproc-$1.json" --benchmark_out_format=json >/dev/null 2>&1
}

start_server() {
  local kind=$1 cfg=$2 url prec
  prec=$(precision_of "$cfg")
  cfg=${cfg%-bf16}
  if [ "$kind" = detops ]; then
    local w t b
    read -r w t b <<<"$(detops_setting "$cfg")"
    local extra=()
    read -ra extra <<<"${SERVE_BENCH_DETOPS_FLAGS:-}"
    "$detops" -w "$ws" serve --model cars --host 127.0.0.1 --port "$port" --workers "$w" \
      --threads "$t" --batch-max-size "$b" --batch-max-delay-ms "$delay_ms" --precision "$prec" \
      "${extra[@]}" >"$scratch/server-$kind-$cfg-$prec.log" 2>&1 &
    server_pid=$!
    base="http://127.0.0.1:$port"
  else
    local w=${cfg#w}
    w=${w%t*}
    local t=${cfg#*t}
    PEER_WEIGHTS="$weights" PEER_WORKERS="$w" PEER_TORCH_THREADS="$t" PEER_PRECISION="$prec" \
      PEER_BIND="127.0.0.1:$peer_port" \
      $py -m gunicorn -c bench/peer/gunicorn.conf.py --chdir bench/peer app:app \
      >"$scratch/server-$kind-$cfg-$prec.log" 2>&1 &
    server_pid=$!
    base="http://127.0.0.1:$peer_port"
  fi
  local _
  for _ in $(seq 600); do
    curl -sf "$base/readyz" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.2
  done
  if ! curl -sf "$base/readyz" >/dev/null 2>&1; then
    cat "$scratch/server-$kind-$cfg-$prec.log" >&2
    log "$kind $cfg did not become ready"
    exit 1
  fi
  : >"$mem_file"
  mem_sampler "$server_pid" "$mem_file" &
  sampler_pid=$!
  url="$base/v1/predict"
  # Warm-up: every worker and batch size runs its first forwards.
  wrk -t1 -c4 -d2s -s bench/peer/post.lua "$url" -- "$image" >/dev/null 2>&1 || true
  detections=$(curl -sf -H 'Content-Type: image/jpeg' --data-binary @"$image" "$url" |
    $py -c 'import json, sys; print(len(json.load(sys.stdin)["detections"]))')
}

closed_loop() {  # KIND CONFIG
  local kind=$1 cfg=$2 c out
  [ "$kind" = detops ] && inproc_next_to "$cfg"
  start_server "$kind" "$cfg"
  for c in $conns; do
    : >"$mem_file"
    out=$(wrk -t1 -c"$c" -d"${secs}s" --timeout 30s -s bench/peer/post.lua "$base/v1/predict" \
      -- "$image" | grep '^WRK ') || {
      log "$kind $cfg c=$c: wrk gave no result"
      continue
    }
    sleep 0.6  # one more memory sample
    record "closed $kind $cfg conns=$c detections=$detections ${out#WRK } $(peak_mem)"
    log "$kind $cfg c=$c: ${out#WRK }"
  done
  stop_server
}

best_rps() {  # KIND PRECISION: the best closed-loop requests/s of that kind in that precision
  awk -v k="$1" -v bf="$([ "$2" = bf16 ] && echo 1 || echo 0)" \
    '$1 == "closed" && $2 == k && ($3 ~ /-bf16$/) == bf { for (i = 4; i <= NF; ++i)
    if ($i ~ /^rps=/) { v = substr($i, 5) + 0; if (v > m) m = v } } END { printf "%.2f", m }' \
    "$results"
}

open_loop() {  # KIND CONFIG "LABEL=RATE ..."
  local kind=$1 cfg=$2 point label rate out
  start_server "$kind" "$cfg"
  for point in $3; do
    label=${point%=*}
    rate=${point#*=}
    : >"$mem_file"
    out=$("$loadgen" --port "${base##*:}" --path /v1/predict --body "$image" --rate "$rate" \
      --duration "$secs" --warmup 1 --connections 64)
    record "open $kind $cfg at=$label ${out#LOADGEN } $(peak_mem)"
    log "$kind $cfg open loop at $label: ${out#LOADGEN }"
  done
  stop_server
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for cfg in $peer_cfgs; do closed_loop peer "$cfg"; done
if [ $have_serve = 1 ]; then
  for cfg in $detops_cfgs; do closed_loop detops "$cfg"; done
fi

# Open-loop points "LABEL=RATE" at fractions of a saturation (none when it is 0).
points() {  # LABEL SATURATION FRACTION ...
  local label=$1 sat=$2 f
  shift 2
  for f in "$@"; do
    awk -v l="$label" -v s="$sat" -v f="$f" \
      'BEGIN { if (s > 0) printf "%s%d=%.2f\n", l, f * 100 + 0.5, s * f }'
  done
}
# Saturations per precision: an fp32 setting is loaded at fractions of the
# fp32 saturations, a bf16 one at the bf16 ones.
for cfg in $peer_cfgs; do
  open_loop peer "$cfg" "$(points own "$(best_rps peer "$(precision_of "$cfg")")" 0.5 0.9)"
done
if [ $have_serve = 1 ]; then
  for cfg in $detops_cfgs; do
    prec=$(precision_of "$cfg")
    open_loop detops "$cfg" "$(points own "$(best_rps detops "$prec")" 0.5 0.9) \
      $(points peer "$(best_rps peer "$prec")" 0.9)"
  done
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the report
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem_gib=$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
deb_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
{
  echo "command=bench/serve_compare.sh (SERVE_BENCH_SECONDS=$secs)"
  echo "date=$(date -u +%Y-%m-%d)"
  # shellcheck source=/dev/null
  echo "machine=$(nproc)-core $(uname -m) ($cpu), $mem_gib GiB, $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "load=$load_before before, $load_after after"
  echo "detops=$("$detops" --version 2>&1 | head -1)"
  echo "peer=Debian python3-flask $(deb_version python3-flask), python3-torch $(deb_version python3-torch), python3-opencv $(deb_version python3-opencv), gunicorn $(deb_version gunicorn) (${PEER_WORKER_CLASS:-sync} workers)"
  blas=$(readlink -f "/usr/lib/$(uname -m)-linux-gnu/libblas.so.3" 2>/dev/null || true)
  echo "blas=$(basename "$(dirname "${blas:-?/?}")") (both sides), OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset}"
  echo "image=$image_info"
  echo "port_check=$port_check"
  echo "port_check_default=$port_check_default"
  echo "delay_ms=$delay_ms"
} >"$scratch/meta.txt"
$py bench/peer/report.py "$scratch/meta.txt" "$scratch/inproc.json" "$results"
log "raw results in $scratch"

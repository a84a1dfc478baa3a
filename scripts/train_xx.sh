#!/usr/bin/env bash
# Train one subject end to end: lips (audio-to-mouth model) -> mouth -> face -> fuse -> render the
# test split -> metrics.
#   bash scripts/train_xx.sh data/<ID> output/<ID> <gpu> [extra train.py args...]
# A stage whose chkpnt_<stage>_latest.pth is complete is skipped, an interrupted one resumes.
# PARALLEL=1 trains the mouth and face stages at the same time (they are independent; on one GPU
# this overlaps their per-step overheads).
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: bash scripts/train_xx.sh data/<ID> output/<ID> [gpu] [extra train.py args]" >&2
  exit 2
fi
dataset=$1; workspace=$2; gpu=${3:-0}
shift $(( $# < 3 ? $# : 3 ))
cd "$(dirname "$0")/.."
[ "$gpu" = "cpu" ] || export CUDA_VISIBLE_DEVICES=$gpu
python train.py -s "$dataset" -m "$workspace" --stage lips "$@"  # seconds; both fields read its mouth codes
if [ "${PARALLEL:-0}" = "1" ]; then
  python train.py -s "$dataset" -m "$workspace" --stage mouth --quiet "$@" &
  mouth_pid=$!
  python train.py -s "$dataset" -m "$workspace" --stage face "$@"
  wait $mouth_pid
else
  python train.py -s "$dataset" -m "$workspace" --stage mouth "$@"
  python train.py -s "$dataset" -m "$workspace" --stage face "$@"
fi
python train.py -s "$dataset" -m "$workspace" --stage fuse "$@"
python synthesize_fuse.py -S "$dataset" -M "$workspace" --eval
python scripts/metrics.py "$workspace/test/ours_None/renders/out.mp4" "$workspace/test/ours_None/gt/out.mp4"

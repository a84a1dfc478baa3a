#!/usr/bin/env bash
# One resumable GPU training chunk on a carried subject (device tool), mouth and face in parallel.
#   bash scripts/device/train_chunk.sh <ID> <minutes> [extra train.py args]
# Carries .whl and .gpu; .gpu/<ID>_model.tar.gz (if present) holds the checkpoints of earlier chunks.
# The updated checkpoints come back as $OUT/<ID>_model.tar.gz.part_NN (<= 15 MiB each), logs and metrics beside.
set -u
id=$1; minutes=$2; shift 2
source scripts/device/setup.sh || exit 1
mkdir -p "$OUT" output
# earlier chunks' checkpoints: .gpu/<ID>_model.tar.gz, or its parts .gpu/<ID>_model.tar.gz.part_*
if ls .gpu/${id}_model.tar.gz* >/dev/null 2>&1; then cat $(ls .gpu/${id}_model.tar.gz* | sort) | tar -xzf - -C output; fi
data=data/$id; model=output/$id
python -c "from scene.data.dataset import load_subject; load_subject('$data', 'train', 512, progress=False); load_subject('$data', 'val', 512, progress=False)"
if [ "${PROFILE:-0}" = "1" ]; then
  python scripts/profile_train.py -s "$data" --stage face --resolution 512 --out "$OUT/profile_face.md" 2>&1 | head -60
fi
python train.py -s "$data" -m "$model" --stage mouth --resolution 512 --max_minutes "$minutes" --quiet "$@" > "$OUT/train_mouth.log" 2>&1 &
python train.py -s "$data" -m "$model" --stage face --resolution 512 --max_minutes "$minutes" --quiet "$@" > "$OUT/train_face.log" 2>&1
wait
if [ "${FUSE:-0}" = "1" ]; then  # refuses (one line) unless mouth and face are finished
  python train.py -s "$data" -m "$model" --stage fuse --resolution 512 --max_minutes "${FUSE_MINUTES:-2}" --quiet "$@" > "$OUT/train_fuse.log" 2>&1
fi
tail -n 3 "$OUT"/train_*.log
cp "$model"/metrics/*.json "$OUT"/ 2>/dev/null
# files come back at most 16 MiB each: split the checkpoint archive
tar -czf - -C output --exclude='chkpnt_*_[0-9]*.pth' --exclude='events.*' --exclude='point_cloud' "$id" \
  | split -b 15M -d - "$OUT/${id}_model.tar.gz.part_"
ls -la "$OUT"

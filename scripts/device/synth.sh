#!/usr/bin/env bash
# GPU synthesis session (device tool): render speed, the test split, and new audio for a trained model.
#   bash scripts/device/synth.sh <ID>
# Carries .whl and .gpu: .gpu/<ID>.tar.gz (subject pack), .gpu/<ID>_model_slim.tgz (output/<ID>/ with
# chkpnt_fuse_latest.pth + cfg_args.json), .gpu/audio_feats.tgz (audio/<name>_ph.npy + .json, computed
# on a CPU box: the GPU box has neither hama nor ffmpeg).
set -u
id=$1
source scripts/device/setup.sh || exit 1
mkdir -p "$OUT" output && tar -xzf ".gpu/${id}_model_slim.tgz" -C output && tar -xzf .gpu/audio_feats.tgz
data=data/$id; model=output/$id
python scripts/bench_synth.py -S "$data" -M "$model" --batch_sizes 1 8 32 64 --frames 512 --out "$OUT/bench_synth.md" 2>&1 | tail -12
python synthesize_fuse.py -S "$data" -M "$model" --eval --fast --batch_size 32 --quiet 2>&1 | grep -v "audio not muxed" | tee "$OUT/eval_fast.log"
for f in audio/*_ph.npy; do
  name=$(basename "$f" _ph.npy)
  /usr/bin/time -f "wall %e s" python synthesize_fuse.py -S "$data" -M "$model" --use_train --audio "$f" --fast --batch_size 32 --quiet \
    --out "$OUT/new_audio_$name.mp4" --overwrite 2>&1 | grep -v "audio not muxed\|no audio to mux" | sed "s/^/$name: /" | tee -a "$OUT/new_audio.log"
  mv "$OUT/new_audio_${name}_silent.mp4" "$OUT/new_audio_$name.mp4" 2>/dev/null  # no ffmpeg there: the silent one
  python -c "import cv2,sys; c=cv2.VideoCapture(sys.argv[1]); print(sys.argv[2]+': frames', int(c.get(7)), 'fps', c.get(5))" "$OUT/new_audio_$name.mp4" "$name" | tee -a "$OUT/new_audio.log"
done
rm -f "$OUT"/new_audio_speech60.mp4 "$OUT"/new_audio_jfk.mp4 "$OUT"/new_audio_hdtf_radio31.mp4
ls -la "$OUT"

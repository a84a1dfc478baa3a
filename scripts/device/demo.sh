#!/usr/bin/env bash
# The demo's GPU steps on the device box: train + synthesize with scripts/demo.py's "cuda" preset.
#   bash scripts/device/demo.sh <ID> <new-audio features .npy>
# The device image has neither MediaPipe nor hama nor ffmpeg, so the demo's steps 1-2 (sample,
# preprocessing) and the new audio's phoneme features are made on a CPU box and carried:
# .gpu/<ID>.tar.gz (scripts/pack_subject.py of <demo out>/data/<ID>) and the features .npy.
# Writes $OUT/gpu_demo.json (seconds per step), the logs, and $OUT/model_slim.tar.gz (render-only
# model, for the lip check and a video with sound on the CPU box).
set -u
id=$1; audio=$2
source scripts/device/setup.sh || exit 1
mkdir -p "$OUT" output
data=data/$id; model=output/demo_$id
preset() { python -c "import sys; sys.path.insert(0, 'scripts'); from demo import PRESETS; print(' '.join(PRESETS['cuda']['$1']))"; }
now() { date +%s.%N; }
t0=$(now)
python train.py -s "$data" -m "$model" $(preset train) --device cuda --quiet > "$OUT/train.log" 2>&1
t1=$(now)
python synthesize_fuse.py -S "$data" -M "$model" --use_train --audio "$audio" $(preset synthesize) --device cuda --quiet \
  --out "$OUT/result.mp4" --overwrite > "$OUT/synthesize.log" 2>&1
t2=$(now)
python scripts/lip_motion.py -S "$data" -M "$model" --json "$OUT/lip_motion.json" > "$OUT/lip_motion.log" 2>&1
python - "$t0" "$t1" "$t2" "$model" "$(preset train)" <<'EOF' | tee "$OUT/gpu_demo.json"
import json, sys
from pathlib import Path
t0, t1, t2 = map(float, sys.argv[1:4])
m = Path(sys.argv[4])
stages = {s: json.loads((m / "metrics" / f"train_{s}.json").read_text()) for s in ("mouth", "face", "fuse")}
print(json.dumps({"train_seconds": round(t1 - t0, 1), "synthesize_seconds": round(t2 - t1, 1),
                  "train_args": sys.argv[5],
                  "stages": {s: {k: v.get(k) for k in ("seconds", "it_per_s", "last_psnr", "num_points", "peak_gpu_mb")}
                             for s, v in stages.items()}}, indent=1))
EOF
tail -n 3 "$OUT"/*.log
python scripts/slim_model.py "$model" "slim/$(basename "$model")"
mv "$OUT/result_silent.mp4" "$OUT/result_no_sound.mp4" 2>/dev/null
tar -czf "$OUT/model_slim.tar.gz" slim
ls -la "$OUT"

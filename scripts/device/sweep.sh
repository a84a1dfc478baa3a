#!/usr/bin/env bash
# Train several short schedules of one carried subject side by side on the GPU box (device tool) and
# score each with scripts/lip_motion.py; writes $OUT/sweep.md (one row per variant) and the logs.
#   bash scripts/device/sweep.sh <ID> <variants file> [parallel runs, default 4]
# Variants file: one per line, "name | train.py arguments" (# comments and blank lines skipped).
# Carries .whl and .gpu (.gpu/<ID>.tar.gz: the subject pack from scripts/pack_subject.py); SETUP=0 skips that
# setup where the dependencies are installed and data/<ID> exists.
set -u
id=$1; variants=$2; parallel=${3:-4}
if [ "${SETUP:-1}" = 1 ]; then source scripts/device/setup.sh || exit 1; fi  # SETUP=0: deps already installed
mkdir -p "$OUT" output
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}  # several trainings share the CPU cores
data=data/$id
python -c "from scene.data.dataset import load_subject; [load_subject('$data', 'train', r, progress=False) for r in (128, 256)]"

run_variant() {  # name, train args...
  local name=$1; shift
  local model=output/sweep_$name
  local t0=$(date +%s)
  python train.py -s "$data" -m "$model" --quiet "$@" > "$OUT/train_$name.log" 2>&1
  local t1=$(date +%s)
  python scripts/lip_motion.py -S "$data" -M "$model" --json "$model/lip_motion.json" > "$OUT/lip_$name.log" 2>&1
  python - "$name" "$model" "$((t1 - t0))" "$*" >> "$OUT/rows.md" <<'EOF'
import json, sys
from pathlib import Path
name, model, seconds, args = sys.argv[1:5]
m = Path(model)
lip = json.loads((m / "lip_motion.json").read_text()) if (m / "lip_motion.json").is_file() else {}
st = {s: json.loads((m / "metrics" / f"train_{s}.json").read_text()) for s in ("mouth", "face", "fuse")
      if (m / "metrics" / f"train_{s}.json").is_file()}
pts = st.get("face", {}).get("num_points", {}).get("face", "-")
psnr = lambda s: f"{st[s]['last_psnr']:.2f}" if s in st and st[s].get("last_psnr") else "-"
print(f"| {name} | `{args}` | {float(seconds):.0f} | {psnr('face')} | {psnr('fuse')} | {pts} | "
      f"{lip.get('drive_gain', '-')} | {lip.get('audio_gain', '-')} | {lip.get('expression_gain', '-')} | "
      f"{lip.get('motion_r', '-')} | {lip.get('motion_r_shuffled', '-')} |")
EOF
}

running=0
while IFS= read -r line; do
  line=${line%%#*}; [ -z "${line// }" ] && continue
  name=$(echo "${line%%|*}" | xargs); args=${line#*|}
  run_variant "$name" $args &
  running=$((running + 1))
  if [ "$running" -ge "$parallel" ]; then wait -n; running=$((running - 1)); fi
done < "$variants"
wait
{
  echo "| variant | train.py arguments | train s | face PSNR (last 20) | fuse PSNR | face Gaussians | drive_gain | audio_gain | expression_gain | motion_r | motion_r shuffled |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  sort "$OUT/rows.md"
} > "$OUT/sweep.md"
cat "$OUT/sweep.md"
# Few files come back from the device box: everything goes into one archive (models too with KEEP_MODELS=1:
# each variant's output/sweep_<name> without the numbered checkpoints, for rendering elsewhere).
mkdir -p "$OUT/sweep" && mv "$OUT"/*.log "$OUT/rows.md" "$OUT/sweep/"
if [ "${KEEP_MODELS:-0}" = 1 ]; then  # render-only copies: fuse checkpoint without optimiser state + cfg_args.json
  for m in output/sweep_*; do
    [ -f "$m/chkpnt_fuse_latest.pth" ] && python scripts/slim_model.py "$m" "slim/$(basename "$m")" > /dev/null
  done
  tar -czf - slim | split -b 15M -d - "$OUT/models.tar.gz.part_"
fi
tar -czf "$OUT/sweep_logs.tar.gz" -C "$OUT" sweep && rm -r "$OUT/sweep"

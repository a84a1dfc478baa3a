#!/usr/bin/env bash
# Retrain cnn2 with today's defaults (expression without the mouth, standardised audio) in one device
# call, and compare what drives the lips with the model of 23 Nov (.gpu/cnn2_model_slim.tgz).
#   bash scripts/device/retrain_cnn2.sh [train.py args, default: --batch_size 4 --iterations 32000]
set -u
source scripts/device/setup.sh || exit 1
mkdir -p "$OUT" output
tar -xzf .gpu/cnn2_model_slim.tgz -C output && mv output/cnn2 output/cnn2_old
args=${*:-"--batch_size 4 --iterations 32000"}
t0=$(date +%s)
PARALLEL=1 bash scripts/train_xx.sh data/cnn2 output/cnn2 0 --resolution 512 $args --quiet > "$OUT/train_xx.log" 2>&1
t1=$(date +%s)
echo "train_xx.sh $args: $((t1 - t0)) s" | tee "$OUT/timing.txt"
grep -a "done at\|PSNR\|psnr\|error" "$OUT/train_xx.log" | tail -12
python scripts/lip_motion.py -S data/cnn2 -M output/cnn2 --split val --batch_size 32 --json "$OUT/lip_new.json" 2>&1 | tail -1
python scripts/lip_motion.py -S data/cnn2 -M output/cnn2_old --split val --batch_size 32 --expression_input all \
  --json "$OUT/lip_old.json" 2>&1 | tail -1
cp output/cnn2/test/ours_None/metrics.json "$OUT/metrics_new.json" 2>/dev/null
python scripts/slim_model.py output/cnn2 slim/cnn2 > /dev/null && cp -r output/cnn2/metrics slim/cnn2/ \
  && cp output/cnn2/test/ours_None/metrics.md slim/cnn2/ 2>/dev/null; tar -czf "$OUT/cnn2_new_slim.tar.gz" slim
ls -la "$OUT"

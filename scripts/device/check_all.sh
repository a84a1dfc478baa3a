#!/usr/bin/env bash
# GPU session (device tool): rasterizer check + benchmarks + short training runs on a carried subject.
#   carry .whl and .gpu (see scripts/device/setup.sh); results land in $OUT
source scripts/device/setup.sh || exit 1
mkdir -p $OUT
timeout 150 python scripts/gpu_check_rasterizer.py --out $OUT/gpu_rasterizer.md > $OUT/gpu_check.log 2>&1; tail -25 $OUT/gpu_check.log
timeout 90 python scripts/bench_render.py --device cuda --backends gsplat --out $OUT/bench_render_gpu.md > $OUT/bench_render.log 2>&1; tail -12 $OUT/bench_render.log
timeout 60 python scripts/bench_motion.py --device cuda --points 10000 100000 --frames 1 8 32 > $OUT/bench_motion_gpu.md 2>&1; tail -15 $OUT/bench_motion_gpu.md
timeout 200 python train.py -s data/cnn2 -m output/cnn2 --stage mouth --resolution 512 --max_minutes 1.5 --quiet > $OUT/train_mouth.log 2>&1; tail -5 $OUT/train_mouth.log
timeout 120 python train.py -s data/cnn2 -m output/cnn2 --stage face --resolution 512 --max_minutes 1.5 --quiet > $OUT/train_face.log 2>&1; tail -5 $OUT/train_face.log
cp output/cnn2/metrics/*.json $OUT/ 2>/dev/null; ls $OUT

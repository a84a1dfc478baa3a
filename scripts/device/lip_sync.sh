#!/usr/bin/env bash
# The lip-sync benchmark's GPU half (device tool): train several models side by side on one GPU, then
# render each on its val split and driven by another speaker's audio. MediaPipe is not on the GPU
# box, so scoring happens on the CPU box: scripts/bench_lip_sync.py score (docs/lip_sync.md).
#
#   bash scripts/device/lip_sync.sh start RUNS     # setup, frame caches, every run in the background; returns
#   bash scripts/device/lip_sync.sh wait [S]       # progress every 30 s for at most S seconds (default 540)
#   bash scripts/device/lip_sync.sh collect        # renders + lip_motion, packs what comes back into $OUT
#   bash scripts/device/lip_sync.sh models         # the slim models, when they did not fit beside the results
#
# RUNS: one line per model, "name | subject | driver | train.py args" (# comments skipped); driver is
# a feature stem (drivers/<x> with <x>_ph.npy, <x>_mel.npy from `bench_lip_sync.py driver`) or "-".
# Carry .whl and .gpu (.gpu/<ID>.tar.gz subject packs; .gpu/drivers.tgz; optional .gpu/a2m.tgz with
# output/<name>/audio_to_mouth.pt trained on the CPU box; .gpu/gsplat_cuda_so.tgz).
set -u
cmd=$1; shift
state=/tmp/lip_sync_runs
back=output/lip_sync_back  # ignored by git, so it survives between device calls (an untracked back/ did not)
case "$cmd" in
start)
  runs=$1
  source scripts/device/setup.sh || exit 1
  mkdir -p "$state" output
  cp "$runs" "$state/runs.txt"
  [ -f .gpu/drivers.tgz ] && tar -xzf .gpu/drivers.tgz
  [ -f .gpu/a2m.tgz ] && tar -xzf .gpu/a2m.tgz
  export OMP_NUM_THREADS=2
  for s in $(grep -v '^#' "$runs" | awk -F'|' 'NF>1 {gsub(/ /,"",$2); print $2}' | sort -u); do
    python -c "from scene.data.dataset import load_subject; load_subject('data/$s', 'train', 512, progress=False)" \
      > "$state/cache_$s.log" 2>&1 || { echo "cache of $s failed"; tail -5 "$state/cache_$s.log"; }
  done
  # smoke test first: every stage and both renders for a few steps (a broken run costs a whole window)
  s=$(grep -v '^#' "$runs" | head -1 | awk -F'|' '{gsub(/ /,"",$2); print $2}')
  if [ "${SMOKE:-1}" = 1 ] && ! (python train.py -s data/$s -m output/smoke --resolution 512 --batch_size 4 --mouth_iterations 20 \
          --face_iterations 20 --fuse_iterations 4 --quiet && python synthesize_fuse.py -S data/$s -M output/smoke \
          --eval --quiet && python synthesize_fuse.py -S data/$s -M output/smoke --use_train --fast --quiet \
          --audio drivers/german20s_ph.npy) > "$state/smoke.log" 2>&1; then
    echo "smoke test failed:"; tail -30 "$state/smoke.log"; exit 1
  fi
  tail -3 "$state/smoke.log"
  grep -v '^#' "$runs" | while IFS='|' read -r name subject driver args; do
    name=$(echo $name); subject=$(echo $subject); [ -z "$name" ] && continue
    setsid nohup bash -c "PARALLEL=1 bash scripts/train_xx.sh data/$subject output/$name 0 --resolution 512 $args \
      > $state/train_$name.log 2>&1; echo \$? > $state/done_$name" > /dev/null 2>&1 &
  done
  sleep 20; ls output; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv
  ;;
wait)
  limit=${1:-540}; t0=$(date +%s)
  while true; do
    n=$(grep -cv '^#' $state/runs.txt); d=$(ls $state/done_* 2>/dev/null | wc -l)
    echo "--- $(( $(date +%s) - t0 )) s: $d of $n runs done; $(nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader)"
    for f in $state/train_*.log; do
      for st in mouth face fuse; do
        line=$(tr '\r' '\n' < $f | grep -a "^$st: .*it/s" | tail -1 | cut -c1-100); [ -n "$line" ] && echo "$(basename $f .log) $line"
      done
    done
    [ "$d" -ge "$n" ] && break
    [ $(( $(date +%s) - t0 )) -ge "$limit" ] && break
    sleep 30
  done
  ;;
collect)
  source scripts/device/setup.sh > /dev/null || exit 1
  mkdir -p "$OUT" "$back"
  grep -v '^#' $state/runs.txt | while IFS='|' read -r name subject driver args; do
    name=$(echo $name); subject=$(echo $subject); driver=$(echo $driver); [ -z "$name" ] && continue
    m=output/$name
    echo "[$name] exit $(cat $state/done_$name 2>/dev/null)"; grep -a "error\|Error" $state/train_$name.log | tail -3
    mkdir -p $back/$name
    [ -f $m/test/ours_None/metrics.json ] || python synthesize_fuse.py -S data/$subject -M $m --eval --quiet > $back/$name/eval.log 2>&1
    cp $m/test/ours_None/renders/out.mp4 $back/$name/val.mp4 2>/dev/null
    cp $m/test/ours_None/renders/out_own_codes.mp4 $back/$name/val_own.mp4 2>/dev/null
    cp $m/test/ours_None/gt/out.mp4 $back/$name/val_gt.mp4 2>/dev/null
    cp $m/test/ours_None/metrics.json $back/$name/metrics_val.json 2>/dev/null
    if [ "$driver" != "-" ]; then
      python synthesize_fuse.py -S data/$subject -M $m --use_train --audio drivers/${driver}_ph.npy --fast --quiet \
        --out $back/$name/cross.mp4 --overwrite > $back/$name/cross.log 2>&1
      [ -f $back/$name/cross.mp4 ] || mv $back/$name/cross_silent.mp4 $back/$name/cross.mp4 2>/dev/null  # no ffmpeg here
      mv $back/$name/cross_mouth_codes.npy $back/$name/cross_codes.npy 2>/dev/null
      python synthesize_fuse.py -S data/$subject -M $m --use_train --audio drivers/${driver}_ph.npy --fast --quiet \
        --lip_gain 1 --out $back/$name/cross_g1.mp4 --overwrite > /dev/null 2>&1  # the render before --lip_gain
      [ -f $back/$name/cross_g1.mp4 ] || mv $back/$name/cross_g1_silent.mp4 $back/$name/cross_g1.mp4 2>/dev/null
      rm -f $back/$name/cross_g1_mouth_codes.npy
    fi
    python scripts/lip_motion.py -S data/$subject -M $m --split val --batch_size 32 --json $back/$name/lip_motion_val.json \
      > /dev/null 2>&1
    cp -r $m/metrics $back/$name/ 2>/dev/null; cp $m/cfg_args.json $back/$name/ 2>/dev/null
    tr '\r' '\n' < $state/train_$name.log | grep -av "it/s" | tail -20 > $back/$name/train_tail.log
    [ "${SLIM:-1}" = 1 ] && python scripts/slim_model.py $m $back/$name/model --overwrite > /dev/null 2>&1
    cat $back/$name/eval.log | tail -4
  done
  tar -czf - --exclude='*/model' -C "$(dirname "$back")" "$(basename "$back")" | split -b 15M -d - "$OUT/back.tgz.part_"
  if [ "${SLIM:-1}" = 1 ]; then  # what comes back is capped at 64 MiB a call: the models only if they fit
    if [ $(( $(du -sm "$OUT" | cut -f1) + $(du -sm --total "$back"/*/model 2>/dev/null | tail -1 | cut -f1) )) -lt 60 ]; then
      bash "$0" models
    else
      echo "models left on the machine (over the 64 MiB a call brings back): next call, within 30 s: lip_sync.sh models"
    fi
  fi
  so=$(ls /tmp/torch_ext/gsplat_cuda/gsplat_cuda.so 2>/dev/null) && [ ! -f .gpu/gsplat_cuda_so.tgz ] \
    && tar -czf "$OUT/gsplat_cuda_so.tgz" -C "$(dirname "$so")" gsplat_cuda.so  # skips the 80 s build next time
  ls -la "$OUT"
  ;;
models)
  # the slim models of the last collect (kept in $back, an ignored folder, until the machine goes back)
  mkdir -p "$OUT"
  tar -czf - -C "$back" $(cd "$back" && ls -d */model) | split -b 15M -d - "$OUT/models.tgz.part_"
  ls -la "$OUT"
  ;;
*)
  echo "usage: bash scripts/device/lip_sync.sh start RUNS | wait [S] | collect | models" >&2; exit 2
  ;;
esac

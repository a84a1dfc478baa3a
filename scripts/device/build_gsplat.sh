#!/usr/bin/env bash
# Run on the GPU machine (device tool): install the carried wheels, JIT-build gsplat's CUDA
# extension once, and put the built .so into $OUT so later runs can skip the ~80 s build
# (see gaussian_renderer/gsplat_prebuilt.py).
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD
export TORCH_EXTENSIONS_DIR=/tmp/torch_ext MAX_JOBS=16 TORCH_CUDA_ARCH_LIST=9.0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 - <<'PY'
import importlib, time
for name in ["numpy", "scipy", "cv2", "imageio_ffmpeg", "soundfile", "mediapipe", "tensorboard", "jaxtyping", "rich", "tqdm", "plyfile", "packaging", "triton"]:
    try:
        m = importlib.import_module(name); print(name, getattr(m, "__version__", "?"))
    except Exception as e:
        print(name, "MISSING", type(e).__name__)
import torch; print("torch", torch.__version__, torch.cuda.get_device_name())
t = time.time(); import gsplat; from gsplat.cuda._backend import _C; print("gsplat build+import", round(time.time() - t, 1), "s", _C)
PY
so=$(ls /tmp/torch_ext/gsplat_cuda/gsplat_cuda.so)
mkdir -p $OUT && tar -czf $OUT/gsplat_cuda_so.tgz -C $(dirname $so) gsplat_cuda.so && ls -la $OUT

"""Use an already-built gsplat CUDA extension instead of JIT-compiling it again (~80 s).

gsplat first tries `from gsplat import csrc`; registering a prebuilt `gsplat_cuda.so` under that
module name before gsplat is imported makes it skip the build. The .so must come from the same
gsplat, torch and CUDA versions. Looked up, in order: $GSPLAT_PREBUILT_SO, then
$TORCH_EXTENSIONS_DIR/gsplat_cuda/gsplat_cuda.so.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def find_prebuilt() -> Path | None:
    candidates = [os.environ.get("GSPLAT_PREBUILT_SO", "")]
    if os.environ.get("TORCH_EXTENSIONS_DIR"):
        candidates.append(os.path.join(os.environ["TORCH_EXTENSIONS_DIR"], "gsplat_cuda", "gsplat_cuda.so"))
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    return None


def preload_prebuilt_gsplat() -> bool:
    """Register a prebuilt extension as `gsplat.csrc`; True when one was loaded."""
    if "gsplat.csrc" in sys.modules or "gsplat" in sys.modules:
        return "gsplat.csrc" in sys.modules
    path = find_prebuilt()
    if path is None:
        return False
    import torch  # noqa: F401  (the extension links against libtorch, which must be loaded first)

    spec = importlib.util.spec_from_file_location("gsplat_cuda", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as e:  # wrong torch/CUDA build: let gsplat JIT-compile instead
        log.warning("Prebuilt gsplat extension %s does not load (%s); gsplat will compile its own.", path, e)
        return False
    sys.modules["gsplat.csrc"] = module
    log.info("Using prebuilt gsplat extension %s", path)
    return True

"""Copy a trained model for rendering only: the fuse checkpoint without optimiser state, cfg_args.json
and the audio-to-mouth model (models with mouth codes).

    python scripts/slim_model.py output/<ID> slim/<ID>

A render-only copy is ~3x smaller (what comes back from the GPU box, or goes to another machine);
synthesize_fuse.py and scripts/lip_motion.py read it like the full folder. It cannot resume training.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path


def slim_model(model: Path, out: Path) -> Path:
    from scene.models.audio_to_mouth import ARTIFACT
    from utils.io_utils import load_checkpoint, save_torch

    state = load_checkpoint(model / "chkpnt_fuse_latest.pth")
    state["branches"] = {k: {"gaussians": b["gaussians"], "net": b["net"]} for k, b in state["branches"].items()}
    out.mkdir(parents=True, exist_ok=True)
    save_torch(out / "chkpnt_fuse_latest.pth", state)
    shutil.copy(model / "cfg_args.json", out / "cfg_args.json")
    if (model / ARTIFACT).is_file():
        shutil.copy(model / ARTIFACT, out / ARTIFACT)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    model = Path(sys.argv[1])
    if not (model / "chkpnt_fuse_latest.pth").is_file():
        sys.exit(f"error: {model} has no chkpnt_fuse_latest.pth (train all three stages first)")
    print(slim_model(model, Path(sys.argv[2])))

"""Copy a trained model for rendering only: the fuse checkpoint without optimiser state, cfg_args.json
and the audio-to-mouth model (models with mouth codes).

    python scripts/slim_model.py output/<ID> slim/<ID>      # --overwrite to replace an earlier copy

A render-only copy is ~3x smaller (what comes back from the GPU box, or goes to another machine);
synthesize_fuse.py and scripts/lip_motion.py read it like the full folder. It cannot resume training.
"""
from __future__ import annotations

import argparse
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path, help="trained model folder (output/<ID>)")
    p.add_argument("out", type=Path, help="folder for the render-only copy")
    p.add_argument("--overwrite", action="store_true", help="replace a copy already in OUT")
    args = p.parse_args(argv)
    if not (args.model / "chkpnt_fuse_latest.pth").is_file():
        print(f"error: {args.model} has no chkpnt_fuse_latest.pth (train all three stages first)", file=sys.stderr)
        return 1
    if (args.out / "chkpnt_fuse_latest.pth").exists() and not args.overwrite:
        print(f"error: {args.out} already holds a model (--overwrite replaces it)", file=sys.stderr)
        return 1
    print(slim_model(args.model, args.out))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())

"""Fingerprint of a short CPU training run: trains every stage on the synthetic fixture subject through
the command lines (train.py, synthesize_fuse.py), then prints a hash of each checkpoint's tensors and of
the rendered frames (val split, and the training frames driven by the subject's own audio features).

    python -m tests.render_fingerprint [--keep DIR] [-- extra train.py flags]

Same numbers before and after a change = no behaviour change (docs/architecture.md records one). Compare
runs with the same OMP_NUM_THREADS: the thread count changes the order of float sums.
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def tensor_digest(obj, h) -> None:
    """Feed every tensor of a nested checkpoint into h, in key order (other values are ignored)."""
    if isinstance(obj, torch.Tensor):
        h.update(obj.detach().cpu().contiguous().numpy().tobytes())
    elif isinstance(obj, dict):
        for k in sorted(obj, key=str):
            tensor_digest(obj[k], h)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            tensor_digest(v, h)


def video_digest(path: Path) -> str:
    h, cap = hashlib.sha256(), cv2.VideoCapture(str(path))
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        h.update(np.ascontiguousarray(frame).tobytes())
    return h.hexdigest()[:16]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keep", type=Path, help="work here and keep the files (default: a temporary folder)")
    p.add_argument("train_flags", nargs="*", help="more train.py flags (after --), e.g. -- --direct_audio on")
    args = p.parse_args(argv)
    import synthesize_fuse
    import train
    from tests.fixtures.make_subject import make_subject

    root = args.keep or Path(tempfile.mkdtemp())
    subject = make_subject(root / "synth", n_frames=24, size=48)
    model = root / "model"
    rc = train.main(["-s", str(subject), "-m", str(model), "--mouth_iterations", "60", "--face_iterations", "60",
                     "--fuse_iterations", "12", "--init_num", "200", "--face_init_num", "200", "--seed", "0",
                     "--backend", "torch", "--quiet", *args.train_flags])
    assert rc == 0, rc
    for ck in sorted(model.glob("chkpnt_*_latest.pth")) + [model / "audio_to_mouth.pt"]:
        h = hashlib.sha256()
        tensor_digest(torch.load(ck, map_location="cpu", weights_only=True), h)
        print(f"{ck.name:28s} {h.hexdigest()[:16]}")
    assert synthesize_fuse.main(["-S", str(subject), "-M", str(model), "--eval", "--backend", "torch", "--quiet"]) == 0
    print(f"{'val render':28s} {video_digest(next(model.glob('test/*/renders/out.mp4')))}")
    out = root / "driven.mp4"
    assert synthesize_fuse.main(["-S", str(subject), "-M", str(model), "--use_train", "--audio",
                                 str(subject / "aud_ph.npy"), "--out", str(out), "--backend", "torch", "--quiet"]) == 0
    driven = out if out.exists() else root / "driven_silent.mp4"
    print(f"{'audio-driven render':28s} {video_digest(driven)}")
    if not args.keep:
        shutil.rmtree(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Convert a torch or numpy file YOU TRUST to plain data, once, so that the project loads it safely.

    python scripts/convert_checkpoint.py output/<ID>/chkpnt_fuse_latest.pth output/<ID>/chkpnt_fuse_latest.pth
    python scripts/convert_checkpoint.py output/<ID> output/<ID>          # every *.pth / *.pt in a model folder
    python scripts/convert_checkpoint.py 3DMM/3DMM_info.npy 3DMM/3DMM_info.npz   # upstream's pickled dict

The project reads torch files with `torch.load(weights_only=True)` and numpy files with
`allow_pickle=False` (utils/io_utils.load_checkpoint): tensors, numbers, strings, lists and dicts only,
so a crafted model file cannot run code. Models written before that check (their frame sampler held
numpy integers) and upstream's pickled `.npy` dicts are refused with a message that names this script.

THIS SCRIPT UNPICKLES ITS INPUT (torch.load weights_only=False, np.load allow_pickle=True): it is the
only place in the project that does, and it runs whatever code the file carries. Use it only on files
you made yourself or got from someone you trust. The output holds the same values as plain data
(numpy scalars -> Python numbers, numpy arrays -> tensors; a pickled .npy dict -> an .npz of arrays),
is written atomically (OLD may equal NEW) and is checked to load safely before the script reports success.
"""
from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from utils.io_utils import load_checkpoint, plain_data, save_torch, write_atomic  # noqa: E402

TORCH_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")


def convert_torch(old: Path, new: Path) -> Path:
    """A torch file -> the same values as plain data (loads with weights_only=True)."""
    import torch

    obj = torch.load(old, map_location="cpu", weights_only=False)  # the one trusted unpickling
    save_torch(new, plain_data(obj))
    load_checkpoint(new)  # raises if anything is still not plain data
    return new


def convert_npy(old: Path, new: Path) -> Path:
    """A pickled .npy dict of arrays (upstream's 3DMM_info.npy, AD-NeRF's exp_info.npy) -> an .npz."""
    if new.suffix != ".npz":
        raise ValueError(f"{new}: a converted numpy dict is an .npz (name it {new.with_suffix('.npz').name})")
    obj = np.load(old, allow_pickle=True)  # the one trusted unpickling
    if obj.dtype == object and obj.shape == ():
        obj = obj.item()
    if not isinstance(obj, dict):
        raise ValueError(f"{old} holds a {type(obj).__name__}, not a dict of arrays; nothing to convert")
    arrays = {str(k): np.asarray(v) for k, v in obj.items()}
    odd = [k for k, a in arrays.items() if a.dtype == object]
    if odd:
        raise ValueError(f"{old}: entries {odd} are not numeric arrays")

    def _write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    write_atomic(new, _write)
    with np.load(new, allow_pickle=False) as z:  # the check: loads without unpickling
        assert sorted(z.files) == sorted(arrays)
    return new


def convert(old: Path, new: Path) -> list[Path]:
    """Convert one file, or every torch file of a folder into folder `new` (same names)."""
    old, new = Path(old), Path(new)
    if not old.exists():
        raise FileNotFoundError(f"Does not exist: {old}")
    if old.is_dir():
        files = sorted(p for p in old.rglob("*") if p.suffix in TORCH_SUFFIXES and p.is_file())
        if not files:
            raise FileNotFoundError(f"No torch files ({', '.join(TORCH_SUFFIXES)}) in {old}")
        return [convert_torch(p, new / p.relative_to(old)) for p in files]
    if old.suffix == ".npy":
        return [convert_npy(old, new)]
    return [convert_torch(old, new)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old", type=Path, help="the trusted file (or model folder) to convert")
    ap.add_argument("new", type=Path, help="where the plain-data version goes (may be the same path)")
    args = ap.parse_args(argv)
    try:
        done = convert(args.old, args.new)
    except (OSError, ValueError, TypeError, RuntimeError, pickle.UnpicklingError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for path in done:
        print(f"converted -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

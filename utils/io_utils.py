"""Atomic file writes, and loading of files that may come from someone else as plain data only.

Every writer goes to a temporary file in the destination folder, then `os.replace` moves it
into place (atomic on POSIX when both live on the same filesystem): a Ctrl-C never leaves a
half-written file that looks complete.

Torch files (checkpoints, track_params.pt, 3dmm.pt, user weights) are read with `load_checkpoint`:
`torch.load(weights_only=True)`, which rebuilds tensors, numbers, strings and containers but runs no
code, so a crafted file cannot execute anything. `save_torch` writes only such plain data.
"""
from __future__ import annotations

import collections
import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success move it onto `path`, on error delete it.

    `suffix` defaults to the destination's own suffix so writers that look at the extension
    (cv2.imwrite, np.save, ffmpeg) pick the right format.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():  # mkstemp makes 0600 files: give the result the usual umask-based mode
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_atomic(path: str | os.PathLike, writer: Callable[[Path], Any]) -> Path:
    """Call `writer(tmp_path)` and move the result onto `path`."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def save_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> Path:
    def _write(tmp: Path) -> None:
        tmp.write_text(json.dumps(obj, indent=indent))
    return write_atomic(path, _write)


def load_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    """np.save, atomically; never a pickle (object arrays are refused: readers load with allow_pickle=False)."""
    def _write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)
    return write_atomic(path, _write)


def save_text(path: str | os.PathLike, text: str) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text))


def print_report(lines: list[str], out: str | os.PathLike | None = None) -> str:
    """A benchmark's markdown report: printed, and written atomically to `out` when one is given."""
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        save_text(out, text)
    return text


CONVERT_SCRIPT = "scripts/convert_checkpoint.py"


class UnsafeFileError(ValueError):
    """A file that holds more than plain data (code, or objects only a full unpickler rebuilds)."""


def plain_data(obj: Any, where: str = "") -> Any:
    """`obj` with numpy scalars as Python numbers and numpy arrays as tensors (what weights_only loads).

    Raises TypeError naming the key of anything else that is not plain data.
    """
    import torch

    if isinstance(obj, np.generic):  # before the Python types: np.float64 is also a float
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, torch.Tensor, torch.dtype,
                                       torch.Size, torch.device)):
        return obj
    if isinstance(obj, np.ndarray) and obj.dtype != object:
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, dict):
        items = {k: plain_data(v, f"{where}.{k}" if where else str(k)) for k, v in obj.items()}
        if all(items[k] is v for k, v in obj.items()):
            return obj  # unchanged: keep the very object (a state_dict keeps its _metadata)
        return collections.OrderedDict(items) if isinstance(obj, collections.OrderedDict) else items
    if isinstance(obj, (list, tuple, set)):
        values = [plain_data(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return obj if all(a is b for a, b in zip(values, obj)) else type(obj)(values)
    raise TypeError(f"{where or 'value'}: {type(obj).__module__}.{type(obj).__name__} is not plain data "
                    "(store tensors, numbers, strings, lists and dicts)")


def save_torch(path: str | os.PathLike, obj: Any) -> Path:
    """torch.save of `plain_data(obj)`: the file loads with `load_checkpoint` (weights_only)."""
    import torch

    obj = plain_data(obj)
    return write_atomic(path, lambda tmp: torch.save(obj, tmp))


def load_checkpoint(path: str | os.PathLike) -> Any:
    """A torch file (checkpoint, track_params.pt, weights) as data only, on the CPU; never runs its code.

    Raises UnsafeFileError (one line, naming the file and the conversion script) when the file holds
    anything but plain data: code, or objects of an older format (e.g. numpy values).
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"File does not exist: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise UnsafeFileError(
            f"{path} contains code or objects that are not plain data; refusing to load it. If you trust it "
            f"(e.g. a model you trained before this check), convert it once with: python {CONVERT_SCRIPT} "
            f"{path} {path}") from e
    except (RuntimeError, EOFError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ValueError(f"{path} is not a readable torch file (truncated or damaged? {first})") from e

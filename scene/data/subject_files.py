"""Readers for the files of a processed subject folder `data/<ID>/` (upstream names and formats).

Every reader is a small function of one path. A missing input raises `MissingSubjectFile`, whose
one-line message names the file and the preprocessing step that writes it.

    transforms_{train,val}.json   cameras (scene/data/cameras.py)
    ori_imgs/<i>.jpg | <ID>.mp4   frames (RGB uint8 [H, W, 3])
    ori_imgs/<i>.lms              68 "x y" rows (iBUG layout, native pixels)
    parsing/<i>.png               region colour code (scene/data/frame_features.py)
    teeth_mask/<i>.npy|.png|.npz  bool [H, W] (.npy plain, 0/1 uint8 or np.packbits-packed; bilevel .png;
                                  compressed .npz)
    bc.jpg, bg/<i>.png, torso_imgs/<i>.png
    au.csv                        OpenFace-style, header spaces optional
    3dmm.pt                       SMIRK keys
    aud_<postfix>.npy (+ .json)   audio features (data_utils/audio/features.py)
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import cv2
import numpy as np

from utils.io_utils import load_checkpoint

# Which preprocessing step writes what (data_utils/process.py; task names follow issue 3's order).
PRODUCERS = {
    "transforms": "head pose and cameras (python data_utils/process.py data/<ID>/<ID>.mp4 --task 4)",
    "frames": "frame extraction (python data_utils/process.py data/<ID>/<ID>.mp4 --task 2), "
              "or keep data/<ID>/<ID>.mp4 in the folder so the reader decodes it",
    "landmarks": "landmarks (python data_utils/process.py data/<ID>/<ID>.mp4 --task 3)",
    "parsing": "face parsing (python data_utils/process.py data/<ID>/<ID>.mp4 --task 5)",
    "teeth": "teeth masks (python data_utils/process.py data/<ID>/<ID>.mp4 --task 6)",
    "bc": "static background (python data_utils/process.py data/<ID>/<ID>.mp4 --task 6)",
    "au": "expression and blink (python data_utils/process.py data/<ID>/<ID>.mp4 --task 7), "
          "or an OpenFace FeatureExtraction csv copied to au.csv",
    "3dmm": "expression codes (python data_utils/process.py data/<ID>/<ID>.mp4 --task 7)",
    "audio": "audio features (python data_utils/process.py data/<ID>/<ID>.mp4 --task 1, "
             "or python data_utils/audio_features.py --wav data/<ID>/aud.wav --extractor <name>)",
}

AU_COLUMNS = ("AU01_r", "AU04_r", "AU05_r", "AU06_r", "AU07_r", "AU25_r", "AU45_r")
SMIRK_KEYS = ("expression_params", "eyelid_params", "jaw_params")


class MissingSubjectFile(FileNotFoundError):
    """A file the trainer needs is absent; the message names it and the step that writes it."""

    def __init__(self, path: str | Path, producer: str):
        self.path = Path(path)
        self.producer = producer
        super().__init__(f"Missing {self.path}: written by the preprocessing step {PRODUCERS[producer]}")

    def __str__(self) -> str:  # one line, no errno prefix
        return self.args[0]


def require(path: str | Path, producer: str) -> Path:
    """Return `path` if it exists, else raise MissingSubjectFile naming `producer`."""
    path = Path(path)
    if not path.exists():
        raise MissingSubjectFile(path, producer)
    return path


def subject_video(data_dir: str | Path) -> Path | None:
    """`data/<ID>/<ID>.mp4` when present (the compact folder's frame source)."""
    data_dir = Path(data_dir)
    path = data_dir / f"{data_dir.resolve().name}.mp4"
    return path if path.is_file() else None


# ----------------------------------------------------------------------------- images
def read_rgb(path: str | Path, producer: str = "frames") -> np.ndarray:
    """Image file -> RGB uint8 [H, W, 3]."""
    path = require(path, producer)
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"Unreadable image: {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_rgba(path: str | Path, producer: str) -> np.ndarray:
    """RGBA image file -> uint8 [H, W, 4] (alpha 255 when the file has none)."""
    path = require(path, producer)
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"Unreadable image: {path}")
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGRA)
    elif img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
    return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA)


def image_size(path: str | Path) -> tuple[int, int]:
    """(W, H) of an image file."""
    img = read_rgb(path)
    return img.shape[1], img.shape[0]


# ----------------------------------------------------------------------------- landmarks, teeth
def read_lms(path: str | Path) -> np.ndarray:
    """`.lms` text file -> float32 [68, 2] (x, y) in native pixels."""
    path = require(path, "landmarks")
    lms = np.loadtxt(path, dtype=np.float32, ndmin=2)
    if lms.shape != (68, 2):
        raise ValueError(f"{path}: expected 68 rows of 'x y', got shape {lms.shape}")
    return lms


def teeth_path(data_dir: str | Path, img_id: int) -> Path:
    """The teeth mask file of a frame: `.npy` (upstream) preferred, then `.png` (data_utils/teeth.py --png), `.npz`."""
    base = Path(data_dir) / "teeth_mask" / str(img_id)
    for suffix in (".npy", ".png", ".npz"):
        if base.with_suffix(suffix).exists():
            return base.with_suffix(suffix)
    raise MissingSubjectFile(base.with_suffix(".npy"), "teeth")


def decode_mask(array: np.ndarray, shape: tuple[int, int] | None, where: str | Path) -> np.ndarray:
    """A stored mask -> bool [H, W]; a 1-D uint8 array is np.packbits output of the flattened mask."""
    if array.ndim == 1:
        if shape is None:
            raise ValueError(f"{where}: a packed mask needs its shape")
        h, w = shape
        if array.dtype != np.uint8 or array.size != (h * w + 7) // 8:
            raise ValueError(f"{where}: {array.size} packed bytes do not hold a {h}x{w} mask")
        return np.unpackbits(array, count=h * w).reshape(h, w).astype(bool)
    if array.ndim != 2:
        raise ValueError(f"{where}: expected a [H, W] mask, got shape {array.shape}")
    if shape is not None and array.shape != tuple(shape):
        raise ValueError(f"{where}: mask shape {array.shape} differs from the frame's {tuple(shape)}")
    return array.astype(bool) if array.dtype == bool else array > 0


def read_teeth(data_dir: str | Path, img_id: int, shape: tuple[int, int]) -> np.ndarray:
    """Teeth mask of frame `img_id` -> bool [H, W] (shape = the native frame's (H, W))."""
    path = teeth_path(data_dir, img_id)
    if path.suffix == ".png":  # data_utils/teeth.py's compact format (bilevel PNG)
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise ValueError(f"Unreadable teeth mask: {path}")
        return decode_mask(img > 127, shape, path)
    if path.suffix == ".npz":
        with np.load(path) as z:
            key = "mask" if "mask" in z.files else "packed" if "packed" in z.files else z.files[0]
            array = z[key]
            if "shape" in z.files and tuple(int(s) for s in z["shape"]) != tuple(shape):
                raise ValueError(f"{path}: mask shape {tuple(z['shape'])} differs from the frame's {tuple(shape)}")
        return decode_mask(array, shape, path)
    return decode_mask(np.load(path), shape, path)


def write_teeth_png(path: str | Path, mask: np.ndarray) -> None:
    """Compact teeth mask as a bilevel PNG (data_utils/teeth.py's compact format; what pack_subject.py stores)."""
    if not cv2.imwrite(str(path), np.asarray(mask, bool).astype(np.uint8) * 255, [cv2.IMWRITE_PNG_BILEVEL, 1]):
        raise OSError(f"Could not write {path}")


def write_teeth_npz(path: str | Path, mask: np.ndarray) -> None:
    """Compact teeth mask: packbits + shape in a compressed npz."""
    mask = np.asarray(mask, dtype=bool)
    with open(path, "wb") as f:
        np.savez_compressed(f, packed=np.packbits(mask.ravel()), shape=np.array(mask.shape, np.int64))


# ----------------------------------------------------------------------------- expression
def read_au_csv(path: str | Path, columns: tuple[str, ...] = AU_COLUMNS) -> dict[str, np.ndarray]:
    """OpenFace-style csv -> {column: float32 [N]} for `columns`; header whitespace is ignored."""
    path = require(path, "au")
    text = path.read_text()
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise ValueError(f"{path} is empty")
    header = [h.strip() for h in rows[0]]
    body = [r for r in rows[1:] if any(c.strip() for c in r)]
    out = {}
    for name in columns:
        if name not in header:
            raise ValueError(f"{path} has no column {name} (columns: {', '.join(header[:12])}...)")
        k = header.index(name)
        try:
            out[name] = np.array([float(r[k]) for r in body], dtype=np.float32)
        except (ValueError, IndexError) as e:
            raise ValueError(f"{path}: bad value in column {name}: {e}") from e
    return out


def read_3dmm(path: str | Path) -> dict[str, np.ndarray]:
    """SMIRK-style `3dmm.pt` -> float32 arrays: expression_params [N, 50], eyelid_params [N, 2], jaw_params [N, 3]."""
    import torch

    path = require(path, "3dmm")
    data = load_checkpoint(path)
    out = {}
    for key in SMIRK_KEYS:
        if key not in data:
            raise ValueError(f"{path} has no key {key} (keys: {', '.join(sorted(data))})")
        out[key] = np.asarray(torch.as_tensor(data[key]).detach().float().numpy(), dtype=np.float32)
        out[key] = out[key].reshape(out[key].shape[0], -1)
    n = {k: v.shape[0] for k, v in out.items()}
    if len(set(n.values())) != 1:
        raise ValueError(f"{path}: keys have different frame counts {n}")
    return out


def expression_source(data_dir: str | Path) -> str | None:
    """What made 3dmm.pt ("blendshapes", "pca", ...; expression.json from data_utils/expression.py), or None."""
    path = Path(data_dir) / "expression.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text()).get("source")
    except (ValueError, AttributeError):
        return None


# ----------------------------------------------------------------------------- audio
def audio_feature_path(data_dir: str | Path, extractor: str) -> Path:
    """`data/<ID>/aud_<postfix>.npy` for an extractor name (phoneme -> ph, hubert -> hu, ...)."""
    from data_utils.audio.registry import get_extractor

    return Path(data_dir) / f"aud_{get_extractor(extractor).postfix}.npy"


def read_audio_features(data_dir: str | Path, extractor: str) -> np.ndarray:
    """Audio features of the whole clip as float32 [T, C, W] (upstream's permute of [T, W, C]).

    Raises MissingSubjectFile when absent, ValueError when they are of another extractor.
    """
    from data_utils.audio.features import load_features

    path = require(audio_feature_path(data_dir, extractor), "audio")
    feats = load_features(path, expected_extractor=extractor)
    return np.ascontiguousarray(feats.array.transpose(0, 2, 1), dtype=np.float32)  # [T, C, W]

"""Teeth masks (``teeth_mask/<i>.npy``): teeth-coloured pixels inside the inner-lip polygon.

Upstream segments teeth with EasyPortrait (mmseg; no installable wheel). Here: the inner-lip polygon of
the MediaPipe face mesh, slightly dilated (teeth show right at the lip edge), and inside it the pixels
that are brighter and less saturated than the frame's own lips (the lips ring between the outer and
inner polygons is the per-frame reference, so lighting and skin tone cancel out).

Files: by default ``teeth_mask/<i>.npy`` holds bool [H, W] exactly as upstream (`np.load` gives the
mask; 1 byte a pixel: ~262 KB a 512x512 frame). ``fmt="png"`` writes ``teeth_mask/<i>.png`` instead
(1-bit-like PNG, ~0.3 KB); ``load_teeth_mask`` reads either.

Usage:
    python data_utils/teeth.py data/<ID> [--force] [--png]
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import cv2
import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_utils.mesh_topology import LIPS_INNER, LIPS_OUTER  # noqa: E402
from data_utils.parsing import FrameLandmarks, frame_count, read_rgb, run_chunked  # noqa: E402
from utils.io_utils import atomic_path, save_npy  # noqa: E402

log = logging.getLogger(__name__)

BRIGHTER = 0.25      # teeth L > lips L + BRIGHTER * (255 - lips L)
GRAYER = 0.95        # teeth chroma < GRAYER * lips chroma (teeth look pinkish on video: brightness decides)
MIN_PIXELS = 4       # connected teeth specks smaller than this are dropped


def teeth_mask(rgb: np.ndarray, lms: np.ndarray) -> np.ndarray:
    """Bool [H, W]: teeth pixels of one frame.

    Args:
        rgb: [H, W, 3] uint8 frame.
        lms: [478, 3] MediaPipe refined face mesh, x and y in pixels.
    """
    H, W = rgb.shape[:2]
    assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8, (rgb.shape, rgb.dtype)
    assert lms.ndim == 2 and lms.shape[0] >= 468, lms.shape
    out = np.zeros((H, W), bool)
    outer = lms[LIPS_OUTER, :2].astype(np.float64)
    x0, y0 = np.floor(outer.min(0)).astype(int) - 3
    x1, y1 = np.ceil(outer.max(0)).astype(int) + 4
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
    if x1 <= x0 or y1 <= y0:
        return out
    shift = np.array([x0, y0], np.float64)
    h, w = y1 - y0, x1 - x0
    inner = np.zeros((h, w), np.uint8)
    cv2.fillPoly(inner, [np.round(lms[LIPS_INNER, :2] - shift).astype(np.int32)], 1)
    lips = np.zeros((h, w), np.uint8)
    cv2.fillPoly(lips, [np.round(outer - shift).astype(np.int32)], 1)
    ring = (lips > 0) & (inner == 0)
    if inner.sum() == 0 or ring.sum() == 0:
        return out
    inside = cv2.dilate(inner, np.ones((3, 3), np.uint8)) > 0

    lab = cv2.cvtColor(rgb[y0:y1, x0:x1], cv2.COLOR_RGB2LAB).astype(np.float32)
    light = lab[..., 0]
    chroma = np.hypot(lab[..., 1] - 128.0, lab[..., 2] - 128.0)
    lips_light, lips_chroma = float(np.median(light[ring])), float(np.median(chroma[ring]))
    teeth = inside & (light > lips_light + BRIGHTER * (255.0 - lips_light)) & (chroma < GRAYER * lips_chroma)
    _, comp, stats, _ = cv2.connectedComponentsWithStats(teeth.astype(np.uint8), connectivity=8)
    big = np.nonzero(stats[:, cv2.CC_STAT_AREA] >= MIN_PIXELS)[0]
    out[y0:y1, x0:x1] = np.isin(comp, big[big > 0])  # specks of a few pixels are noise
    return out


# ----------------------------------------------------------------------------- files
def teeth_path(data_dir: str | Path, i: int, fmt: str = "npy") -> Path:
    return Path(data_dir) / "teeth_mask" / f"{i}.{fmt}"


def save_teeth_mask(path: str | Path, mask: np.ndarray) -> Path:
    """bool [H, W] -> .npy (upstream layout) or .png (compact), chosen by the suffix; atomic."""
    path = Path(path)
    if path.suffix == ".png":
        with atomic_path(path) as tmp:
            cv2.imwrite(str(tmp), mask.astype(np.uint8) * 255, [cv2.IMWRITE_PNG_BILEVEL, 1])
        return path
    return save_npy(path, mask.astype(bool))


def load_teeth_mask(data_dir: str | Path, i: int) -> np.ndarray:
    """teeth_mask/<i>.npy or teeth_mask/<i>.png as bool [H, W]."""
    npy, png = teeth_path(data_dir, i, "npy"), teeth_path(data_dir, i, "png")
    if npy.is_file():
        return np.load(npy).astype(bool)
    if png.is_file():
        return cv2.imread(str(png), cv2.IMREAD_GRAYSCALE) > 127
    raise FileNotFoundError(f"No teeth mask for frame {i}: {npy} is missing; run the teeth step first")


def _teeth_chunk(data_dir: Path, ids: list[int], fmt: str) -> int:
    lms = FrameLandmarks(data_dir)
    n_teeth = 0
    for i in ids:
        mask = teeth_mask(read_rgb(data_dir / "ori_imgs" / f"{i}.jpg"), lms[i])
        n_teeth += bool(mask.any())
        save_teeth_mask(teeth_path(data_dir, i, fmt), mask)
        other = teeth_path(data_dir, i, "png" if fmt == "npy" else "npy")
        if other.is_file():  # one format per frame, so readers never see a stale mask
            other.unlink()
    return n_teeth


def run_teeth(data_dir: str | Path, force: bool = False, fmt: str = "npy", progress: bool = True,
              workers: int | None = None) -> str:
    """Write teeth_mask/<i>.<fmt> for every frame (resumable). Returns a one-line summary."""
    if fmt not in ("npy", "png"):
        raise ValueError(f"Unknown teeth mask format {fmt!r}: use 'npy' or 'png'")
    data_dir = Path(data_dir)
    n = frame_count(data_dir)
    done = lambda i: teeth_path(data_dir, i, "npy").is_file() or teeth_path(data_dir, i, "png").is_file()  # noqa: E731
    todo = [i for i in range(n) if force or not done(i)]
    if not todo:
        return f"teeth: {n} frames already done (skipped)"
    FrameLandmarks(data_dir)[todo[-1]]  # fail early, in this process, when landmarks are missing
    n_teeth = sum(run_chunked(_teeth_chunk, data_dir, todo, workers, desc="teeth", progress=progress, fmt=fmt))
    return f"teeth: {len(todo)} of {n} frames written to {data_dir / 'teeth_mask'} ({fmt}; teeth seen in {n_teeth})"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir", type=Path, help="data/<ID> with ori_imgs/ (frames and landmarks)")
    ap.add_argument("--force", action="store_true", help="redo frames whose mask exists")
    ap.add_argument("--png", action="store_true", help="compact PNG masks instead of upstream .npy")
    args = ap.parse_args(argv)
    try:
        print(run_teeth(args.data_dir, force=args.force, fmt="png" if args.png else "npy"))
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()

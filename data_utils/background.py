"""Backgrounds and derived images: ``bc.jpg``, ``gt_imgs/``, ``torso_imgs/`` (RGBA) and ``bg/``.

- ``static_background``: the upstream method. Over sampled frames (every 20th), each pixel's distance
  to the nearest person (non-white parsing) pixel; per pixel the frame where that distance is largest
  gives the colour. Pixels whose best distance is > 5 px are confident; the rest take the colour of
  the nearest confident pixel.
- ``make_gt``: the frame with parsing-background pixels replaced by bc.
- ``make_torso``: neck and cloth of the frame as RGBA, with upstream's vertical in-painting under the
  head (cloth tops extended 9 px up; neck tops pushed down <= 4 px then painted 53 px up, blending to
  the mean neck colour as DEGSTalk does, then a 5x5 blur of the painted pixels).
- ``make_bg_with_hair``: DEGSTalk's per-frame hair-preserving background: the frame with the eroded
  face (13x13), mouth, neck and cloth removed, the torso image laid over it, the holes left filled
  from bc. Hair, ears, a ~6 px face rim and the real background stay those of the frame.

All four are pure functions of arrays, so the trainer can also build them on the fly.

Usage:
    python data_utils/background.py data/<ID> [--force] [--only bc|derived]
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_utils.parsing import (BACKGROUND, CLOTH, FACE, MOUTH, NECK, frame_count, load_parsing,  # noqa: E402
                                parsing_to_labels, read_rgb, run_chunked, write_image)

log = logging.getLogger(__name__)

BC_STEP = 20             # every 20th frame feeds the static background
BC_CONFIDENT_PX = 5.0    # a pixel at least this far from the person in some frame is trusted
TORSO_PAINT = 9          # cloth tops extended up (px), darkening 0.98 per px
NECK_PUSH_DOWN = 4       # neck seed taken up to this many px below the neck top
NECK_PAINT = 48 + NECK_PUSH_DOWN + 1  # neck painted up this many px (53)
FACE_ERODE = 13          # DEGSTalk's min-filter size on face | mouth


# ----------------------------------------------------------------------------- static background
def static_background(frames: Iterable[np.ndarray], parsings: Iterable[np.ndarray],
                      confident_px: float = BC_CONFIDENT_PX) -> np.ndarray:
    """Static background bc [H, W, 3] uint8 from (already subsampled) frames and their parsings.

    Args:
        frames: iterable of [H, W, 3] uint8 RGB frames.
        parsings: iterable of the matching [H, W, 3] parsing images (white = background).
    """
    best = None  # [H, W] largest distance to the person seen so far
    colour = None  # [H, W, 3] frame colour where it was seen
    for rgb, parsing in zip(frames, parsings):
        background = np.all(parsing == 255, axis=-1)
        if best is None:
            best = np.full(background.shape, -1.0, np.float32)
            colour = np.zeros(rgb.shape, np.uint8)
        assert rgb.shape[:2] == background.shape == best.shape, (rgb.shape, background.shape)
        if background.all():  # nobody in the frame: every pixel infinitely far
            dist = np.full(background.shape, np.float32(1e6))
        else:
            dist = cv2.distanceTransform(background.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        better = dist > best
        best[better] = dist[better]
        colour[better] = rgb[better]
    if best is None:
        raise ValueError("static_background got no frames")
    confident = best > confident_px
    if not confident.any():
        confident = best > 0
        if not confident.any():
            raise ValueError("the person covers every pixel in every sampled frame: no background to see")
        log.warning("no pixel is ever more than %.0f px from the person; using every background pixel", confident_px)
    from scipy.ndimage import distance_transform_edt

    _, (iy, ix) = distance_transform_edt(~confident, return_indices=True)
    return colour[iy, ix]


# ----------------------------------------------------------------------------- per-frame images
def _paste(dst: np.ndarray, src: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Copy of `dst` with src's pixels where mask [H, W] bool is set (cv2.copyTo: no 3-channel where)."""
    return cv2.copyTo(src, mask.astype(np.uint8), dst.copy())


def make_gt(frame: np.ndarray, parsing: np.ndarray, bc: np.ndarray) -> np.ndarray:
    """Ground-truth image [H, W, 3]: the frame with parsing-background pixels taken from bc."""
    return _paste(frame, bc, parsing_to_labels(parsing) == BACKGROUND)


def _column_tops(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column holding `mask`: its column index, top row and pixel count (each [M] int)."""
    has = mask.any(0)
    cols = np.nonzero(has)[0]
    tops = mask[:, cols].argmax(0)
    return cols, tops, mask[:, cols].sum(0)


def _paint_up(img: np.ndarray, painted: np.ndarray, rows: np.ndarray, cols: np.ndarray,
              colours: np.ndarray) -> None:
    """img[rows - k, cols] = colours[k] for k = 0..L-1 (colours [L, M, 3] float), clipped to the frame."""
    L = colours.shape[0]
    rr = rows[None, :] - np.arange(L)[:, None]  # [L, M]
    cc = np.broadcast_to(cols[None, :], rr.shape)
    ok = rr >= 0
    img[rr[ok], cc[ok]] = np.clip(colours[ok], 0, 255).astype(np.uint8)
    painted[rr[ok], cc[ok]] = True


def make_torso(frame: np.ndarray, parsing: np.ndarray, bc: np.ndarray) -> np.ndarray:
    """Torso image [H, W, 4] uint8 RGBA: neck + cloth of the frame, in-painted upward under the head.

    Args:
        frame: [H, W, 3] uint8 RGB.
        parsing: [H, W, 3] parsing image (upstream colours).
        bc: [H, W, 3] uint8 static background.
    """
    labels = parsing_to_labels(parsing)
    head, neck, torso = labels == FACE, labels == NECK, labels == CLOTH
    gt = _paste(frame, bc, labels == BACKGROUND)
    img = _paste(gt, bc, head)
    painted = np.zeros(head.shape, bool)

    # cloth columns whose top touches the head: extend the top colour 9 px up, darkening
    cols, tops, _ = _column_tops(torso)
    keep = (tops > 0) & head[np.maximum(tops - 1, 0), cols]
    if keep.any():
        cols, tops = cols[keep], tops[keep]
        dark = 0.98 ** np.arange(TORSO_PAINT, dtype=np.float32)
        _paint_up(img, painted, tops, cols, gt[tops, cols][None].astype(np.float32) * dark[:, None, None])

    # neck: dilate vertically, seed a few px below each top touching the head, paint 53 px up
    neck_mean = np.array(cv2.mean(gt, neck.astype(np.uint8))[:3], np.float32)
    neck = cv2.dilate(neck.astype(np.uint8), np.ones((3, 1), np.uint8), iterations=3) > 0
    cols, tops, counts = _column_tops(neck)
    keep = (tops > 0) & head[np.maximum(tops - 1, 0), cols]
    neck_painted = np.zeros_like(painted)
    if keep.any():
        cols, tops, counts = cols[keep], tops[keep], counts[keep]
        seeds = np.minimum(tops + np.minimum(counts - 1, NECK_PUSH_DOWN), head.shape[0] - 1)
        seed_rgb = gt[seeds, cols].astype(np.float32)  # [M, 3]
        t = (np.arange(NECK_PAINT, dtype=np.float32) / (NECK_PAINT - 1))[:, None, None]
        _paint_up(img, neck_painted, seeds, cols, (1 - t) * seed_rgb[None] + t * neck_mean[None, None])
        blurred = cv2.GaussianBlur(img, (5, 5), 0)
        img[neck_painted] = blurred[neck_painted]
    keep_mask = neck | torso | painted | neck_painted
    rgba = cv2.cvtColor(_paste(np.zeros_like(img), img, keep_mask), cv2.COLOR_RGB2RGBA)
    rgba[..., 3] = keep_mask.astype(np.uint8) * 255
    return rgba


def make_bg_with_hair(frame: np.ndarray, parsing: np.ndarray, teeth: np.ndarray | None,
                      torso_rgba: np.ndarray, bc: np.ndarray) -> np.ndarray:
    """DEGSTalk per-frame background [H, W, 3] uint8 (hair, ears and real background from the frame).

    Args:
        frame: [H, W, 3] uint8 RGB.
        parsing: [H, W, 3] parsing image.
        teeth: [H, W] bool teeth mask (or None).
        torso_rgba: [H, W, 4] uint8 from make_torso.
        bc: [H, W, 3] uint8 static background.
    """
    labels = parsing_to_labels(parsing)
    mouth = labels == MOUTH
    if teeth is not None:
        mouth |= teeth
    region = ((labels == FACE) | mouth).astype(np.uint8)
    # min filter with reflect padding = erosion with a border that repeats the edge
    eroded = cv2.erode(region, np.ones((FACE_ERODE, FACE_ERODE), np.uint8), borderType=cv2.BORDER_REFLECT) > 0
    removed = eroded | mouth | (labels == NECK) | (labels == CLOTH)
    out = _paste(frame, np.zeros_like(frame), removed)
    alpha = torso_rgba[..., 3]
    if ((alpha == 0) | (alpha == 255)).all():  # ours and upstream's torso images: a binary alpha
        out = _paste(out, cv2.cvtColor(torso_rgba, cv2.COLOR_RGBA2RGB), alpha > 0)
    else:
        a = alpha[..., None].astype(np.float32) / 255.0
        out = np.round(torso_rgba[..., :3] * a + out * (1 - a)).astype(np.uint8)
    # upstream fills the pixels left exactly black; tracking the hole keeps genuinely black frame pixels
    return _paste(out, bc, removed & (alpha == 0))


# ----------------------------------------------------------------------------- drivers
def run_background(data_dir: str | Path, force: bool = False, step: int = BC_STEP) -> str:
    """bc.jpg from every `step`-th frame and its parsing. Returns a one-line summary."""
    data_dir = Path(data_dir)
    out = data_dir / "bc.jpg"
    if out.is_file() and not force:
        return "background: bc.jpg already done (skipped)"
    ids = range(0, frame_count(data_dir), step)
    bc = static_background((read_rgb(data_dir / "ori_imgs" / f"{i}.jpg") for i in ids),
                           (load_parsing(data_dir, i) for i in ids))
    write_image(out, bc, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return f"background: bc.jpg from {len(ids)} frames"


def _derived_paths(data_dir: Path, i: int) -> tuple[Path, Path, Path]:
    return data_dir / "gt_imgs" / f"{i}.jpg", data_dir / "torso_imgs" / f"{i}.png", data_dir / "bg" / f"{i}.png"


def _derived_chunk(data_dir: Path, ids: list[int]) -> int:
    from data_utils.teeth import load_teeth_mask

    bc = read_rgb(data_dir / "bc.jpg")
    for i in ids:
        frame, parsing = read_rgb(data_dir / "ori_imgs" / f"{i}.jpg"), load_parsing(data_dir, i)
        gt_path, torso_path, bg_path = _derived_paths(data_dir, i)
        torso = make_torso(frame, parsing, bc)
        write_image(gt_path, make_gt(frame, parsing, bc), [cv2.IMWRITE_JPEG_QUALITY, 95])
        write_image(torso_path, torso)  # cv2's default PNG settings encode fastest here
        write_image(bg_path, make_bg_with_hair(frame, parsing, load_teeth_mask(data_dir, i), torso, bc))
    return len(ids)


def run_derived_images(data_dir: str | Path, force: bool = False, progress: bool = True,
                       workers: int | None = None) -> str:
    """gt_imgs/<i>.jpg, torso_imgs/<i>.png (RGBA) and bg/<i>.png for every frame (resumable)."""
    data_dir = Path(data_dir)
    n = frame_count(data_dir)
    todo = [i for i in range(n) if force or not all(p.is_file() for p in _derived_paths(data_dir, i))]
    if not todo:
        return f"derived images: {n} frames already done (skipped)"
    if not (data_dir / "bc.jpg").is_file():
        raise FileNotFoundError(f"{data_dir / 'bc.jpg'} is missing: run the background step first")
    run_chunked(_derived_chunk, data_dir, todo, workers, desc="gt/torso/bg", progress=progress)
    return f"derived images: {len(todo)} of {n} frames written (gt_imgs/, torso_imgs/, bg/)"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir", type=Path, help="data/<ID> with ori_imgs/, parsing/ and teeth_mask/")
    ap.add_argument("--force", action="store_true", help="recompute files that exist")
    ap.add_argument("--only", choices=["bc", "derived"], default=None, help="run one of the two steps")
    args = ap.parse_args(argv)
    try:
        if args.only in (None, "bc"):
            print(run_background(args.data_dir, force=args.force))
        if args.only in (None, "derived"):
            print(run_derived_images(args.data_dir, force=args.force))
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()

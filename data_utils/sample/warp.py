"""Dense image warps from sparse control points: thin-plate-spline fields and their backward maps.

A *forward field* D [H, W, 2] moves the source pixel p to p + D(p). cv2.remap needs the opposite, the
source of every output pixel, so `backward_map` solves s + D(s) = p by fixed-point iteration
(s <- p - D(s)), which converges for the smooth, small fields used here (|grad D| < 1).

    field = tps_field(points, displacements, (H, W))     # [H, W, 2] float32
    map_xy = backward_map(field)                          # [H, W, 2] float32 source coordinates
    warped = remap(image, map_xy)
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.interpolate import RBFInterpolator


def pixel_grid(height: int, width: int) -> np.ndarray:
    """[H, W, 2] float32 pixel coordinates (x, y)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([xs, ys], axis=-1)


def border_points(height: int, width: int, per_side: int = 8) -> np.ndarray:
    """[4 * per_side, 2] points along the image border (anchors that keep the frame edge still)."""
    t = np.linspace(0.0, 1.0, per_side, endpoint=False)
    w, h = width - 1.0, height - 1.0
    top = np.stack([t * w, np.zeros_like(t)], 1)
    right = np.stack([np.full_like(t, w), t * h], 1)
    bottom = np.stack([w - t * w, np.full_like(t, h)], 1)
    left = np.stack([np.zeros_like(t), h - t * h], 1)
    return np.concatenate([top, right, bottom, left]).astype(np.float32)


def tps_field(points: np.ndarray, displacements: np.ndarray, shape: tuple[int, int], step: int = 4,
              smoothing: float = 0.0) -> np.ndarray:
    """Thin-plate-spline forward field [H, W, 2] through (points [K, 2] -> displacements [K, 2]).

    Evaluated on a grid every `step` pixels and resized (the field is smooth); linear in the
    displacements, so a field for unit displacements can be scaled per frame.
    """
    h, w = shape
    assert points.shape == displacements.shape and points.shape[1] == 2, (points.shape, displacements.shape)
    gh, gw = (h + step - 1) // step + 1, (w + step - 1) // step + 1
    ys, xs = np.mgrid[0:gh, 0:gw].astype(np.float64) * step
    rbf = RBFInterpolator(points.astype(np.float64), displacements.astype(np.float64),
                          kernel="thin_plate_spline", smoothing=smoothing)
    coarse = rbf(np.stack([xs.ravel(), ys.ravel()], 1)).reshape(gh, gw, 2).astype(np.float32)
    # coarse sample (i, j) sits at pixel (j*step, i*step): resize so that pixel (x, y) reads it exactly
    scale = np.float32([[1.0 / step, 0, 0], [0, 1.0 / step, 0]])
    return cv2.warpAffine(coarse, scale, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def sample_field(field: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Bilinear values of `field` [H, W, C] at float pixel positions xy [..., 2] -> [..., C]."""
    flat = xy.reshape(-1, 1, 2).astype(np.float32)
    out = cv2.remap(field, flat[..., 0], flat[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(*xy.shape[:-1], field.shape[-1])


def backward_map(field: np.ndarray, iterations: int = 3, grid: np.ndarray | None = None) -> np.ndarray:
    """[H, W, 2] source coordinates s with s + field(s) = p for every output pixel p (fixed point)."""
    grid = pixel_grid(*field.shape[:2]) if grid is None else grid
    src = grid - field
    for _ in range(iterations - 1):
        moved = cv2.remap(field, src[..., 0], src[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        src = grid - moved
    return src


def remap(image: np.ndarray, map_xy: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """image sampled at map_xy [H, W, 2] (edges replicated)."""
    return cv2.remap(image, map_xy[..., 0], map_xy[..., 1], interpolation, borderMode=cv2.BORDER_REPLICATE)

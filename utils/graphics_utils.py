"""Camera maths: focal <-> field of view, intrinsics, transforms.json c2w -> world-to-camera (OpenCV)."""
from __future__ import annotations

import math

import numpy as np
from torch import Tensor


def focal_to_fov(focal: float, pixels: float) -> float:
    """Full field of view in radians of a pinhole with this focal length (pixels) over `pixels`."""
    return 2.0 * math.atan(pixels / (2.0 * focal))


def fov_to_focal(fov: float, pixels: float) -> float:
    return pixels / (2.0 * math.tan(fov / 2.0))


def intrinsics(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] as float32."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float32)


def c2w_opengl_to_w2c_opencv(c2w: np.ndarray) -> np.ndarray:
    """transforms.json camera-to-world (OpenGL axes: y up, z back) -> world-to-camera (OpenCV: y down, z forward).

    Flipping the y and z columns of c2w changes the camera axes; inverting gives w2c.
    """
    c2w = np.asarray(c2w, dtype=np.float64).copy()
    c2w[:3, 1:3] *= -1.0
    return np.linalg.inv(c2w).astype(np.float32)


def scale_intrinsics(K: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Intrinsics of the same camera after resizing the image by (sx, sy) (pixel-centre convention)."""
    K = K.copy()
    K[0, :] *= sx
    K[1, :] *= sy
    return K


def project_points(points: Tensor, viewmat: Tensor, K: Tensor) -> Tensor:
    """World points [..., 3] -> pixel coordinates [..., 2] (no distortion, OpenCV convention)."""
    cam = points @ viewmat[:3, :3].T + viewmat[:3, 3]
    uv = cam @ K.T
    return uv[..., :2] / uv[..., 2:3]


def camera_center(viewmat: np.ndarray) -> np.ndarray:
    """World position of a camera from its world-to-camera matrix."""
    R, t = viewmat[:3, :3], viewmat[:3, 3]
    return -R.T @ t


def scene_extent(viewmats: list[np.ndarray]) -> float:
    """1.1 x the largest distance of a camera centre from their mean (3DGS's cameras_extent)."""
    centers = np.stack([camera_center(v) for v in viewmats])
    radius = np.linalg.norm(centers - centers.mean(0), axis=1).max()
    return float(1.1 * max(radius, 1e-6))

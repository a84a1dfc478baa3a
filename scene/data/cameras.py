"""Cameras of a subject: `transforms_{train,val}.json` -> batched OpenCV world-to-camera matrices and intrinsics.

The transforms files hold, per frame, a camera-to-world matrix in OpenGL axes (y up, z back) and one
shared pinhole (`focal_len`, `cx`, `cy`, in pixels of the native frames). We keep everything batched,
in gsplat's names:

    viewmats   [N, 4, 4]   world-to-camera, OpenCV axes (x right, y down, z forward)
    Ks         [N, 3, 3]   intrinsics at the training resolution
    width, height          training image size in pixels

Unlike upstream (which assumes a centred principal point) the json's `cx`, `cy` are used.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utils.graphics_utils import c2w_opengl_to_w2c_opencv, intrinsics, scale_intrinsics, scene_extent

SPLIT_FILES = {"train": "transforms_train.json", "val": "transforms_val.json"}
ZNEAR, ZFAR = 0.01, 100.0  # upstream's clipping planes


@dataclass(frozen=True)
class Transforms:
    """The content of one transforms json, validated."""

    focal: float
    cx: float
    cy: float
    img_ids: np.ndarray  # [N] int64
    aud_ids: np.ndarray  # [N] int64
    c2w: np.ndarray  # [N, 4, 4] float64, OpenGL axes


@dataclass(frozen=True)
class CameraSet:
    """All cameras of one split at one resolution (numpy; the dataset moves them to a device)."""

    viewmats: np.ndarray  # [N, 4, 4] float32 world-to-camera (OpenCV)
    Ks: np.ndarray  # [N, 3, 3] float32
    width: int
    height: int
    extent: float  # 3DGS cameras_extent: 1.1 x max distance of a camera centre from their mean

    def __len__(self) -> int:
        return self.viewmats.shape[0]

    @property
    def fovx(self) -> float:
        return 2.0 * math.atan(self.width / (2.0 * float(self.Ks[0, 0, 0])))

    @property
    def fovy(self) -> float:
        return 2.0 * math.atan(self.height / (2.0 * float(self.Ks[0, 1, 1])))


def read_transforms(path: str | Path) -> Transforms:
    """Parse a transforms json; raises ValueError naming the file when a field is missing or malformed."""
    path = Path(path)
    try:
        meta = json.loads(path.read_text())
        focal = float(meta["focal_len"])
        frames = meta["frames"]
        img_ids = np.array([int(f["img_id"]) for f in frames], dtype=np.int64)
        aud_ids = np.array([int(f.get("aud_id", f["img_id"])) for f in frames], dtype=np.int64)
        c2w = np.array([f["transform_matrix"] for f in frames], dtype=np.float64).reshape(-1, 4, 4)
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as e:
        raise ValueError(f"Malformed transforms file {path}: {type(e).__name__}: {e}") from e
    if len(frames) == 0:
        raise ValueError(f"Transforms file {path} lists no frames")
    # Missing cx/cy: upstream's centred assumption; the caller passes the native size to resolve it.
    cx = float(meta["cx"]) if "cx" in meta else float("nan")
    cy = float(meta["cy"]) if "cy" in meta else float("nan")
    return Transforms(focal=focal, cx=cx, cy=cy, img_ids=img_ids, aud_ids=aud_ids, c2w=c2w)


def training_size(native_wh: tuple[int, int], resolution: int) -> tuple[int, int]:
    """(W, H) at the training resolution: -1 keeps the native size, N > 0 makes the long side N pixels."""
    w, h = native_wh
    if resolution is None or resolution <= 0:
        return int(w), int(h)
    scale = resolution / max(w, h)
    return max(1, int(round(w * scale))), max(1, int(round(h * scale)))


def make_cameras(tf: Transforms, native_wh: tuple[int, int], size_wh: tuple[int, int]) -> CameraSet:
    """Batched cameras of a split, intrinsics scaled from the native frame size to `size_wh`.

    Args:
        tf: parsed transforms.
        native_wh: (W, H) of the frames the focal length and principal point refer to.
        size_wh: (W, H) of the training images.
    """
    n = tf.c2w.shape[0]
    w0, h0 = native_wh
    cx = tf.cx if math.isfinite(tf.cx) else w0 / 2.0
    cy = tf.cy if math.isfinite(tf.cy) else h0 / 2.0
    K = scale_intrinsics(intrinsics(tf.focal, tf.focal, cx, cy), size_wh[0] / w0, size_wh[1] / h0)
    viewmats = np.stack([c2w_opengl_to_w2c_opencv(m) for m in tf.c2w]).astype(np.float32)  # [N, 4, 4]
    Ks = np.repeat(K[None], n, axis=0).astype(np.float32)  # [N, 3, 3]
    return CameraSet(viewmats=viewmats, Ks=Ks, width=int(size_wh[0]), height=int(size_wh[1]),
                     extent=scene_extent(list(viewmats)))

"""The still portrait the sample subject is animated from: a real photograph that an installed wheel ships.

matplotlib (a dependency of mediapipe, pinned in requirements.txt) ships `grace_hopper.jpg` in its
sample data: the official U.S. Navy portrait of Rear Admiral Grace Hopper (1984, public domain).
We crop it square around the face, find its 478 MediaPipe face-mesh landmarks and its person mask,
and fill the person's area of the background from its surroundings (a clean plate to composite
the moving head over).

    portrait = load_portrait(size=512)   # Portrait(rgb [H, W, 3] uint8, points [478, 2], person [H, W], plate)
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

PORTRAIT_NAME = "grace_hopper.jpg"
CROP_SCALE = 2.1  # crop side = this many face heights (forehead top to chin), centred on the face


class PortraitError(RuntimeError):
    """The portrait file is missing or MediaPipe finds no face in it."""


@dataclass
class Portrait:
    rgb: np.ndarray       # [H, W, 3] uint8, the cropped photograph
    points: np.ndarray    # [478, 2] float32 face-mesh landmarks in pixels (x, y)
    person: np.ndarray    # [H, W] float32 in [0, 1], the person's soft mask
    plate: np.ndarray     # [H, W, 3] uint8, the background with the person filled in


def portrait_path() -> Path:
    """Path of the shipped photograph (raises PortraitError naming the package when absent)."""
    try:
        import matplotlib
    except ImportError as e:
        raise PortraitError("the sample portrait ships with matplotlib: pip install -r requirements.txt") from e
    path = Path(matplotlib.get_data_path()) / "sample_data" / PORTRAIT_NAME
    if not path.is_file():
        raise PortraitError(f"sample portrait not found: {path} (matplotlib {matplotlib.__version__} without "
                            "its sample data; install the pinned matplotlib from requirements.txt)")
    return path


def detect_points(rgb: np.ndarray) -> np.ndarray | None:
    """[478, 2] landmarks of the largest face in one still image, or None (MediaPipe, static mode)."""
    import mediapipe as mp

    h, w = rgb.shape[:2]
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                                         min_detection_confidence=0.5) as mesh:
        res = mesh.process(np.ascontiguousarray(rgb))
    if not res.multi_face_landmarks:
        return None
    return np.array([(p.x * w, p.y * h) for p in res.multi_face_landmarks[0].landmark], np.float32)


def person_mask(rgb: np.ndarray) -> np.ndarray:
    """[H, W] float32 soft person mask (MediaPipe selfie segmentation, general model)."""
    import mediapipe as mp

    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg:
        mask = seg.process(np.ascontiguousarray(rgb)).segmentation_mask
    return np.clip(mask.astype(np.float32), 0.0, 1.0)


def clean_plate(rgb: np.ndarray, person: np.ndarray, dilate_px: int) -> np.ndarray:
    """Background with the (dilated) person region filled from its surroundings (Telea inpainting)."""
    hole = (person > 0.2).astype(np.uint8)
    hole = cv2.dilate(hole, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate_px + 1,) * 2))
    return cv2.inpaint(rgb, hole, max(3, dilate_px), cv2.INPAINT_TELEA)


def square_crop_box(points: np.ndarray, width: int, height: int, scale: float = CROP_SCALE) -> tuple[int, int, int]:
    """(x0, y0, side) of a square around the face, `scale` face heights wide, kept inside the image."""
    from data_utils.mesh_topology import CHIN, FOREHEAD_TOP

    face_h = float(np.linalg.norm(points[CHIN] - points[FOREHEAD_TOP]))
    cx, cy = points[:, 0].mean(), (points[CHIN, 1] + points[FOREHEAD_TOP, 1]) / 2
    side = int(min(round(scale * face_h), width, height))
    x0 = int(np.clip(round(cx - side / 2), 0, width - side))
    y0 = int(np.clip(round(cy - side * 0.47), 0, height - side))
    return x0, y0, side


def load_portrait(size: int = 512) -> Portrait:
    """The shipped photograph cropped around the face and resized to size x size, with its landmarks."""
    path = portrait_path()
    bgr = cv2.imread(str(path))
    if bgr is None:
        raise PortraitError(f"cannot read the sample portrait {path}")
    full = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    points = detect_points(full)
    if points is None:
        raise PortraitError(f"MediaPipe finds no face in {path}")
    x0, y0, side = square_crop_box(points, full.shape[1], full.shape[0])
    interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    rgb = cv2.resize(full[y0:y0 + side, x0:x0 + side], (size, size), interpolation=interp)
    points = detect_points(rgb)  # again on the crop: landmarks at the working resolution
    if points is None:
        raise PortraitError(f"MediaPipe finds no face in the {size}x{size} crop of {path}")
    person = person_mask(rgb)
    plate = clean_plate(rgb, person, dilate_px=max(2, size // 64))
    return Portrait(rgb=rgb, points=points, person=person, plate=plate)

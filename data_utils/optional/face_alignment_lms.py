"""Optional paper-faithful `.lms`: 68 points from the `face_alignment` FAN 2-D model (as upstream).

The package is not a dependency: `pip install face-alignment` (it downloads its FAN and detector
weights on first use into the torch hub cache; copy that cache to offline machines). The MediaPipe
landmarks (478 points, needed by head pose, parsing and expression) are still computed; FAN only
replaces the `ori_imgs/<i>.lms` files the trainer reads for the lips box and mouth opening.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data_utils.frames import PreprocessError, frame_count, frame_path, read_frame
from utils.io_utils import load_json, save_json, save_text

log = logging.getLogger(__name__)


def make_fan(device: str = "cpu"):
    """face_alignment.FaceAlignment for 2-D landmarks, or a one-line error saying how to get it."""
    try:
        import face_alignment
    except ImportError as e:
        raise PreprocessError("--landmarks face_alignment needs the optional package: pip install face-alignment "
                              "(its FAN weights download to the torch hub cache on first use)") from e
    kind = getattr(face_alignment.LandmarksType, "TWO_D", None) or getattr(face_alignment.LandmarksType, "_2D")
    return face_alignment.FaceAlignment(kind, flip_input=False, device=device)


def largest_face(preds: list[np.ndarray] | None) -> np.ndarray | None:
    """Pick the face with the largest bounding box from FAN's list of [68, 2+] arrays."""
    if not preds:
        return None
    areas = [np.ptp(p[:, 0]) * np.ptp(p[:, 1]) for p in preds]
    return np.asarray(preds[int(np.argmax(areas))], np.float32)[:, :2]


def run_face_alignment(data_dir: Path, force: bool = False, progress: bool = True, device: str = "cpu") -> str:
    """MediaPipe landmarks first (478 points for the other steps), then FAN .lms for every frame.

    A frame where FAN finds no face keeps its MediaPipe-derived .lms (logged).
    """
    from data_utils.landmarks import run_landmarks

    data_dir = Path(data_dir)
    mp_summary = run_landmarks(data_dir, force=force, detector="auto", progress=progress)
    meta_path = data_dir / "landmarks.json"
    meta = load_json(meta_path)
    if not force and meta.get("lms_source") == "face_alignment":
        return f"{mp_summary}; .lms from face_alignment already (skipped)"
    fan = make_fan(device)
    n = frame_count(data_dir)
    kept = []
    for i in tqdm(range(n), desc="landmarks (face_alignment)", unit="frame", disable=not progress):
        pts = largest_face(fan.get_landmarks(read_frame(data_dir, i)))
        if pts is None or pts.shape != (68, 2):
            kept.append(i)
            continue
        save_text(frame_path(data_dir, i, "lms"), "".join(f"{x:f} {y:f}\n" for x, y in pts))
    if kept:
        log.warning("face_alignment found no face in %d frames (first %d): kept the MediaPipe .lms there",
                    len(kept), kept[0])
    meta.update(lms_source="face_alignment", lms_fallback_frames=kept)
    save_json(meta_path, meta)
    return f"{mp_summary}; .lms from face_alignment FAN ({n - len(kept)} of {n} frames)"

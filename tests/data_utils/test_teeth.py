"""Teeth masks: a painted mouth with known teeth, relative (lighting-proof) thresholds, files, real frames."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from data_utils import teeth as T
from data_utils.mesh_topology import LIPS_INNER, LIPS_OUTER
from tests.conftest import shared_file
from utils.video_io import iter_frames

SKIN, LIPS, CAVITY, TEETH = (200, 150, 125), (170, 80, 85), (60, 20, 25), (235, 228, 222)


def _ellipse(loop_len: int, cx: float, cy: float, a: float, b: float) -> np.ndarray:
    """Points of a lip loop: left corner first, then along the upper lip, the right corner at the middle."""
    theta = np.pi - np.arange(loop_len) * 2 * np.pi / loop_len
    return np.stack([cx + a * np.cos(theta), cy - b * np.sin(theta)], -1)


def mouth_scene(H: int = 96, W: int = 128, open_px: float = 14.0, teeth: bool = True):
    """Skin with a lip ring, dark mouth cavity and (optionally) a band of teeth under the upper lip.
    Returns rgb [H, W, 3], landmarks [478, 3] (only the lip loops set) and the true teeth mask."""
    lms = np.zeros((478, 3), np.float32)
    cx, cy = W / 2, H / 2
    lms[LIPS_OUTER, :2] = _ellipse(len(LIPS_OUTER), cx, cy, 44, open_px + 12)
    lms[LIPS_INNER, :2] = _ellipse(len(LIPS_INNER), cx, cy, 34, open_px)
    rgb = np.full((H, W, 3), SKIN, np.uint8)
    cv2.fillPoly(rgb, [np.round(lms[LIPS_OUTER, :2]).astype(np.int32)], LIPS)
    inner = np.zeros((H, W), np.uint8)
    cv2.fillPoly(inner, [np.round(lms[LIPS_INNER, :2]).astype(np.int32)], 1)
    rgb[inner > 0] = CAVITY
    truth = np.zeros((H, W), bool)
    if teeth:
        band = np.zeros((H, W), bool)
        band[int(cy - open_px):int(cy - open_px / 4), int(cx - 22):int(cx + 22)] = True
        truth = band & (inner > 0)
        rgb[truth] = TEETH
    return rgb, lms, truth


def _iou(a, b) -> float:
    return float((a & b).sum()) / max(float((a | b).sum()), 1.0)


def test_painted_teeth_found():
    rgb, lms, truth = mouth_scene()
    mask = T.teeth_mask(rgb, lms)
    assert mask.dtype == bool and mask.shape == truth.shape
    assert truth.sum() > 100 and _iou(mask, truth) > 0.9


def test_no_teeth_in_dark_or_closed_mouth():
    rgb, lms, _ = mouth_scene(teeth=False)
    assert not T.teeth_mask(rgb, lms).any()
    rgb, lms, _ = mouth_scene(open_px=0.4, teeth=False)  # closed: the inner loop is a line
    assert not T.teeth_mask(rgb, lms).any()


def test_white_outside_the_inner_lips_is_not_teeth():
    rgb, lms, truth = mouth_scene()
    rgb[:10, :] = TEETH      # a white collar strip far from the mouth
    rgb[66:72, 50:80] = TEETH  # white on the lower lip (inner loop ends at row 62)
    mask = T.teeth_mask(rgb, lms)
    inner = np.zeros(mask.shape, np.uint8)
    cv2.fillPoly(inner, [np.round(lms[LIPS_INNER, :2]).astype(np.int32)], 1)
    assert not (mask & ~(cv2.dilate(inner, np.ones((3, 3), np.uint8)) > 0)).any()
    assert _iou(mask, truth) > 0.9


def test_thresholds_follow_the_lighting():
    """Teeth are found against the frame's own lips: a darker exposure finds the same teeth; a mid-gray
    band (brighter than the cavity, not than the lips' step to white) or a bright red one are not teeth."""
    rgb, lms, truth = mouth_scene()
    dark = (rgb.astype(np.float32) * 0.55).astype(np.uint8)
    assert _iou(T.teeth_mask(dark, lms), truth) > 0.9
    gray = rgb.copy()
    gray[truth] = (120, 110, 110)
    assert not T.teeth_mask(gray, lms).any()
    tongue = rgb.copy()  # bright but more saturated than the lips: a lit tongue, not teeth
    tongue[truth] = (255, 120, 110)
    assert not T.teeth_mask(tongue, lms).any()


def test_mask_near_frame_border_and_outside():
    rgb, lms, truth = mouth_scene()
    shifted = lms.copy()
    shifted[:, 0] -= 60  # half the mouth out of the frame
    T.teeth_mask(rgb, shifted)  # no crash
    gone = lms.copy()
    gone[:, :2] -= 1000
    assert not T.teeth_mask(rgb, gone).any()


# ----------------------------------------------------------------------------- files
def _data_dir(tmp_path, n=3):
    (tmp_path / "ori_imgs").mkdir()
    for i in range(n):
        rgb, lms, _ = mouth_scene(teeth=i != 1)
        cv2.imwrite(str(tmp_path / "ori_imgs" / f"{i}.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 98])
        np.save(tmp_path / "ori_imgs" / f"{i}.npy", lms)
    return tmp_path


def test_run_teeth_npy_upstream_layout_and_resume(tmp_path):
    d = _data_dir(tmp_path)
    msg = T.run_teeth(d, progress=False)
    assert "3 of 3" in msg and "teeth seen in 2" in msg
    m = np.load(d / "teeth_mask" / "0.npy")  # what upstream's reader does
    assert m.dtype == bool and m.shape == (96, 128) and m.sum() > 100
    assert not np.load(d / "teeth_mask" / "1.npy").any()
    mtime = (d / "teeth_mask" / "0.npy").stat().st_mtime_ns
    assert "skipped" in T.run_teeth(d, progress=False)
    assert (d / "teeth_mask" / "0.npy").stat().st_mtime_ns == mtime
    assert "3 of 3" in T.run_teeth(d, force=True, progress=False)


def test_run_teeth_png_compact_round_trip(tmp_path):
    d = _data_dir(tmp_path)
    T.run_teeth(d, progress=False)
    ref = [T.load_teeth_mask(d, i) for i in range(3)]
    T.run_teeth(d, force=True, fmt="png", progress=False)
    assert not list((d / "teeth_mask").glob("*.npy"))  # one format per frame
    for i in range(3):
        assert (d / "teeth_mask" / f"{i}.png").stat().st_size < 2000
        np.testing.assert_array_equal(T.load_teeth_mask(d, i), ref[i])
    with pytest.raises(FileNotFoundError, match=r"teeth_mask.*7\.npy"):
        T.load_teeth_mask(d, 7)
    with pytest.raises(ValueError, match="format"):
        T.run_teeth(d, fmt="bmp")


@pytest.mark.slow
def test_real_open_mouth_has_teeth_closed_has_none():
    """german20s: frame 381 shows the upper teeth, frame 393 a closed mouth (checked by eye)."""
    import mediapipe as mp

    path = shared_file("video/german20s.mp4")
    frames = {}
    for i, rgb in enumerate(iter_frames(path)):
        if i in (381, 393):
            frames[i] = rgb.copy()
        if i >= 393:
            break
    counts = {}
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True) as fm:
        for i, rgb in frames.items():
            h, w = rgb.shape[:2]
            res = fm.process(rgb).multi_face_landmarks[0].landmark
            lms = np.array([[p.x * w, p.y * h, p.z * w] for p in res], np.float32)
            counts[i] = int(T.teeth_mask(rgb, lms).sum())
    assert counts[381] > 60 and counts[393] < 10, counts

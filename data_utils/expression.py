"""Task 7: expression and blink: `au.csv` (OpenFace-style) and `3dmm.pt` (SMIRK's keys and shapes).

au.csv: columns `frame, face_id, timestamp, confidence, success, AU01_r, AU04_r, AU05_r, AU06_r, AU07_r,
AU25_r, AU45_r` with OpenFace's leading spaces (readers that strip them work too), frame 1-based as
OpenFace. Intensities on OpenFace's 0..5 scale from pose-normalised landmarks (each frame's 3-D
landmarks aligned to the subject's canonical face on the rigid points), each normalised per subject
(its median, or open-eye / closed-lip reference, is 0; its high percentile is 3):
AU45 eye closure from the eye aspect ratio, AU25 inner-lip gap, AU01 inner-brow height, AU04 brow
lowering and squeezing, AU05 eye opening beyond the median, AU06 cheek rise toward the lower lid,
AU07 lower-lid rise.

3dmm.pt: expression_params [N,50], eyelid_params [N,2], jaw_params [N,3], pose_params [N,3], cam [N,3],
shape_params [N,300] (float32), from MediaPipe's 52 blendshapes when the landmark step had the
FaceLandmarker (.task): eyeBlink{Left,Right} -> eyelids; jaw = [jawOpen*0.5 rad, 0.2*(jawLeft-jawRight),
0.2*jawForward]; the other 45 (minus _neutral) -> expression, zero-padded to 50. Without blendshapes:
a per-subject PCA of the pose-normalised landmarks (whitened scores, 50 components), eyelids from
eye closure, jaw from the lip gap and chin offset. pose_params = head rotation vector (from
track_params.pt), cam = weak-perspective [scale, tx, ty] from the landmarks, shape_params = 0.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from data_utils.frames import FPS, frame_count, frame_size
from data_utils.landmarks import load_landmarks
from data_utils.mesh_topology import (CHEEKS, CHIN, EYE_CORNERS, LEFT_BROW_UPPER, LEFT_EYE_EAR, LIP_INNER_MID,
                                      NOSE_TIP, RIGHT_BROW_UPPER, RIGHT_EYE_EAR, RIGID)
from data_utils.pose_math import umeyama
from utils.io_utils import load_checkpoint, load_json, save_json, save_text, save_torch

log = logging.getLogger(__name__)

AU_NAMES = ["AU01_r", "AU04_r", "AU05_r", "AU06_r", "AU07_r", "AU25_r", "AU45_r"]
META_COLUMNS = ["frame", "face_id", "timestamp", "confidence", "success"]
BLENDSHAPE_NAMES = [
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "cheekPuff",
    "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight",
    "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight",
    "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight",
    "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight", "mouthPucker",
    "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft",
    "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight"]
_BS = {n: i for i, n in enumerate(BLENDSHAPE_NAMES)}
EYELID_SHAPES = ["eyeBlinkLeft", "eyeBlinkRight"]
JAW_SHAPES = ["jawOpen", "jawLeft", "jawRight", "jawForward"]
EXPRESSION_SHAPES = [n for n in BLENDSHAPE_NAMES if n not in ["_neutral", *EYELID_SHAPES, *JAW_SHAPES]]  # 45
UPPER_FACE_SHAPES = [n for n in EXPRESSION_SHAPES if n.startswith(("brow", "eye"))]  # 17: nothing of the mouth
N_EXP, N_SHAPE = 50, 300
JAW_OPEN_RAD = 0.5      # jawOpen = 1 -> 0.5 rad, about FLAME's widest jaw opening
JAW_SIDE = 0.2          # SMIRK clamps jaw[1:3] to +-0.2


# ----------------------------------------------------------------------------- pose normalisation
def normalise_pose(points: np.ndarray, canonical: np.ndarray, rigid: list[int] = RIGID) -> np.ndarray:
    """Align each frame's 3-D landmarks to the canonical face (similarity fit on the rigid points).

    Args:
        points: [N, 478, 3] pixels (x right, y down, z away; z scaled like x).
        canonical: [478, 3] metres in world axes (x right, y up, z toward the camera).
    Returns:
        [N, 478, 3] metres in the canonical frame: head motion removed, expression kept.
    """
    out = np.empty(points.shape, np.float64)
    for i, p in enumerate(points.astype(np.float64) * np.array([1.0, -1.0, -1.0])):
        s, R, t = umeyama(p[rigid], canonical[rigid])
        out[i] = s * p @ R.T + t
    return out


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a - b, axis=-1)


def eye_aspect_ratio(aligned: np.ndarray) -> np.ndarray:
    """[N, 2] (right, left) mean lid gap over eye width; ~0.25-0.35 open, ~0.05 closed."""
    ears = []
    for outer, inner, upper, lower in (RIGHT_EYE_EAR, LEFT_EYE_EAR):
        gap = _dist(aligned[:, upper], aligned[:, lower]).mean(1)
        ears.append(gap / _dist(aligned[:, outer], aligned[:, inner]))
    return np.stack(ears, 1)


def _intensity(x: np.ndarray, lo_q: float = 50, hi_q: float = 99) -> np.ndarray:
    """Per-subject 0..5 scale: the lo_q percentile maps to 0, the hi_q percentile to 3."""
    lo, hi = np.percentile(x, [lo_q, hi_q])
    return np.clip(3.0 * (x - lo) / max(hi - lo, 1e-9), 0.0, 5.0)


def eye_closure(ear: np.ndarray) -> np.ndarray:
    """[N, 2] closure in [0, 1] from eye aspect ratios: 0 at the subject's open-eye level (75th
    percentile), 1 at a quarter of it."""
    open_ = np.percentile(ear, 75, axis=0)
    return np.clip((open_ - ear) / (0.75 * open_), 0.0, 1.0)


def action_units(aligned: np.ndarray) -> np.ndarray:
    """[N, 7] AU intensities (AU_NAMES order) from pose-normalised landmarks [N, 478, 3]."""
    y = aligned[..., 1]                                        # up
    ear = eye_aspect_ratio(aligned)
    r_in, l_in = EYE_CORNERS[1], EYE_CORNERS[2]
    inner_brow = ((y[:, RIGHT_BROW_UPPER[-1]] - y[:, r_in]) + (y[:, LEFT_BROW_UPPER[-1]] - y[:, l_in])) / 2
    corners_y = y[:, EYE_CORNERS].mean(1)
    brow_h = (y[:, RIGHT_BROW_UPPER].mean(1) + y[:, LEFT_BROW_UPPER].mean(1)) / 2 - corners_y
    squeeze = _dist(aligned[:, RIGHT_BROW_UPPER[-1]], aligned[:, LEFT_BROW_UPPER[-1]])
    lower_r, lower_l = RIGHT_EYE_EAR[3][1], LEFT_EYE_EAR[3][1]
    cheek = (_dist(aligned[:, CHEEKS[0]], aligned[:, lower_r]) + _dist(aligned[:, CHEEKS[1]], aligned[:, lower_l])) / 2
    lid = ((y[:, lower_r] - y[:, [RIGHT_EYE_EAR[0], RIGHT_EYE_EAR[1]]].mean(1))
           + (y[:, lower_l] - y[:, [LEFT_EYE_EAR[0], LEFT_EYE_EAR[1]]].mean(1))) / 2
    gap = _dist(aligned[:, LIP_INNER_MID[0]], aligned[:, LIP_INNER_MID[1]])
    au = np.stack([
        _intensity(inner_brow),                                          # AU01 inner brow raiser
        0.5 * (_intensity(-brow_h) + _intensity(-squeeze)),              # AU04 brow lowerer
        _intensity(ear.mean(1)),                                         # AU05 upper lid raiser
        _intensity(-cheek),                                              # AU06 cheek raiser
        _intensity(lid),                                                 # AU07 lid tightener
        _intensity(gap, 5, 95),                                          # AU25 lips part
        3.0 * eye_closure(ear).mean(1),                                  # AU45 blink
    ], 1)
    return au.astype(np.float32)


def format_au_csv(au: np.ndarray, success: np.ndarray, fps: float = FPS) -> str:
    """OpenFace-style CSV text: ', '-separated, column names after the first with a leading space."""
    assert au.ndim == 2 and au.shape[1] == len(AU_NAMES), au.shape
    lines = [", ".join(META_COLUMNS + AU_NAMES)]
    for i, (row, ok) in enumerate(zip(au, success)):
        vals = [f"{i + 1}", "0", f"{i / fps:.3f}", "0.98" if ok else "0.50", "1" if ok else "0"]
        lines.append(", ".join(vals + [f"{v:.2f}" for v in row]))
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- 3dmm.pt
def codes_from_blendshapes(bs: np.ndarray) -> dict[str, np.ndarray]:
    """[N, 52] MediaPipe blendshape scores -> expression [N, 50], eyelid [N, 2], jaw [N, 3]."""
    assert bs.ndim == 2 and bs.shape[1] == len(BLENDSHAPE_NAMES), bs.shape
    n = len(bs)
    exp = np.zeros((n, N_EXP), np.float32)
    exp[:, :len(EXPRESSION_SHAPES)] = bs[:, [_BS[k] for k in EXPRESSION_SHAPES]]
    eyelid = bs[:, [_BS[k] for k in EYELID_SHAPES]]
    jaw = np.stack([JAW_OPEN_RAD * bs[:, _BS["jawOpen"]], JAW_SIDE * (bs[:, _BS["jawLeft"]] - bs[:, _BS["jawRight"]]),
                    JAW_SIDE * bs[:, _BS["jawForward"]]], 1)
    return {"expression_params": exp, "eyelid_params": eyelid, "jaw_params": jaw}


def codes_from_landmarks(aligned: np.ndarray, n_components: int = N_EXP) -> dict[str, np.ndarray]:
    """Fallback without blendshapes: whitened per-subject PCA scores of the pose-normalised landmarks."""
    n = len(aligned)
    flat = aligned.reshape(n, -1)
    flat = flat - flat.mean(0)
    U, S, _ = np.linalg.svd(flat, full_matrices=False)
    k = min(n_components, len(S))
    std = S[:k] / np.sqrt(max(n - 1, 1))
    exp = np.zeros((n, n_components), np.float32)
    keep = std > 1e-6 * max(std[0], 1e-12)
    exp[:, :k][:, keep] = (U[:, :k] * S[:k] / np.where(std > 0, std, 1))[:, keep]   # unit variance scores
    eyelid = eye_closure(eye_aspect_ratio(aligned))[:, ::-1]  # (left, right) as the blendshape path
    gap = _dist(aligned[:, LIP_INNER_MID[0]], aligned[:, LIP_INNER_MID[1]])
    lo, hi = np.percentile(gap, [5, 99])
    jaw_len = np.median(_dist(aligned[:, CHIN], aligned[:, NOSE_TIP]))
    side = np.arctan2(aligned[:, CHIN, 0] - aligned[:, NOSE_TIP, 0], jaw_len)
    jaw = np.stack([JAW_OPEN_RAD * np.clip((gap - lo) / max(hi - lo, 1e-9), 0, 1),
                    np.clip(side - np.median(side), -JAW_SIDE, JAW_SIDE), np.zeros(n)], 1)
    return {"expression_params": exp, "eyelid_params": eyelid.astype(np.float32), "jaw_params": jaw}


def weak_perspective_cam(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """[N, 3] (scale, tx, ty): face size over the frame size and the face centre in [-1, 1] coordinates."""
    xy = points[..., :2]
    center = xy.mean(1)
    size = np.ptp(xy, axis=1).max(1)
    return np.stack([size / max(width, height), 2 * center[:, 0] / width - 1, 2 * center[:, 1] / height - 1], 1)


# ----------------------------------------------------------------------------- step
def expression_complete(data_dir: Path, n: int) -> bool:
    d = Path(data_dir)
    if not ((d / "au.csv").is_file() and (d / "3dmm.pt").is_file() and (d / "expression.json").is_file()):
        return False
    return load_json(d / "expression.json").get("n_frames") == n


def run_expression(data_dir: Path, force: bool = False, source: str = "auto", openface_csv: Path | None = None,
                   progress: bool = True) -> str:
    """Write au.csv and 3dmm.pt.

    Args:
        source: "auto" (blendshapes when blendshapes.npy exists, else landmark PCA), "blendshapes" or "pca".
        openface_csv: import this OpenFace FeatureExtraction CSV as au.csv instead of computing AUs.
    """
    import torch
    from scipy.spatial.transform import Rotation

    from data_utils.head_pose import build_canonical
    from data_utils.pose_math import euler_to_rot

    data_dir = Path(data_dir)
    n = frame_count(data_dir)
    if not force and expression_complete(data_dir, n):
        return f"expression: au.csv and 3dmm.pt already hold {n} frames (skipped)"
    width, height = frame_size(data_dir)
    points = load_landmarks(data_dir)
    track = data_dir / "track_params.pt"
    params = load_checkpoint(track) if track.is_file() else None
    has_canonical = params is not None and "canonical" in params   # the BFM tracker writes none
    canonical = params["canonical"].double().numpy() if has_canonical else build_canonical(points)
    aligned = normalise_pose(points, canonical)
    lm_meta = load_json(data_dir / "landmarks.json") if (data_dir / "landmarks.json").is_file() else {}
    success = np.ones(n, bool)
    success[lm_meta.get("interpolated_frames", [])] = False
    if openface_csv is not None:
        from data_utils.optional.openface_au import import_openface_csv

        au_note = import_openface_csv(openface_csv, data_dir / "au.csv", n_frames=n)
    else:
        au = action_units(aligned)
        save_text(data_dir / "au.csv", format_au_csv(au, success))
        au_note = f"AU25 p95 {np.percentile(au[:, 5], 95):.2f}, blinks (AU45>1.5) {int((au[:, 6] > 1.5).sum())} frames"
    bs_path = data_dir / "blendshapes.npy"
    if source == "auto":
        source = "blendshapes" if bs_path.is_file() else "pca"
    if source == "blendshapes":
        codes = codes_from_blendshapes(np.load(bs_path))
    elif source == "pca":
        codes = codes_from_landmarks(aligned)
    else:
        raise ValueError(f"unknown expression source {source!r} (auto, blendshapes, pca)")
    pose = np.zeros((n, 3))
    if params is not None:
        pose = Rotation.from_matrix(euler_to_rot(params["euler"].double().numpy())).as_rotvec()
    f32 = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
    out = {k: f32(v) for k, v in codes.items()}
    out.update(pose_params=f32(pose), cam=f32(weak_perspective_cam(points, width, height)),
               shape_params=torch.zeros(n, N_SHAPE))
    save_torch(data_dir / "3dmm.pt", out)
    save_json(data_dir / "expression.json", {"n_frames": n, "source": source,
                                             "au_source": "openface" if openface_csv else "landmarks"})
    return f"expression: au.csv ({au_note}); 3dmm.pt from {source} ({n} frames)"

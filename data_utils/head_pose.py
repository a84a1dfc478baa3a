"""Task 4: head pose and cameras from the 478 landmarks: track_params.pt and transforms_{train,val}.json.

Method (all from the subject's own landmarks, nothing downloaded):
1. Canonical face: generalized Procrustes (similarity fits on the rigid points, mesh_topology.RIGID)
   over the frames' MediaPipe 3-D landmarks, oriented with the eye line along +X and the mean
   viewing direction of the video along +Z (so the average pose is near identity), centred on the mesh centroid (the world origin) and scaled to metres by an
   average adult outer eye-corner distance (EYE_CORNER_DISTANCE_M).
2. Focal search as upstream (median reprojection error over upstream's range, 500..1450 px for
   512 px frames; the shortest focal within 1 % of the minimum, as the curve is flat toward long
   focals): for each focal, perspective PnP per sampled frame (SQPnP + LM), then the rigid
   points are re-triangulated from those poses (regularised toward the Procrustes shape) and the
   poses re-solved.
3. Poses for every frame, then temporal smoothing in the tangent space of the mean rotation and on
   translation: a Hampel filter drops single-frame outliers, a Savitzky-Golay filter removes jitter
   while keeping motion (see docs/preprocessing.md for the jitter / reprojection trade-off).

Conventions (checked by tests/data_utils/test_head_pose.py):
- world: metres, head at the origin, +X image right, +Y up, +Z toward the camera (OpenGL-like).
- track_params.pt `euler`/`trans`: world -> OpenGL camera (x right, y up, looking down -z),
  X_gl = R(euler) @ X + trans with R(euler) = Rx(e0) @ Ry(e1) @ Rz(e2); a frontal head gives euler ~ 0
  and trans ~ (0, 0, -distance).
- transforms_*.json `transform_matrix`: camera-to-world in OpenGL axes (upstream schema). The trainer
  flips columns 1, 2 (-> OpenCV), inverts to w2c and projects u = f X/Z + cx, v = f Y/Z + cy.
"""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from data_utils.frames import PreprocessError, frame_count, frame_size, n_train_frames
from data_utils.landmarks import load_landmarks
from data_utils.mesh_topology import EYE_CORNERS, N_MESH_POINTS, RIGID
from data_utils.pose_math import (euler_to_rot, pose_jitter, rot_to_euler, rotation_angle_deg,
                                  smooth_poses, umeyama)
from utils.io_utils import load_json, save_json, save_torch

log = logging.getLogger(__name__)

EYE_CORNER_DISTANCE_M = 0.090      # mean adult outer canthal width, about 88-92 mm
FLIP_YZ = np.diag([1.0, -1.0, -1.0])  # OpenCV camera axes <-> OpenGL camera axes (its own inverse)
FOCAL_RANGE_512 = (500.0, 1450.0, 50.0)  # upstream's search range for 512 px frames


# ----------------------------------------------------------------------------- canonical face
def image_to_world_axes(points: np.ndarray) -> np.ndarray:
    """Pixel-space landmarks (x right, y down, z away) -> right-handed (x right, y up, z toward camera)."""
    return points * np.array([1.0, -1.0, -1.0])


def build_canonical(points: np.ndarray, rigid: list[int] = RIGID, n_iter: int = 4, max_frames: int = 400) -> np.ndarray:
    """Subject's canonical face by generalized Procrustes over frames.

    Args:
        points: [N, 478, 3] landmarks in pixels (z scaled like x).
    Returns:
        [478, 3] float64 in metres, world axes, centred on the mesh centroid, frontalised.
    """
    assert points.ndim == 3 and points.shape[2] == 3, points.shape
    idx = np.linspace(0, len(points) - 1, min(len(points), max_frames)).round().astype(int)
    shapes = image_to_world_axes(points[idx].astype(np.float64))  # [F, 478, 3]
    ref = shapes[len(shapes) // 2, rigid]
    for _ in range(n_iter):
        aligned = np.empty_like(shapes)
        view = np.zeros(3)                                     # mean direction toward the camera
        for k, s in enumerate(shapes):
            sc, R, t = umeyama(s[rigid], ref)
            aligned[k] = sc * s @ R.T + t
            view += R[:, 2]
        mean = aligned.mean(0)
        new_ref = mean[rigid]
        new_ref = (new_ref - new_ref.mean(0)) * (np.linalg.norm(ref - ref.mean(0)) / np.linalg.norm(new_ref - new_ref.mean(0)))
        ref = new_ref + ref.mean(0)
    return _frontalise(mean, view)


def _frontalise(shape: np.ndarray, view: np.ndarray) -> np.ndarray:
    """Rotate so the eye line is +X and `view` (toward the camera) is +Z; centre; scale to metres."""
    x = shape[EYE_CORNERS[3]] - shape[EYE_CORNERS[0]]          # right outer corner -> left outer corner
    x /= np.linalg.norm(x)
    z = view - x * (view @ x)
    z /= np.linalg.norm(z)
    R = np.stack([x, np.cross(z, x), z])                       # rows: new axes (right-handed)
    out = (shape - shape[:N_MESH_POINTS].mean(0)) @ R.T
    scale = EYE_CORNER_DISTANCE_M / np.linalg.norm(out[EYE_CORNERS[3]] - out[EYE_CORNERS[0]])
    return out * scale


# ----------------------------------------------------------------------------- PnP and structure
def solve_poses(points3d: np.ndarray, image_pts: np.ndarray, focal: float, cx: float, cy: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame perspective pose of a rigid shape (OpenCV camera).

    Args:
        points3d: [K, 3] world points (metres).
        image_pts: [N, K, 2] observed pixels.
    Returns:
        R [N, 3, 3], t [N, 3] with x_cam = R @ X + t (x right, y down, z forward).
    """
    assert points3d.ndim == 2 and image_pts.shape[1:] == (points3d.shape[0], 2), (points3d.shape, image_pts.shape)
    K = np.array([[focal, 0, cx], [0, focal, cy], [0, 0, 1]], np.float64)
    obj = np.ascontiguousarray(points3d, np.float64)
    Rs, ts = np.empty((len(image_pts), 3, 3)), np.empty((len(image_pts), 3))
    for i, img in enumerate(np.ascontiguousarray(image_pts, np.float64)):
        ok, rvec, tvec = cv2.solvePnP(obj, img, K, None, flags=cv2.SOLVEPNP_SQPNP)
        if not ok:
            raise PreprocessError(f"head pose: PnP failed on frame {i}")
        rvec, tvec = cv2.solvePnPRefineLM(obj, img, K, None, rvec, tvec)
        Rs[i], ts[i] = cv2.Rodrigues(rvec)[0], tvec.ravel()
    return Rs, ts


def project(points3d: np.ndarray, R: np.ndarray, t: np.ndarray, focal: float, cx: float, cy: float) -> np.ndarray:
    """[K, 3] world points through N OpenCV poses -> [N, K, 2] pixels."""
    cam = np.einsum("nij,kj->nki", R, points3d) + t[:, None, :]
    return focal * cam[..., :2] / cam[..., 2:3] + np.array([cx, cy])


def reprojection_errors(points3d, R, t, focal, cx, cy, image_pts) -> np.ndarray:
    """[N] mean pixel distance per frame between projected and observed points."""
    return np.linalg.norm(project(points3d, R, t, focal, cx, cy) - image_pts, axis=-1).mean(-1)


def triangulate(R: np.ndarray, t: np.ndarray, focal: float, cx: float, cy: float, image_pts: np.ndarray,
                prior: np.ndarray, prior_weight: float = 1.0) -> np.ndarray:
    """Re-estimate each 3-D point from its observations under known poses (linear, per point).

    Rows (u - cx) (r3.X + t3) = f (r1.X + t1) and likewise for v, plus prior_weight * (X - prior) with
    the rows scaled to pixels at the mean depth, so a weak depth baseline stays near the prior.
    Returns [K, 3].
    """
    u = image_pts[..., 0] - cx                                 # [N, K]
    v = image_pts[..., 1] - cy
    depth = np.median(t[:, 2])
    out = np.empty_like(prior)
    eye = np.eye(3) * prior_weight * focal / depth
    for k in range(prior.shape[0]):
        A = np.concatenate([u[:, k, None] * R[:, 2] - focal * R[:, 0], v[:, k, None] * R[:, 2] - focal * R[:, 1], eye])
        b = np.concatenate([focal * t[:, 0] - u[:, k] * t[:, 2], focal * t[:, 1] - v[:, k] * t[:, 2], eye @ prior[k]])
        out[k] = np.linalg.lstsq(A, b, rcond=None)[0]
    return out


def fit_rigid(canonical_rigid: np.ndarray, image_pts: np.ndarray, focal: float, cx: float, cy: float,
              n_refine: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Alternate PnP and triangulation at a fixed focal. Returns (points3d, R, t, median error px)."""
    pts = canonical_rigid
    R, t = solve_poses(pts, image_pts, focal, cx, cy)
    for _ in range(n_refine):
        pts = triangulate(R, t, focal, cx, cy, image_pts, canonical_rigid)
        R, t = solve_poses(pts, image_pts, focal, cx, cy)
    return pts, R, t, float(np.median(reprojection_errors(pts, R, t, focal, cx, cy, image_pts)))


def search_focal(canonical_rigid: np.ndarray, image_pts: np.ndarray, width: int, height: int,
                 focal_range: tuple[float, float, float] | None = None, max_frames: int = 120,
                 tolerance: float = 0.01) -> tuple[float, dict]:
    """Focal by median reprojection error on up to `max_frames` evenly spaced frames.

    The error curve often flattens toward long focals (the orthographic limit), where it no longer
    tells focals apart and the strict minimum drifts to the range's end. So the pick is the shortest
    focal whose error is within `tolerance` (relative) of the minimum; tolerance=0 is upstream's
    plain minimum. Returns (focal, {focal: median error px}).
    """
    if focal_range is None:
        s = max(width, height) / 512.0
        focal_range = tuple(v * s for v in FOCAL_RANGE_512)
    lo, hi, step = focal_range
    idx = np.linspace(0, len(image_pts) - 1, min(len(image_pts), max_frames)).round().astype(int)
    curve = {}
    for f in np.arange(lo, hi + step / 2, step):
        curve[float(f)] = fit_rigid(canonical_rigid, image_pts[idx], float(f), width / 2, height / 2)[3]
    floor = min(curve.values())
    best = min(f for f, e in curve.items() if e <= floor * (1 + tolerance))
    if best in (min(curve), max(curve)):
        log.warning("focal search: best focal %.0f px is at the edge of the range %.0f..%.0f", best, lo, hi)
    return best, curve


# ----------------------------------------------------------------------------- cameras
def opencv_to_track(R_cv: np.ndarray, t_cv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV world->camera poses -> (euler [N, 3], trans [N, 3]) in the OpenGL camera frame."""
    R_gl = FLIP_YZ @ R_cv
    return rot_to_euler(R_gl), t_cv @ FLIP_YZ


def track_to_c2w(euler: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """(euler, trans) of world->OpenGL camera -> camera-to-world [N, 4, 4] (OpenGL axes, upstream JSON)."""
    R = euler_to_rot(euler)                                    # [N, 3, 3]
    c2w = np.tile(np.eye(4), (len(R), 1, 1))
    c2w[:, :3, :3] = R.transpose(0, 2, 1)
    c2w[:, :3, 3] = -np.einsum("nji,nj->ni", R, trans)
    return c2w


def transforms_dict(c2w: np.ndarray, ids: range | list[int], focal: float, width: int, height: int) -> dict:
    return {"focal_len": float(focal), "cx": float(width / 2), "cy": float(height / 2),
            "frames": [{"img_id": int(i), "aud_id": int(i), "transform_matrix": c2w[i].tolist()} for i in ids]}


def write_transforms(data_dir: Path, c2w: np.ndarray, focal: float, width: int, height: int) -> None:
    n = len(c2w)
    n_train = n_train_frames(n)
    save_json(Path(data_dir) / "transforms_train.json", transforms_dict(c2w, range(n_train), focal, width, height))
    save_json(Path(data_dir) / "transforms_val.json", transforms_dict(c2w, range(n_train, n), focal, width, height))


def mediapipe_rotation_agreement(R_gl: np.ndarray, mp_transforms: np.ndarray) -> float:
    """Median angle (deg) between our rotations and MediaPipe's facial transforms after removing the
    constant rotation between the two canonical frames: an independent check of the tracked rotation."""
    R_mp = mp_transforms[:, :3, :3].astype(np.float64)
    M = np.einsum("nji,njk->ik", R_mp, R_gl)                   # sum of R_mp^T R_gl
    U, _, Vt = np.linalg.svd(M)
    Q = U @ np.diag([1, 1, np.sign(np.linalg.det(U @ Vt))]) @ Vt
    return float(np.median(rotation_angle_deg(np.einsum("nij,jk->nik", R_mp, Q), R_gl)))


# ----------------------------------------------------------------------------- step
def track_complete(data_dir: Path, n: int) -> bool:
    d = Path(data_dir)
    if not all((d / f).is_file() for f in ("track_params.pt", "transforms_train.json", "transforms_val.json")):
        return False
    return len(load_json(d / "transforms_train.json")["frames"]) + len(load_json(d / "transforms_val.json")["frames"]) == n


def run_head_pose(data_dir: Path, force: bool = False, tracker: str = "mediapipe", focal: float | None = None,
                  smooth_window: int = 9, bfm_dir: Path | None = None, progress: bool = True) -> str:
    """Fit poses and write track_params.pt and transforms_{train,val}.json.

    Args:
        tracker: "mediapipe" (default, this module) or "bfm" (data_utils/optional/bfm_tracker.py, with
            its model files in `bfm_dir`).
        focal: fixed focal in pixels (skips the search).
        smooth_window: Savitzky-Golay window in frames (odd; 1 disables smoothing).
    """
    import torch

    data_dir = Path(data_dir)
    n = frame_count(data_dir)
    if not force and track_complete(data_dir, n):
        return f"head pose: {n} cameras already in transforms_*.json (skipped)"
    if tracker == "bfm":
        from data_utils.optional.bfm_tracker import run_bfm_tracker

        return run_bfm_tracker(data_dir, force=True, progress=progress, bfm_dir=bfm_dir, smooth_window=smooth_window)
    if tracker != "mediapipe":
        raise ValueError(f"unknown tracker {tracker!r} (mediapipe, bfm)")
    width, height = frame_size(data_dir)
    points = load_landmarks(data_dir).astype(np.float64)       # [N, 478, 3]
    canonical = build_canonical(points)
    image_pts = points[:, RIGID, :2]                           # [N, K, 2]
    curve = {}
    if focal is None:
        focal, curve = search_focal(canonical[RIGID], image_pts, width, height)
    rigid3d, R_raw, t_raw, _ = fit_rigid(canonical[RIGID], image_pts, focal, width / 2, height / 2)
    R_s, t_s = smooth_poses(R_raw, t_raw, smooth_window)
    cx, cy = width / 2, height / 2
    err_raw = reprojection_errors(rigid3d, R_raw, t_raw, focal, cx, cy, image_pts)
    err = reprojection_errors(rigid3d, R_s, t_s, focal, cx, cy, image_pts)
    jit_raw, jit = pose_jitter(R_raw, t_raw), pose_jitter(R_s, t_s)
    euler, trans = opencv_to_track(R_s, t_s)
    euler_raw, trans_raw = opencv_to_track(R_raw, t_raw)
    stats = {"focal": focal, "distance_m": float(np.median(t_s[:, 2])),
             "reproj_median_px_raw": float(np.median(err_raw)), "reproj_median_px": float(np.median(err)),
             "jitter_rot_deg_raw": jit_raw[0], "jitter_trans_mm_raw": jit_raw[1],
             "jitter_rot_deg": jit[0], "jitter_trans_mm": jit[1], "smooth_window": smooth_window,
             "focal_curve": {f"{k:.0f}": round(v, 4) for k, v in curve.items()}}
    mp_tf = data_dir / "face_transforms.npy"
    if mp_tf.is_file():
        stats["mediapipe_rotation_agreement_deg"] = mediapipe_rotation_agreement(FLIP_YZ @ R_s, np.load(mp_tf))
    f32 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    save_torch(data_dir / "track_params.pt", {
        "euler": f32(euler), "trans": f32(trans), "focal": f32([focal]),
        "euler_raw": f32(euler_raw), "trans_raw": f32(trans_raw),
        "canonical": f32(canonical), "canonical_rigid": f32(rigid3d), "rigid_idx": torch.as_tensor(RIGID),
        "reproj_err_px": f32(err), "width": width, "height": height, "stats": stats,
        "convention": "X_gl = R(euler) @ X_world + trans; R = Rx@Ry@Rz; OpenGL camera; metres"})
    c2w = track_to_c2w(euler, trans)
    write_transforms(data_dir, c2w, focal, width, height)
    save_json(data_dir / "head_pose.json", stats)
    return (f"head pose: focal {focal:.0f} px, camera {stats['distance_m']:.2f} m; reprojection median "
            f"{stats['reproj_median_px_raw']:.2f} -> {stats['reproj_median_px']:.2f} px; jitter "
            f"{jit_raw[0]:.3f} -> {jit[0]:.3f} deg, {jit_raw[1]:.2f} -> {jit[1]:.2f} mm (RMS 2nd difference)")

"""Head pose: rotation maths, PnP + focal search on a synthetic head, smoothing, the camera
convention the trainer uses, and the whole step on a real cut."""
from __future__ import annotations

import json

import numpy as np
import pytest

from data_utils.head_pose import (FLIP_YZ, fit_rigid, opencv_to_track, project, reprojection_errors, search_focal,
                                  solve_poses, track_to_c2w, triangulate)
from data_utils.pose_math import (euler_to_rot, hampel, pose_jitter, rot_to_euler, rotation_angle_deg, smooth_poses,
                                  umeyama)
from tests.data_utils.test_process import landmarked_clip
from utils.io_utils import load_checkpoint

FOCAL, CX, CY = 900.0, 256.0, 256.0


def trainer_projection(points: np.ndarray, c2w: np.ndarray, focal: float, cx: float, cy: float) -> np.ndarray:
    """Exactly what the trainer does with a transforms_*.json frame: flip c2w columns 1, 2
    (OpenGL -> OpenCV), invert to w2c, project with focal and cx, cy. Written out independently of
    the library on purpose."""
    c2w = np.array(c2w, dtype=np.float64)
    c2w[:3, 1:3] *= -1
    w2c = np.linalg.inv(c2w)
    cam = points @ w2c[:3, :3].T + w2c[:3, 3]
    assert (cam[:, 2] > 0).all(), "points behind the camera"
    return np.stack([focal * cam[:, 0] / cam[:, 2] + cx, focal * cam[:, 1] / cam[:, 2] + cy], 1)


@pytest.fixture(scope="module")
def scene():
    """A rigid face-like point set (metres) under a known smooth head motion, seen at 900 px focal."""
    rng = np.random.default_rng(0)
    u = rng.uniform(-1, 1, (80, 2))
    u = u[(u ** 2).sum(1) < 1][:40]
    pts = np.c_[0.07 * u[:, 0], 0.09 * u[:, 1], 0.05 * np.sqrt(1 - (u ** 2).sum(1))]
    t = np.arange(120) / 25.0
    euler = np.radians(np.c_[10 * np.sin(2 * np.pi * t / 2.3), 20 * np.sin(2 * np.pi * t / 3), 5 * np.sin(2 * np.pi * t / 1.7)])
    t_gl = np.c_[0.01 * np.sin(t), 0.005 * np.cos(t), -0.6 + 0.02 * np.sin(t)]
    R_cv, t_cv = FLIP_YZ @ euler_to_rot(euler), t_gl @ FLIP_YZ
    clean = project(pts, R_cv, t_cv, FOCAL, CX, CY)
    noisy = clean + rng.normal(0, 0.3, clean.shape)
    return {"pts": pts, "R": R_cv, "t": t_cv, "euler": euler, "trans": t_gl, "clean": clean, "obs": noisy, "rng": rng}


# ----------------------------------------------------------------------------- maths
def test_umeyama_recovers_a_similarity():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(30, 3))
    R = euler_to_rot(np.array([0.3, -0.5, 1.1]))
    dst = 2.5 * src @ R.T + np.array([1.0, -2.0, 0.5])
    s, R_est, t = umeyama(src, dst)
    assert s == pytest.approx(2.5) and np.allclose(R_est, R) and np.allclose(t, [1.0, -2.0, 0.5])


def test_euler_round_trip_and_order():
    e = np.array([[0.2, -0.4, 0.7], [-1.0, 0.3, 0.1]])
    assert np.allclose(rot_to_euler(euler_to_rot(e)), e)
    a, b, c = e[0]
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    assert np.allclose(euler_to_rot(e[0]), rx @ ry @ rz)


# ----------------------------------------------------------------------------- PnP, structure, focal
def test_solve_poses_recovers_the_motion(scene):
    R, t = solve_poses(scene["pts"], scene["obs"], FOCAL, CX, CY)
    assert np.median(rotation_angle_deg(R, scene["R"])) < 0.5
    assert np.median(np.linalg.norm(t - scene["t"], axis=1)) < 0.005
    assert np.median(reprojection_errors(scene["pts"], R, t, FOCAL, CX, CY, scene["obs"])) < 0.5


def test_triangulation_repairs_a_wrong_shape(scene):
    rng = np.random.default_rng(2)
    wrong = scene["pts"] + rng.normal(0, 0.004, scene["pts"].shape)
    fixed = triangulate(scene["R"], scene["t"], FOCAL, CX, CY, scene["obs"], wrong, prior_weight=0.05)
    assert np.abs(fixed - scene["pts"]).mean() < 0.5 * np.abs(wrong - scene["pts"]).mean()
    pts, _, _, err = fit_rigid(wrong, scene["obs"], FOCAL, CX, CY)
    assert err < np.median(reprojection_errors(wrong, *solve_poses(wrong, scene["obs"], FOCAL, CX, CY), FOCAL, CX, CY,
                                               scene["obs"]))


def test_focal_search_finds_the_true_focal(scene):
    prior = scene["pts"] + np.random.default_rng(3).normal(0, 0.002, scene["pts"].shape)
    best, curve = search_focal(prior, scene["obs"], 512, 512)
    assert abs(best - FOCAL) <= 150, curve
    assert curve[best] < curve[500.0] and curve[best] <= curve[1450.0]


# ----------------------------------------------------------------------------- smoothing
def test_smoothing_removes_jitter_and_keeps_motion(scene):
    rng = np.random.default_rng(4)
    noise = euler_to_rot(np.radians(rng.normal(0, 0.5, (len(scene["R"]), 3))))
    R_noisy = np.einsum("nij,njk->nik", noise, scene["R"])
    t_noisy = scene["t"] + rng.normal(0, 0.002, scene["t"].shape)
    t_noisy[60] += 0.05                                   # one wild frame
    R_s, t_s = smooth_poses(R_noisy, t_noisy, window=9)
    jit_raw, jit = pose_jitter(R_noisy, t_noisy), pose_jitter(R_s, t_s)
    assert jit[0] < jit_raw[0] / 3 and jit[1] < jit_raw[1] / 3
    assert np.median(rotation_angle_deg(R_s, scene["R"])) < 0.7 * np.median(rotation_angle_deg(R_noisy, scene["R"]))
    assert np.linalg.norm(t_s[60] - scene["t"][60]) < 0.005   # the spike is gone
    yaw_true, yaw_s = rot_to_euler(FLIP_YZ @ scene["R"])[:, 1], rot_to_euler(FLIP_YZ @ R_s)[:, 1]
    assert np.ptp(yaw_s) == pytest.approx(np.ptp(yaw_true), rel=0.05)   # the 20 deg swing survives
    R_same, t_same = smooth_poses(R_noisy, t_noisy, window=1)
    assert np.array_equal(R_same, R_noisy) and np.array_equal(t_same, t_noisy)


def test_hampel_only_touches_outliers():
    x = np.sin(np.linspace(0, 6, 100))[:, None]
    y = x.copy()
    y[50] += 5
    out = hampel(y)
    assert abs(out[50, 0] - x[50, 0]) < 0.1
    assert np.allclose(np.delete(out, 50, 0), np.delete(x, 50, 0))


# ----------------------------------------------------------------------------- camera convention
def test_json_cameras_project_like_opencv(scene):
    """track -> c2w (OpenGL, upstream JSON) -> trainer flip/invert/project == the OpenCV projection."""
    euler, trans = opencv_to_track(scene["R"], scene["t"])
    assert np.allclose(euler, scene["euler"]) and np.allclose(trans, scene["trans"])
    c2w = track_to_c2w(euler, trans)
    for i in (0, 37, 119):
        uv = trainer_projection(scene["pts"], c2w[i], FOCAL, CX, CY)
        assert np.allclose(uv, scene["clean"][i], atol=1e-6)
    assert np.allclose(c2w[:, 3], [0, 0, 0, 1])
    assert np.all(c2w[:, 2, 3] > 0.5)                      # camera in front of the face, on +z


# ----------------------------------------------------------------------------- the step on real frames
@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    from data_utils.head_pose import run_head_pose

    d = landmarked_clip(tmp_path_factory, "hp", start=10.0, duration=2.0)
    summary = run_head_pose(d)
    return d, summary


@pytest.mark.slow
def test_canonical_landmarks_land_on_the_detections_through_the_json(tracked):
    import torch

    d, summary = tracked
    tp = load_checkpoint(d / "track_params.pt")
    rigid3d, idx = tp["canonical_rigid"].double().numpy(), tp["rigid_idx"].numpy()
    lms = np.load(d / "landmarks.npy")
    errors = []
    for name in ("transforms_train.json", "transforms_val.json"):
        meta = json.loads((d / name).read_text())
        assert set(meta) == {"focal_len", "cx", "cy", "frames"} and (meta["cx"], meta["cy"]) == (256.0, 256.0)
        for fr in meta["frames"]:
            assert fr["img_id"] == fr["aud_id"]
            uv = trainer_projection(rigid3d, fr["transform_matrix"], meta["focal_len"], meta["cx"], meta["cy"])
            errors.append(np.linalg.norm(uv - lms[fr["img_id"], idx, :2], axis=1).mean())
    median = float(np.median(errors))
    print(f"median reprojection through the JSON cameras: {median:.3f} px; {summary}")
    assert median < 1.5
    # the world origin (head centre) projects inside the face and the camera is 0.3..1.2 m away
    c2w = np.array(json.loads((d / "transforms_train.json").read_text())["frames"][0]["transform_matrix"])
    origin = trainer_projection(np.zeros((1, 3)), c2w, tp["focal"].item(), 256, 256)[0]
    face = lms[0, :, :2]
    assert (face.min(0) < origin).all() and (origin < face.max(0)).all()
    assert 0.3 < np.linalg.norm(c2w[:3, 3]) < 1.2


@pytest.mark.slow
def test_step_reports_quality_and_agrees_with_mediapipe(tracked):
    d, _ = tracked
    stats = json.loads((d / "head_pose.json").read_text())
    assert stats["jitter_rot_deg"] < stats["jitter_rot_deg_raw"]
    assert stats["jitter_trans_mm"] < stats["jitter_trans_mm_raw"]
    assert stats["reproj_median_px_raw"] < 1.5
    if "mediapipe_rotation_agreement_deg" in stats:
        assert stats["mediapipe_rotation_agreement_deg"] < 3.0

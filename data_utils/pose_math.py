"""Rotation and pose maths for the head-pose step: similarity fits, Euler angles, smoothing, jitter.

Pure numpy/scipy functions on arrays; no files.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import savgol_filter
from scipy.spatial.transform import Rotation


def umeyama(src: np.ndarray, dst: np.ndarray, with_scale: bool = True) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity dst ~ s * R @ src + t (Umeyama 1991).

    Args:
        src, dst: [K, 3] corresponding points.
    Returns:
        (s, R [3, 3], t [3]).
    """
    assert src.shape == dst.shape and src.shape[1] == 3, (src.shape, dst.shape)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    U, S, Vt = np.linalg.svd(b.T @ a / len(src))
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    R = U @ D @ Vt
    s = float(np.trace(np.diag(S) @ D) / (a ** 2).sum(1).mean()) if with_scale else 1.0
    return s, R, mu_d - s * R @ mu_s


def euler_to_rot(euler: np.ndarray) -> np.ndarray:
    """[..., 3] angles (radians) -> [..., 3, 3] rotation R = Rx(e0) @ Ry(e1) @ Rz(e2)."""
    e = np.asarray(euler, np.float64)
    return Rotation.from_euler("XYZ", e.reshape(-1, 3)).as_matrix().reshape(e.shape[:-1] + (3, 3))


def rot_to_euler(R: np.ndarray) -> np.ndarray:
    """Inverse of euler_to_rot: [..., 3, 3] -> [..., 3] radians."""
    R = np.asarray(R, np.float64)
    return Rotation.from_matrix(R.reshape(-1, 3, 3)).as_euler("XYZ").reshape(R.shape[:-2] + (3,))


def rotation_angle_deg(Ra: np.ndarray, Rb: np.ndarray) -> np.ndarray:
    """[N] angle of Ra^T Rb in degrees."""
    rel = np.einsum("nji,njk->nik", Ra, Rb)
    cos = np.clip((np.trace(rel, axis1=1, axis2=2) - 1) / 2, -1.0, 1.0)
    return np.degrees(np.arccos(cos))


def hampel(x: np.ndarray, half_window: int = 3, n_sigma: float = 3.0) -> np.ndarray:
    """Replace samples further than n_sigma robust std from the running median by that median.

    Args:
        x: [N, D] signals (each column filtered on its own).
    """
    n = len(x)
    if n < 2 * half_window + 1:
        return x.copy()
    pad = np.pad(x, ((half_window, half_window), (0, 0)), mode="edge")
    win = np.lib.stride_tricks.sliding_window_view(pad, 2 * half_window + 1, axis=0)  # [N, D, W]
    med = np.median(win, axis=-1)
    mad = 1.4826 * np.median(np.abs(win - med[..., None]), axis=-1)
    out = x.copy()
    bad = np.abs(x - med) > n_sigma * np.maximum(mad, 1e-12)
    out[bad] = med[bad]
    return out


def _savgol(x: np.ndarray, window: int, polyorder: int = 2) -> np.ndarray:
    window = min(window, len(x) if len(x) % 2 == 1 else len(x) - 1)
    if window <= polyorder + 1:
        return x.copy()
    return savgol_filter(x, window, polyorder, axis=0, mode="interp")


def smooth_poses(R: np.ndarray, t: np.ndarray, window: int = 9, polyorder: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Temporal smoothing of rigid poses that keeps motion and removes jitter.

    Rotations are mapped to rotation vectors about their mean (continuous for |angle| < 180 deg),
    then rotation vectors and translations go through a Hampel outlier filter and a
    Savitzky-Golay filter (zero phase: no lag). window <= 1 returns the input.

    Args:
        R: [N, 3, 3], t: [N, 3].
    Returns:
        (R [N, 3, 3], t [N, 3]).
    """
    assert R.shape[1:] == (3, 3) and t.shape == (len(R), 3), (R.shape, t.shape)
    if window <= 1 or len(R) < 5:
        return R.copy(), t.copy()
    rot = Rotation.from_matrix(R)
    mean = rot.mean()
    rvec = (mean.inv() * rot).as_rotvec()                       # [N, 3] tangent space at the mean
    rvec = _savgol(hampel(rvec), window, polyorder)
    t_s = _savgol(hampel(t), window, polyorder)
    return (mean * Rotation.from_rotvec(rvec)).as_matrix(), t_s


def pose_jitter(R: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    """Frame-to-frame jitter: RMS second difference of rotation (deg) and translation (mm).

    A smooth motion has a small second difference whatever its speed; per-frame noise of std s gives
    about sqrt(6) * s.
    """
    if len(R) < 3:
        return 0.0, 0.0
    rot = Rotation.from_matrix(R)
    rvec = (rot.mean().inv() * rot).as_rotvec()
    d2r = np.degrees(np.linalg.norm(rvec[2:] - 2 * rvec[1:-1] + rvec[:-2], axis=1))
    d2t = 1000.0 * np.linalg.norm(t[2:] - 2 * t[1:-1] + t[:-2], axis=1)
    return float(np.sqrt((d2r ** 2).mean())), float(np.sqrt((d2t ** 2).mean()))

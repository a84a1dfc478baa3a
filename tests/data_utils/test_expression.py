"""Expression: au.csv format and AU behaviour on edited real landmarks, 3dmm.pt from blendshapes or PCA."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from data_utils import mesh_topology as mt
from data_utils.expression import (AU_NAMES, BLENDSHAPE_NAMES, EXPRESSION_SHAPES, action_units,
                                   codes_from_blendshapes, codes_from_landmarks, format_au_csv, normalise_pose)
from data_utils.pose_math import euler_to_rot
from tests.data_utils.test_process import landmarked_clip


def test_au_csv_has_openface_headers_and_rows():
    au = np.arange(21, dtype=np.float32).reshape(3, 7) / 10
    text = format_au_csv(au, np.array([True, False, True]))
    header = text.splitlines()[0]
    assert header == "frame, face_id, timestamp, confidence, success, AU01_r, AU04_r, AU05_r, AU06_r, AU07_r, AU25_r, AU45_r"
    rows = list(csv.reader(text.splitlines()))
    assert rows[0][11] == " AU45_r"                      # OpenFace's leading space, as T reads it
    assert [r[0] for r in rows[1:]] == ["1", "2", "3"]   # 1-based like OpenFace
    assert rows[2][4].strip() == "0" and float(rows[3][2]) == pytest.approx(0.08)
    assert float(rows[3][-1]) == pytest.approx(au[2, 6])


def test_blendshapes_go_to_the_smirk_slots():
    bs = np.zeros((4, 52), np.float32)
    bs[0, BLENDSHAPE_NAMES.index("eyeBlinkLeft")] = 1.0
    bs[1, BLENDSHAPE_NAMES.index("jawOpen")] = 1.0
    bs[2, BLENDSHAPE_NAMES.index("jawLeft")] = 1.0
    bs[3, BLENDSHAPE_NAMES.index("mouthSmileLeft")] = 0.7
    c = codes_from_blendshapes(bs)
    assert c["expression_params"].shape == (4, 50) and c["eyelid_params"].shape == (4, 2) and c["jaw_params"].shape == (4, 3)
    assert c["eyelid_params"][0].tolist() == [1.0, 0.0] and not c["expression_params"][0].any()
    assert c["jaw_params"][1, 0] == pytest.approx(0.5) and c["jaw_params"][2, 1] == pytest.approx(0.2)
    assert c["expression_params"][3, EXPRESSION_SHAPES.index("mouthSmileLeft")] == pytest.approx(0.7)
    assert len(EXPRESSION_SHAPES) == 45 and not c["expression_params"][:, 45:].any()


@pytest.fixture(scope="module")
def real_dir(tmp_path_factory):
    return landmarked_clip(tmp_path_factory, "exp", start=0.0, duration=3.0)


def _edited_sequence(base: np.ndarray) -> np.ndarray:
    """40 copies of one real frame: eyes closed in 10-14, mouth opened in 20-24, head turned in 30-39."""
    seq = np.repeat(base[None].astype(np.float64), 40, 0)
    for upper, lower in ((mt.RIGHT_EYE_EAR[2], mt.RIGHT_EYE_EAR[3]), (mt.LEFT_EYE_EAR[2], mt.LEFT_EYE_EAR[3])):
        seq[10:15, upper] = seq[10:15, lower] - [0, 1.0, 0]
    lower_lip = [14, 87, 178, 88, 95, 317, 402, 318, 324, 17, 84, 181, 91, 146, 314, 405, 321, 375]
    seq[20:25, lower_lip, 1] += 12.0
    center = base.mean(0)
    R = euler_to_rot(np.radians([8.0, 20.0, 5.0]))
    seq[30:] = (seq[30:] - center) @ R.T + center
    return seq


def test_aus_respond_to_blinks_and_mouth_opening_but_not_to_head_turns(real_dir):
    from data_utils.head_pose import build_canonical
    from data_utils.landmarks import load_landmarks

    pts = load_landmarks(real_dir)
    canonical = build_canonical(pts)
    seq = _edited_sequence(pts[0])
    au = action_units(normalise_pose(seq, canonical))
    assert au.shape == (40, len(AU_NAMES))
    blink, lips = au[:, AU_NAMES.index("AU45_r")], au[:, AU_NAMES.index("AU25_r")]
    assert (blink[10:15] > 2.0).all() and (np.delete(blink, range(10, 15)) < 0.2).all()
    assert lips[20:25].min() > lips[:20].max() + 1.0
    assert np.allclose(au[30:], au[0], atol=0.15), "a rigid head turn must not change the AUs"


def test_landmark_pca_fallback_codes(real_dir):
    from data_utils.head_pose import build_canonical
    from data_utils.landmarks import load_landmarks

    pts = load_landmarks(real_dir)
    codes = codes_from_landmarks(normalise_pose(pts, build_canonical(pts)))
    exp = codes["expression_params"]
    assert exp.shape == (len(pts), 50)
    assert np.allclose(exp.std(0, ddof=1)[:10], 1.0, atol=1e-3)       # whitened components
    assert abs(np.corrcoef(exp[:, 0], exp[:, 1])[0, 1]) < 1e-3       # uncorrelated
    assert codes["eyelid_params"].min() >= 0 and codes["eyelid_params"].max() <= 1
    assert codes["jaw_params"][:, 0].max() == pytest.approx(0.5, abs=0.01)


@pytest.mark.slow
def test_run_expression_on_a_real_cut(real_dir):
    import torch

    from data_utils.expression import run_expression

    n = len(np.load(real_dir / "landmarks.npy"))
    summary = run_expression(real_dir, source="pca")
    assert "pca" in summary
    codes = torch.load(real_dir / "3dmm.pt")
    shapes = {"expression_params": (n, 50), "eyelid_params": (n, 2), "jaw_params": (n, 3), "pose_params": (n, 3),
              "cam": (n, 3), "shape_params": (n, 300)}
    assert {k: tuple(v.shape) for k, v in codes.items()} == shapes
    assert "skipped" in run_expression(real_dir)
    if (real_dir / "blendshapes.npy").is_file():
        run_expression(real_dir, force=True)
        bs = np.load(real_dir / "blendshapes.npy")
        au = np.loadtxt(real_dir / "au.csv", delimiter=",", skiprows=1)
        assert len(au) == n
        jaw_open = bs[:, BLENDSHAPE_NAMES.index("jawOpen")]
        # landmark AU25 and MediaPipe's own jawOpen blendshape measure the same thing
        assert np.corrcoef(au[:, 5 + AU_NAMES.index("AU25_r")], jaw_open)[0, 1] > 0.6
        assert torch.allclose(torch.load(real_dir / "3dmm.pt")["jaw_params"][:, 0], torch.tensor(0.5 * jaw_open))

"""Readers of subject files and the per-frame quantities derived from them (tiny hand-made inputs)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from scene.data import frame_features as ff
from scene.data import subject_files as sf


# ----------------------------------------------------------------------------- masks
def _parsing_with_regions() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """A 12x12 parsing image with one known block per region, and a teeth mask over part of the mouth."""
    parsing = np.full((12, 12, 3), 255, np.uint8)  # background
    regions = {
        "face": (slice(0, 4), slice(0, 6), (0, 0, 255)),
        "mouth": (slice(4, 6), slice(0, 6), (100, 100, 100)),
        "neck": (slice(6, 8), slice(0, 6), (0, 255, 0)),
        "cloth": (slice(8, 10), slice(0, 6), (255, 0, 0)),
        "hair": (slice(0, 4), slice(6, 12), (0, 0, 0)),
    }
    truth = {}
    for name, (r, c, color) in regions.items():
        parsing[r, c] = color
        truth[name] = np.zeros((12, 12), bool)
        truth[name][r, c] = True
    teeth = np.zeros((12, 12), bool)
    teeth[4, 0:3] = True  # inside the gray mouth
    teeth[3, 5] = True  # one teeth pixel labelled face by the parser
    truth["teeth"] = teeth
    truth["bg"] = ~(truth["face"] | truth["mouth"] | truth["neck"] | truth["cloth"] | truth["hair"])
    return parsing, teeth, truth


def test_masks_from_parsing_colours_numpy_and_torch():
    parsing, teeth, truth = _parsing_with_regions()
    bits = ff.parsing_bits(parsing, teeth)
    for masks in (ff.masks_from_bits(bits), {k: v.numpy() for k, v in ff.masks_from_bits(torch.from_numpy(bits)).items()}):
        np.testing.assert_array_equal(masks["face_only_mask"], truth["face"])
        np.testing.assert_array_equal(masks["face_mask"], truth["face"] ^ teeth)  # blue XOR teeth
        np.testing.assert_array_equal(masks["mouth_mask"], truth["mouth"] | teeth)  # gray OR teeth
        for name in ("hair", "neck", "cloth", "teeth", "bg"):
            np.testing.assert_array_equal(masks[f"{name}_mask"], truth[name], err_msg=name)
    # XOR: the teeth pixel inside the face leaves the face mask, the ones in the mouth join it
    m = ff.masks_from_bits(bits)
    assert not m["face_mask"][3, 5] and m["face_mask"][4, 0] and not m["face_only_mask"][4, 0]


def test_parsing_colours_tolerate_small_noise_but_not_other_colours():
    parsing, _, truth = _parsing_with_regions()
    noisy = parsing.astype(np.int16)
    noisy[0:4, 0:6] += np.array([6, 4, -5], np.int16)  # a re-encoded blue
    bits = ff.parsing_bits(np.clip(noisy, 0, 255).astype(np.uint8))
    np.testing.assert_array_equal(ff.masks_from_bits(bits)["face_only_mask"], truth["face"])
    odd = parsing.copy()
    odd[0, 0] = (0, 128, 255)  # no region has this colour
    assert ff.parsing_bits(odd)[0, 0] == 0


def test_resize_bits_is_nearest():
    bits = np.zeros((8, 8), np.uint8)
    bits[:, :4] = ff.FACE_ONLY | ff.TEETH
    bits[:, 4:] = ff.HAIR
    small = ff.resize_bits(bits, (4, 4))
    assert set(np.unique(small)) == {ff.FACE_ONLY | ff.TEETH, ff.HAIR}


@pytest.mark.parametrize("fmt", ["npy", "uint8", "packed", "png", "npz"])
def test_teeth_mask_formats(tmp_path, fmt):
    mask = np.zeros((5, 7), bool)
    mask[1:3, 2:6] = True
    (tmp_path / "teeth_mask").mkdir()
    base = tmp_path / "teeth_mask" / "4"
    if fmt == "npy":
        np.save(base.with_suffix(".npy"), mask)
    elif fmt == "uint8":
        np.save(base.with_suffix(".npy"), mask.astype(np.uint8))
    elif fmt == "packed":
        np.save(base.with_suffix(".npy"), np.packbits(mask.ravel()))
    elif fmt == "png":
        sf.write_teeth_png(base.with_suffix(".png"), mask)
    else:
        sf.write_teeth_npz(base.with_suffix(".npz"), mask)
    np.testing.assert_array_equal(sf.read_teeth(tmp_path, 4, (5, 7)), mask)
    with pytest.raises(ValueError, match="teeth_mask"):
        sf.read_teeth(tmp_path, 4, (6, 7))  # wrong frame size is an error, not a silent reshape


def test_missing_teeth_mask_names_file_and_step(tmp_path):
    with pytest.raises(sf.MissingSubjectFile) as e:
        sf.read_teeth(tmp_path, 3, (4, 4))
    assert "teeth_mask/3.npy" in str(e.value) and "teeth masks" in str(e.value)
    assert "\n" not in str(e.value)


# ----------------------------------------------------------------------------- au.csv, 3dmm
def _write_au(path, sep):
    cols = ["frame", "face_id", "AU01_r", "AU04_r", "AU05_r", "AU06_r", "AU07_r", "AU25_r", "AU45_r"]
    rows = [[1, 0, 0.1, 0.2, 0.3, 0.4, 0.5, 1.5, 0.0], [2, 0, 1.1, 1.2, 1.3, 1.4, 1.5, 0.5, 3.0]]
    path.write_text("\n".join([sep.join(cols)] + [sep.join(str(v) for v in r) for r in rows]) + "\n")


@pytest.mark.parametrize("sep", [", ", ","])
def test_au_csv_with_and_without_header_spaces(tmp_path, sep):
    _write_au(tmp_path / "au.csv", sep)
    au = sf.read_au_csv(tmp_path / "au.csv")
    np.testing.assert_allclose(au["AU25_r"], [1.5, 0.5])
    np.testing.assert_allclose(au["AU01_r"], [0.1, 1.1])
    feats = ff.au_features(au)
    np.testing.assert_allclose(feats["blink"], [0.0, 1.0])  # clip(AU45, 0, 2) / 2
    np.testing.assert_allclose(feats["au_exp"][1], [1.1, 1.2, 1.3, 1.4, 1.5, 2.0], rtol=1e-6)


def test_au_csv_missing_column_and_file(tmp_path):
    (tmp_path / "au.csv").write_text("frame, AU01_r\n1, 0.5\n")
    with pytest.raises(ValueError, match="AU04_r"):
        sf.read_au_csv(tmp_path / "au.csv")
    with pytest.raises(sf.MissingSubjectFile, match="expression and blink"):
        sf.read_au_csv(tmp_path / "nope.csv")


def test_au25_clipped_at_95th_percentile_with_stats():
    au25 = np.arange(100, dtype=np.float32)
    au = {k: np.zeros(100, np.float32) for k in sf.AU_COLUMNS}
    au["AU25_r"] = au25
    f = ff.au_features(au)
    p95 = np.percentile(au25, 95)
    assert f["au25"].max() == pytest.approx(p95) and f["au25_stats"]["max"] == pytest.approx(p95)
    assert f["au25_stats"]["p25"] == pytest.approx(np.percentile(np.clip(au25, 0, p95), 25))


def test_3dmm_exp_and_jaw(tmp_path):
    data = {"expression_params": torch.randn(4, 50), "eyelid_params": torch.rand(4, 2), "jaw_params": torch.rand(4, 3),
            "shape_params": torch.zeros(4, 300)}
    torch.save(data, tmp_path / "3dmm.pt")
    exp, jaw = ff.exp_3dmm(sf.read_3dmm(tmp_path / "3dmm.pt"))
    assert exp.shape == (4, 52) and jaw.shape == (4, 3)
    np.testing.assert_allclose(exp[:, 50:], data["eyelid_params"].numpy())
    del data["jaw_params"]
    torch.save(data, tmp_path / "3dmm.pt")
    with pytest.raises(ValueError, match="jaw_params"):
        sf.read_3dmm(tmp_path / "3dmm.pt")


# ----------------------------------------------------------------------------- landmarks
def _lms_with_mouth(top: float, bottom: float) -> np.ndarray:
    lms = np.zeros((68, 2), np.float32)
    lms[:, :] = (30, 30)
    # outer lips: x 20..40 (cols), y 45..51 (rows)
    lms[48:60, 0] = np.linspace(20, 40, 12)
    lms[48:60, 1] = np.r_[45, 51, np.full(10, 48)]
    lms[60:68, 0] = 30
    lms[60:68, 1] = np.r_[top, bottom, np.full(6, (top + bottom) / 2)]
    return lms


def test_lips_rect_is_square_in_row_col_order():
    rect = ff.lips_rect(_lms_with_mouth(47, 49), height=64, width=64)
    # rows 45..51 (centre 48), cols 20..40 (centre 30); half side = max(6, 20) // 2 = 10
    np.testing.assert_array_equal(rect, [38, 58, 20, 40])
    clipped = ff.lips_rect(_lms_with_mouth(47, 49), height=55, width=35)
    np.testing.assert_array_equal(clipped, [38, 55, 20, 35])


def test_mouth_opening_and_bounds():
    lms = np.stack([_lms_with_mouth(47, 47 + d) for d in (1.0, 4.0, 2.5)])
    opening = ff.mouth_opening(lms)
    np.testing.assert_allclose(opening, [1.0, 4.0, 2.5])
    np.testing.assert_allclose(ff.mouth_bounds(opening), [[1, 4, 1], [1, 4, 4], [1, 4, 2.5]])

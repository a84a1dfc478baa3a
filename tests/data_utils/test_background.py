"""Static background (against a brute-force KD-tree version), GT / torso / hair-preserving background
images on painted scenes with known answers, the drivers, and bc on real frames."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy.spatial import cKDTree

from data_utils import background as B
from data_utils.parsing import BACKGROUND, CLOTH, FACE, HAIR, MOUTH, NECK, labels_to_parsing, write_image
from data_utils.teeth import save_teeth_mask


# ----------------------------------------------------------------------------- static background
def _bc_brute_force(frames, parsings, confident_px=5.0):
    """The upstream recipe written plainly: KD-tree distances, per-pixel max, nearest-confident fill.
    Returns bc and, per unconfident pixel, the set of equally-near confident pixels (ties)."""
    H, W = parsings[0].shape[:2]
    grid = np.stack(np.meshgrid(np.arange(H), np.arange(W), indexing="ij"), -1).reshape(-1, 2)
    best = np.full(H * W, -1.0)
    colour = np.zeros((H * W, 3), np.uint8)
    for rgb, parsing in zip(frames, parsings):
        fg = ~np.all(parsing == 255, -1).reshape(-1)
        dist = cKDTree(grid[fg]).query(grid)[0] if fg.any() else np.full(H * W, 1e6)
        better = dist > best
        best[better] = dist[better]
        colour[better] = rgb.reshape(-1, 3)[better]
    confident = best > confident_px
    d = np.linalg.norm(grid[:, None, :] - grid[confident][None], axis=-1)  # [HW, C]
    nearest = np.isclose(d, d.min(1, keepdims=True))
    return colour.reshape(H, W, 3), confident.reshape(H, W), nearest, colour[confident]


def test_static_background_matches_brute_force():
    rng = np.random.default_rng(0)
    H, W = 18, 22
    frames, parsings = [], []
    for k in range(3):
        labels = np.full((H, W), BACKGROUND, np.uint8)
        cy, cx = 9, 4 + 6 * k
        labels[max(cy - 5, 0):cy + 6, cx:cx + 7] = CLOTH  # the "person" moves right
        frames.append(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
        parsings.append(labels_to_parsing(labels))
    bc = B.static_background(frames, parsings)
    colour, confident, nearest, confident_colours = _bc_brute_force(frames, parsings)
    assert confident.any() and not confident.all()
    np.testing.assert_array_equal(bc[confident], colour[confident])
    for p in np.flatnonzero(~confident.reshape(-1)):
        allowed = confident_colours[nearest[p]]
        assert (allowed == bc.reshape(-1, 3)[p]).all(1).any(), p


def test_static_background_never_shows_the_person():
    """A red person sliding over a background with no red at all: bc must contain no red, and every
    pixel the person ever left by more than 5 px shows the true background."""
    H, W = 40, 90
    yy, xx = np.mgrid[:H, :W]
    scene = np.stack([np.zeros_like(xx), 2 * xx, 5 * yy], -1).astype(np.uint8)  # R = 0 everywhere
    frames, parsings = [], []
    for x0 in range(20, 51, 10):
        labels = np.full((H, W), BACKGROUND, np.uint8)
        labels[8:, x0:x0 + 40] = CLOTH  # columns 50..59 are covered in every frame
        frame = scene.copy()
        frame[labels == CLOTH] = (255, 0, 0)
        frames.append(frame)
        parsings.append(labels_to_parsing(labels))
    bc = B.static_background(frames, parsings)
    assert bc[..., 0].max() == 0
    seen = np.zeros((H, W), bool)
    for p in parsings:
        person = ~np.all(p == 255, -1)
        seen |= cv2.distanceTransform((~person).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE) > 5
    np.testing.assert_array_equal(bc[seen], scene[seen])
    assert not seen[20:, 50:60].any()  # under the person in every frame: filled, still no red there


def test_static_background_edge_cases():
    with pytest.raises(ValueError, match="no frames"):
        B.static_background([], [])
    empty = labels_to_parsing(np.full((6, 7), BACKGROUND, np.uint8))
    frame = np.random.default_rng(1).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(B.static_background([frame], [empty]), frame)
    full = labels_to_parsing(np.full((6, 7), CLOTH, np.uint8))
    with pytest.raises(ValueError, match="covers every pixel"):
        B.static_background([frame], [full])


# ----------------------------------------------------------------------------- painted portrait
FACE_RGB, NECK_RGB, CLOTH_RGB, HAIR_RGB = (210, 160, 130), (200, 120, 100), (40, 40, 90), (60, 40, 30)
BC_RGB = (10, 200, 30)


def portrait(H=120, W=120):
    """Labels of a block portrait: hair on top, face, a narrow neck under it, cloth with shoulders
    rising right under the face at the sides; and a frame coloured region by region (+ small noise)."""
    labels = np.full((H, W), BACKGROUND, np.uint8)
    labels[2:10, 30:90] = HAIR
    labels[10:60, 30:90] = FACE
    labels[20:25, 35:43] = MOUTH
    labels[60:80, 45:75] = NECK
    labels[80:, :] = CLOTH
    labels[60:80, 30:45] = CLOTH
    labels[60:80, 75:90] = CLOTH
    colours = {BACKGROUND: (90, 90, 200), HAIR: HAIR_RGB, FACE: FACE_RGB, MOUTH: (70, 20, 30),
               NECK: NECK_RGB, CLOTH: CLOTH_RGB}
    frame = np.zeros((H, W, 3), np.uint8)
    for k, c in colours.items():
        frame[labels == k] = c
    noise = np.random.default_rng(0).integers(-3, 4, frame.shape)
    frame = np.clip(frame.astype(int) + noise, 0, 255).astype(np.uint8)
    bc = np.zeros_like(frame) + np.array(BC_RGB, np.uint8)
    return labels, labels_to_parsing(labels), frame, bc


def test_make_gt_replaces_only_background():
    labels, parsing, frame, bc = portrait()
    gt = B.make_gt(frame, parsing, bc)
    bg = labels == BACKGROUND
    np.testing.assert_array_equal(gt[bg], bc[bg])
    np.testing.assert_array_equal(gt[~bg], frame[~bg])


def test_make_torso_paints_under_the_head():
    labels, parsing, frame, bc = portrait()
    torso = B.make_torso(frame, parsing, bc)
    assert torso.shape == (120, 120, 4) and torso.dtype == np.uint8
    rgb, alpha = torso[..., :3], torso[..., 3]
    assert set(np.unique(alpha)) == {0, 255}
    # neck + cloth kept as they are
    kept = (labels == CLOTH) & (np.arange(120)[:, None] > 62)
    np.testing.assert_array_equal(rgb[kept], frame[kept])
    # neck columns: dilated top (57) pushed down to 61, painted 53 px up to row 9
    assert (alpha[9:62, 45:75] == 255).all() and (alpha[8, 45:75] == 0).all()
    inner = rgb[20:50, 50:70].reshape(-1, 3).astype(int)
    assert np.abs(inner - np.array(NECK_RGB)).max() <= 4  # blend of neck colours, blurred
    # shoulder columns: cloth top at row 60 under the face, extended 9 px up, darkening 0.98 per px
    assert (alpha[52:61, 31:44] == 255).all() and (alpha[51, 31:44] == 0).all()
    top = frame[60, 36].astype(np.float32)
    for k in range(9):
        np.testing.assert_array_equal(rgb[60 - k, 36], (top * 0.98 ** k).astype(np.uint8))
    # the face elsewhere and everything outside neck/cloth/paint: transparent black
    assert alpha[30, 40] == 0 and alpha[30, 85] == 0 and alpha[5, 60] == 0 and alpha[100 - 40, 10] == 0
    np.testing.assert_array_equal(rgb[alpha == 0], 0)


def test_make_bg_with_hair_keeps_hair_rim_and_background():
    labels, parsing, frame, bc = portrait()
    frame[5, 50] = 0  # a genuinely black hair pixel must survive (upstream would paint it with bc)
    teeth = np.zeros(labels.shape, bool)
    teeth[14:16, 84:87] = True  # in the face rim, which would otherwise be kept from the frame
    torso = B.make_torso(frame, parsing, bc)
    out = B.make_bg_with_hair(frame, parsing, teeth, torso, bc)
    keep = ((labels == HAIR) | (labels == BACKGROUND)) & (torso[..., 3] == 0)  # the neck paint may reach the hair
    np.testing.assert_array_equal(out[keep], frame[keep])
    assert tuple(out[5, 50]) == (0, 0, 0)
    np.testing.assert_array_equal(out[30, 40], BC_RGB)       # eroded face interior, no torso paint
    np.testing.assert_array_equal(out[22, 38], BC_RGB)       # mouth
    np.testing.assert_array_equal(out[14:16, 84:87].reshape(-1, 3), np.tile(BC_RGB, (6, 1)))  # teeth
    np.testing.assert_array_equal(out[30, 31], frame[30, 31])  # face rim (< 6 px from its edge) stays
    np.testing.assert_array_equal(out[30, 60], torso[30, 60, :3])  # neck painted up under the face
    np.testing.assert_array_equal(out[100, 10], frame[100, 10])  # cloth: torso image = frame there
    assert not (np.all(out == 0, -1) & ~(np.all(frame == 0, -1))).any()  # no hole left black


def test_make_bg_with_hair_soft_alpha_blends():
    labels, parsing, frame, bc = portrait()
    torso = B.make_torso(frame, parsing, bc)
    torso[100, 10, 3] = 128
    out = B.make_bg_with_hair(frame, parsing, None, torso, bc)
    # cloth pixel removed (0) then torso at half alpha over it
    expect = np.round(torso[100, 10, :3] * (128 / 255)).astype(np.uint8)
    np.testing.assert_array_equal(out[100, 10], expect)


# ----------------------------------------------------------------------------- drivers
def _data_dir(tmp_path, n=41):
    labels, parsing, frame, _ = portrait(64, 120)
    for i in range(n):
        shift = np.roll(frame, i % 7, axis=1)
        write_image(tmp_path / "ori_imgs" / f"{i}.jpg", shift, [cv2.IMWRITE_JPEG_QUALITY, 98])
        write_image(tmp_path / "parsing" / f"{i}.png", np.roll(parsing, i % 7, axis=1))
        save_teeth_mask(tmp_path / "teeth_mask" / f"{i}.npy", np.zeros(labels.shape, bool))
    return tmp_path


def test_run_background_and_derived_images(tmp_path):
    d = _data_dir(tmp_path)
    with pytest.raises(FileNotFoundError, match="bc.jpg"):
        B.run_derived_images(d, progress=False)
    assert "3 frames" in B.run_background(d)  # frames 0, 20, 40
    assert "skipped" in B.run_background(d)
    assert "41 of 41" in B.run_derived_images(d, progress=False)
    torso = cv2.imread(str(d / "torso_imgs" / "5.png"), cv2.IMREAD_UNCHANGED)
    assert torso.shape == (64, 120, 4)
    assert cv2.imread(str(d / "gt_imgs" / "5.jpg")).shape == (64, 120, 3)
    assert cv2.imread(str(d / "bg" / "5.png")).shape == (64, 120, 3)
    (d / "bg" / "7.png").unlink()
    assert "1 of 41" in B.run_derived_images(d, progress=False)
    assert "skipped" in B.run_derived_images(d, progress=False)
    assert not [p for p in d.rglob(".*") if p.is_file()]  # no temporary files left behind
    B.main([str(d), "--force", "--only", "bc"])


@pytest.mark.slow
@pytest.mark.parametrize("video,ids", [("video/german20s.mp4", (0, 40, 80, 120)),
                                       ("video/cnn2.mp4", (0, 60, 120, 180))])
def test_real_bc_has_no_person_where_the_person_stays(video, ids):
    """Both backdrops are blue and both anchors stay centred: at the nose and chin, bc is backdrop."""
    from data_utils.parsing import parse_frame
    from tests.data_utils.test_parsing import real_frames

    frames, lms = real_frames(video, ids)
    bc = B.static_background(frames, [parse_frame(f, l) for f, l in zip(frames, lms)])
    for l in lms:
        for idx in (1, 152, 10):  # nose tip, chin, forehead top
            x, y = np.round(l[idx, :2]).astype(int)
            r, g, b = bc[y, x].astype(int)
            assert b > r + 30, (idx, bc[y, x])

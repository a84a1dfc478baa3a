"""Face parsing: colour code, region geometry on real frames, a painted scene with known regions,
the run_parsing driver, and the BiSeNet backend through its real loading path (random weights)."""
from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from data_utils import parsing as P
from data_utils.mesh_topology import EYE_CORNERS, FACE_OVAL, LIPS_OUTER
from tests.conftest import shared_file
from utils.video_io import iter_frames

GERMAN_IDS = (0, 40, 80, 120)
CNN_IDS = (0, 60, 120, 180)


@functools.lru_cache(maxsize=None)
def real_frames(video_rel: str, ids: tuple[int, ...]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """RGB frames [H, W, 3] and MediaPipe refined face meshes [478, 3] (pixels) of a shared clip."""
    import mediapipe as mp

    path = shared_file(video_rel)
    frames = {}
    for i, rgb in enumerate(iter_frames(path)):
        if i in ids:
            frames[i] = rgb.copy()
        if i >= max(ids):
            break
    lms = []
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True) as fm:
        for i in ids:
            h, w = frames[i].shape[:2]
            res = fm.process(frames[i]).multi_face_landmarks[0].landmark
            lms.append(np.array([[p.x * w, p.y * h, p.z * w] for p in res], np.float32))
    return [frames[i] for i in ids], lms


def _fill(shape, pts) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 1)
    return m > 0


def _lower_edge(oval: np.ndarray) -> np.ndarray:
    """Per column, the last row of the oval mask (-1 where the column is empty)."""
    rows = np.arange(oval.shape[0])[:, None]
    return np.where(oval.any(0), np.where(oval, rows, -1).max(0), -1)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / max(float((a | b).sum()), 1.0)


# ----------------------------------------------------------------------------- colour code
def test_colour_code_round_trip_and_nearest():
    labels = np.tile(np.arange(6, dtype=np.uint8), (4, 1))  # [4, 6]: one column per region
    parsing = P.labels_to_parsing(labels)
    assert parsing.shape == (4, 6, 3) and parsing.dtype == np.uint8
    assert tuple(parsing[0, 1]) == (0, 0, 255) and tuple(parsing[0, 2]) == (100, 100, 100)
    np.testing.assert_array_equal(P.parsing_to_labels(parsing), labels)
    # off-palette colours (e.g. a JPEG-saved parsing) snap to the nearest palette colour
    noisy = np.clip(parsing.astype(int) + np.random.default_rng(0).integers(-6, 7, parsing.shape), 0, 255)
    np.testing.assert_array_equal(P.parsing_to_labels(noisy.astype(np.uint8)), labels)
    masks = P.region_masks(parsing)
    assert set(masks) == set(P.REGION_NAMES) and masks["hair"].sum() == 4


# ----------------------------------------------------------------------------- real frames
@pytest.fixture(scope="module", params=[("video/german20s.mp4", GERMAN_IDS), ("video/cnn2.mp4", CNN_IDS)],
                ids=["german", "cnn"])
def parsed(request):
    frames, lms = real_frames(*request.param)
    return frames, lms, [P.parse_frame(f, l) for f, l in zip(frames, lms)]


def test_real_only_allowed_colours(parsed):
    for p in parsed[2]:
        colours = {tuple(c) for c in np.unique(p.reshape(-1, 3), axis=0)}
        assert colours <= {tuple(c) for c in P.PALETTE}, colours


def test_real_face_covers_oval_and_stays_near_it(parsed):
    frames, lms, parsings = parsed
    for f, l, p in zip(frames, lms, parsings):
        labels = P.parsing_to_labels(p)
        oval = _fill(labels.shape, l[FACE_OVAL, :2])
        face = (labels == P.FACE) | (labels == P.MOUTH)
        assert face[oval].mean() > 0.999
        # the forehead grows up to the hairline but never past the stretched polygon, nor double the oval
        assert not (face & ~_fill(labels.shape, P.forehead_polygon(l[:, :2].astype(np.float64))) & ~oval).any()
        assert oval.sum() < face.sum() < 1.5 * oval.sum()


def test_real_mouth_inside_lips(parsed):
    frames, lms, parsings = parsed
    for l, p in zip(lms, parsings):
        mouth = P.parsing_to_labels(p) == P.MOUTH
        lips = cv2.dilate(_fill(mouth.shape, l[LIPS_OUTER, :2]).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        assert mouth.any() and not (mouth & ~lips).any()


def test_real_hair_outside_face_above_eyes_or_beside(parsed):
    frames, lms, parsings = parsed
    for l, p in zip(lms, parsings):
        labels = P.parsing_to_labels(p)
        hair = labels == P.HAIR
        oval = _fill(labels.shape, l[FACE_OVAL, :2])
        assert hair.sum() > 0.3 * oval.sum()  # both subjects have a full head of hair
        assert not (hair & oval).any()
        ys, xs = np.nonzero(hair)
        eye_y = l[EYE_CORNERS, 1].mean()
        x_lo, x_hi = l[FACE_OVAL, 0].min(), l[FACE_OVAL, 0].max()
        ok = (ys < eye_y) | (xs < x_lo) | (xs > x_hi)
        assert ok.mean() > 0.95, ok.mean()
        # nothing of the hair below the ear lobes' level
        assert ys.max() <= max(l[P.SIDE_ENDS[0], 1], l[P.SIDE_ENDS[1], 1]) + 1


def test_real_neck_below_jaw_and_cloth_below_neck(parsed):
    frames, lms, parsings = parsed
    n_with_neck = 0
    for l, p in zip(lms, parsings):
        labels = P.parsing_to_labels(p)
        neck, cloth = labels == P.NECK, labels == P.CLOTH
        lower = _lower_edge(_fill(labels.shape, l[FACE_OVAL, :2]))
        ys, xs = np.nonzero(neck)
        assert (ys > lower[xs]).all()  # every neck pixel lies under the jaw line of its column
        n_with_neck += neck.sum() > 50
        assert cloth[-5:].mean() > 0.3  # clothes fill the bottom of these framings
        assert not cloth[: int(l[EYE_CORNERS, 1].mean())].any()
        assert (labels[:5, :5] == P.BACKGROUND).all()
    assert n_with_neck >= len(parsings) // 2


def test_real_hair_top_follows_outline_cnn():
    """cnn2's backdrop is a smooth blue: where it stops, the hair starts. Compare per column."""
    frames, lms = real_frames("video/cnn2.mp4", CNN_IDS)
    for f, l in zip(frames, lms):
        labels = P.parse_labels(f, l)
        person_top = np.where(labels != P.BACKGROUND, np.arange(f.shape[0])[:, None], 10**6).min(0)
        xs = np.arange(int(l[FACE_OVAL, 0].min()) + 15, int(l[FACE_OVAL, 0].max()) - 15)
        rgb = f.astype(np.int32)
        blue_ness = rgb[..., 2] - rgb[..., 0]  # backdrop ~ +150..250, hair ~ 0
        # the edge: first row darker-than-backdrop by half the backdrop-to-hair step
        true_top = np.array([np.argmax(blue_ness[:, x] < 0.5 * blue_ness[:5, x].mean()) for x in xs])
        err = np.abs(person_top[xs] - true_top)
        assert np.median(err) <= 3 and np.percentile(err, 90) <= 6, (np.median(err), np.percentile(err, 90))


# ----------------------------------------------------------------------------- painted scene
SKIN, NECK_SKIN, HAIR_RGB = (205, 150, 125), (150, 100, 85), (70, 45, 30)
BACKDROP, SUIT, SHIRT, TIE = (40, 70, 170), (30, 30, 70), (240, 240, 240), (190, 60, 120)


def painted_scene(lms: np.ndarray, hairline: float = 1.4):
    """A frame painted region by region around real landmarks, and the labels each paint stands for."""
    H = W = 512
    xy = lms[:, :2].astype(np.float64)
    img = np.zeros((H, W, 3), np.uint8)
    truth = np.zeros((H, W), np.uint8)

    def paint(mask, colour, label):
        img[mask] = colour
        truth[mask] = label

    paint(np.ones((H, W), bool), BACKDROP, P.BACKGROUND)
    centre = xy[EYE_CORNERS].mean(0)
    hair = P.forehead_polygon(xy, 2.4)
    paint(_fill((H, W), centre + (hair - centre) * [1.2, 1.0]), HAIR_RGB, P.HAIR)
    shoulders = int(max(xy[P.SIDE_ENDS[0], 1], xy[P.SIDE_ENDS[1], 1])) + 40
    suit = np.zeros((H, W), bool)
    suit[shoulders:] = True
    paint(suit, SUIT, P.CLOTH)
    chin = xy[P.CHIN]
    shirt = np.array([[chin[0] - 70, chin[1] + 20], [chin[0] + 70, chin[1] + 20], [chin[0] + 50, H], [chin[0] - 50, H]])
    paint(_fill((H, W), shirt), SHIRT, P.CLOTH)
    tie = np.zeros((H, W), bool)  # right under the neck; skin-like r - b but far lower g: not neck
    tie[int(chin[1]) + 40:int(chin[1]) + 140, int(chin[0]) - 14:int(chin[0]) + 14] = True
    paint(tie, TIE, P.CLOTH)
    jaw = xy[[172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397]]
    neck = np.concatenate([jaw, (jaw + [0, 45])[::-1]])
    paint(_fill((H, W), neck), NECK_SKIN, P.NECK)
    paint(_fill((H, W), P.forehead_polygon(xy, hairline)) | _fill((H, W), xy[FACE_OVAL]), SKIN, P.FACE)
    paint(_fill((H, W), xy[LIPS_OUTER]), (170, 80, 80), P.FACE)
    paint(_fill((H, W), xy[P.LIPS_INNER]), (60, 20, 25), P.MOUTH)
    person = (truth != P.BACKGROUND).astype(np.float32)
    return img, truth, person


def test_painted_scene_regions_recovered():
    _, lms = real_frames("video/german20s.mp4", GERMAN_IDS)
    for l in lms[:2]:
        img, truth, person = painted_scene(l)
        labels = P.parse_labels(img, l, person)
        for k, floor in [(P.FACE, 0.97), (P.HAIR, 0.95), (P.NECK, 0.85), (P.CLOTH, 0.97), (P.MOUTH, 0.9)]:
            iou = _iou(labels == k, truth == k)
            assert iou > floor, (P.REGION_NAMES[k], iou)
        np.testing.assert_array_equal(labels == P.BACKGROUND, truth == P.BACKGROUND)


def test_painted_scene_face_follows_painted_hairline():
    """Move the painted hairline: the face region must move with it (colour decides, not the polygon)."""
    _, lms = real_frames("video/german20s.mp4", GERMAN_IDS)
    l = lms[0]
    areas = []
    for hairline in (1.2, 1.6):
        img, truth, person = painted_scene(l, hairline)
        face = P.parse_labels(img, l, person) == P.FACE
        assert _iou(face, truth == P.FACE) > 0.97
        areas.append(face.sum())
    assert areas[1] > areas[0] * 1.05


def test_face_partly_or_fully_out_of_frame():
    _, lms = real_frames("video/german20s.mp4", GERMAN_IDS)
    img, truth, person = painted_scene(lms[0])
    half = lms[0].copy()
    half[:, 0] -= 200  # half the face off the left edge
    labels = P.parse_labels(img, half, person)
    oval = _fill(labels.shape, half[FACE_OVAL, :2])
    assert oval.any() and ((labels == P.FACE) | (labels == P.MOUTH))[oval].all()
    assert (labels[~oval & (person == 0)] == P.BACKGROUND).all()
    gone = lms[0].copy()
    gone[:, 0] -= 1000  # the head is gone: nothing to call face, the person is still there
    labels = P.parse_labels(img, gone, person)
    np.testing.assert_array_equal(labels == P.BACKGROUND, person == 0)
    assert not (labels == P.FACE).any()


# ----------------------------------------------------------------------------- driver
def _tiny_data_dir(tmp_path: Path, frames, lms, stacked: bool = True) -> Path:
    (tmp_path / "ori_imgs").mkdir()
    for i, (f, l) in enumerate(zip(frames, lms)):
        cv2.imwrite(str(tmp_path / "ori_imgs" / f"{i}.jpg"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        if not stacked:
            np.save(tmp_path / "ori_imgs" / f"{i}.npy", l)
    if stacked:
        np.save(tmp_path / "landmarks.npy", np.stack(lms))
    return tmp_path


def test_run_parsing_writes_resumes_and_forces(tmp_path):
    frames, lms = real_frames("video/german20s.mp4", GERMAN_IDS)
    d = _tiny_data_dir(tmp_path, frames[:2], lms[:2], stacked=False)
    assert "2 of 2" in P.run_parsing(d, progress=False)
    out = P.load_parsing(d, 1)
    assert out.shape == frames[1].shape and {tuple(c) for c in np.unique(out.reshape(-1, 3), axis=0)} <= {
        tuple(c) for c in P.PALETTE}
    assert not list((d / "parsing").glob(".*"))  # no temporary files left
    (d / "parsing" / "0.png").unlink()
    mtime = (d / "parsing" / "1.png").stat().st_mtime_ns
    assert "1 of 2" in P.run_parsing(d, progress=False)
    assert (d / "parsing" / "1.png").stat().st_mtime_ns == mtime
    assert "skipped" in P.run_parsing(d, progress=False)
    assert "2 of 2" in P.run_parsing(d, force=True, progress=False)


def test_run_parsing_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="ori_imgs"):
        P.run_parsing(tmp_path, progress=False)
    (tmp_path / "ori_imgs").mkdir()
    cv2.imwrite(str(tmp_path / "ori_imgs" / "0.jpg"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(FileNotFoundError, match=r"0\.npy"):
        P.run_parsing(tmp_path, progress=False)
    with pytest.raises(ValueError, match="backend"):
        P.run_parsing(tmp_path, backend="nope", progress=False)


def test_cli_main_writes_sheet(tmp_path, capsys):
    frames, lms = real_frames("video/german20s.mp4", GERMAN_IDS)
    (tmp_path / "d").mkdir()
    d = _tiny_data_dir(tmp_path / "d", frames[:2], lms[:2])
    P.main([str(d), "--sheet", str(tmp_path / "sheet.png")])
    assert "2 of 2" in capsys.readouterr().out
    sheet = cv2.imread(str(tmp_path / "sheet.png"))
    assert sheet is not None and sheet.shape[1] == 4 * 256
    with pytest.raises(SystemExit, match="error: .*ori_imgs"):
        P.main([str(tmp_path / "missing")])


# ----------------------------------------------------------------------------- BiSeNet backend
def test_bisenet_class_colours_follow_degstalk():
    from data_utils.parsing_bisenet import CLASS_TO_REGION

    colour = lambda c: tuple(P.PALETTE[CLASS_TO_REGION[c]])  # noqa: E731
    assert colour(0) == (255, 255, 255)
    assert all(colour(c) == (0, 0, 255) for c in (1, 2, 3, 4, 5, 6, 10, 12, 13, 18))
    assert colour(11) == (100, 100, 100)
    assert colour(14) == colour(15) == (0, 255, 0)
    assert colour(16) == (255, 0, 0)
    assert all(colour(c) == (0, 0, 0) for c in (7, 8, 9, 17))  # ears count as hair (DEGSTalk)


def test_bisenet_checkpoint_layout_matches_face_parsing_pytorch():
    from data_utils.parsing_bisenet import BiSeNet

    net = BiSeNet(19)
    keys = set(net.state_dict())
    for k in ("cp.resnet.conv1.weight", "cp.resnet.layer2.0.downsample.0.weight", "cp.arm16.conv_atten.weight",
              "cp.arm32.bn_atten.running_var", "cp.conv_avg.conv.weight", "ffm.convblk.conv.weight",
              "ffm.conv2.weight", "conv_out.conv_out.weight", "conv_out16.conv.bn.weight"):
        assert k in keys, k
    assert sum(p.numel() for p in net.parameters()) == 13_300_416  # ~53 MB float32, as 79999_iter.pth
    out, out16, out32 = net.eval()(torch.zeros(1, 3, 64, 64), aux=True)
    assert out.shape == out16.shape == out32.shape == (1, 19, 64, 64)


def test_bisenet_loads_user_weights_and_parses(tmp_path, monkeypatch):
    from data_utils import parsing_bisenet as B

    torch.manual_seed(0)
    net = B.BiSeNet(19)
    weights = tmp_path / "79999_iter.pth"
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, weights)  # DataParallel-style keys
    monkeypatch.setattr(B, "INPUT_SIZE", 64)  # the real size is 512: same code, faster test
    parser = B.BiSeNetParser.from_weights(weights)
    for p_loaded, p_saved in zip(parser.net.parameters(), net.parameters()):
        torch.testing.assert_close(p_loaded, p_saved)
    rgb = np.random.default_rng(0).integers(0, 255, (48, 40, 3), dtype=np.uint8)
    classes = parser.classes(rgb)
    assert classes.shape == (48, 40) and classes.max() < 19
    parsing = parser(rgb)
    np.testing.assert_array_equal(parsing, P.PALETTE[B.CLASS_TO_REGION[classes]])
    # the driver path
    d = tmp_path / "d"
    (d / "ori_imgs").mkdir(parents=True)
    cv2.imwrite(str(d / "ori_imgs" / "0.jpg"), rgb)
    assert "1 of 1" in P.run_parsing(d, backend="bisenet", weights=weights, progress=False)
    assert P.load_parsing(d, 0).shape == (48, 40, 3)


def test_bisenet_missing_or_wrong_weights_give_one_clear_error(tmp_path):
    from data_utils import parsing_bisenet as B

    with pytest.raises(FileNotFoundError, match=r"79999_iter\.pth"):
        B.load_bisenet(tmp_path / "79999_iter.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="not a 19-class"):
        B.load_bisenet(bad)

"""Landmarks: index sets, the iBUG map, gap filling, file formats, both detectors on a real cut."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from data_utils import mesh_topology as mt
from data_utils.frames import PreprocessError
from data_utils.landmarks import fill_gaps, find_runs, format_lms, load_lms
from tests.data_utils.test_process import cut_clip


# ----------------------------------------------------------------------------- topology
@pytest.mark.parametrize("loop, conns", [
    ("FACE_OVAL", "FACEMESH_FACE_OVAL"), ("LIPS_OUTER", "FACEMESH_LIPS"), ("LIPS_INNER", "FACEMESH_LIPS"),
    ("LEFT_EYE", "FACEMESH_LEFT_EYE"), ("RIGHT_EYE", "FACEMESH_RIGHT_EYE"),
    ("LEFT_IRIS", "FACEMESH_LEFT_IRIS"), ("RIGHT_IRIS", "FACEMESH_RIGHT_IRIS")])
def test_loops_follow_mediapipe_connections(loop, conns):
    from mediapipe.python.solutions import face_mesh_connections as fmc

    edges = {frozenset(e) for e in getattr(fmc, conns)}
    idx = getattr(mt, loop)
    steps = {frozenset((a, b)) for a, b in zip(idx, idx[1:] + idx[:1])}
    assert steps <= edges, steps - edges


def test_brows_jaw_and_ibug_map_use_valid_points():
    from mediapipe.python.solutions import face_mesh_connections as fmc

    brow_pts = {i for e in fmc.FACEMESH_LEFT_EYEBROW | fmc.FACEMESH_RIGHT_EYEBROW for i in e}
    assert set(mt.LEFT_BROW) | set(mt.RIGHT_BROW) == brow_pts
    assert set(mt.JAW_LINE) <= set(mt.FACE_OVAL)
    assert len(set(mt.MP_TO_IBUG68)) == 68 and max(mt.MP_TO_IBUG68) < mt.N_MESH_POINTS
    assert set(mt.MP_TO_IBUG68[:17]) <= set(mt.JAW_LINE)
    assert set(mt.MP_TO_IBUG68[48:60]) <= set(mt.LIPS_OUTER) and set(mt.MP_TO_IBUG68[60:]) <= set(mt.LIPS_INNER)
    assert not set(mt.RIGID) & (set(mt.LIPS_OUTER) | set(mt.LIPS_INNER) | set(mt.JAW_LINE[3:-3]))


# ----------------------------------------------------------------------------- gaps and formats
def test_fill_gaps_interpolates_short_gaps_and_names_long_ones():
    vals = np.arange(10, dtype=np.float32)[:, None, None] * np.ones((1, 2, 3), np.float32)
    missing = np.zeros(10, bool)
    missing[[0, 4, 5]] = True
    out = fill_gaps(vals, missing, max_gap=2)
    assert out[4, 0, 0] == pytest.approx(4.0) and out[5, 0, 0] == pytest.approx(5.0)
    assert out[0, 0, 0] == pytest.approx(1.0)           # an edge copies the nearest valid frame
    assert find_runs(missing) == [(0, 0), (4, 5)]
    missing[2:8] = True
    with pytest.raises(PreprocessError, match="frames 2-8"):
        fill_gaps(vals, missing | (np.arange(10) == 8), max_gap=5)
    with pytest.raises(PreprocessError, match="any frame"):
        fill_gaps(vals, np.ones(10, bool))


def test_lms_text_round_trip(tmp_path):
    pts = np.random.default_rng(0).uniform(0, 512, (68, 2)).astype(np.float32)
    text = format_lms(pts)
    assert text.count("\n") == 68 and len(text.splitlines()[0].split()) == 2
    (tmp_path / "a.lms").write_text(text)
    assert np.allclose(load_lms(tmp_path / "a.lms"), pts, atol=1e-5)


# ----------------------------------------------------------------------------- detectors on a real cut
@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory):
    from data_utils.frames import run_frames

    d = tmp_path_factory.mktemp("lm") / "cut"
    cut_clip(d / "cut.mp4", start=6.0, duration=0.4)
    run_frames(d)
    return d


def test_tasks_detector_outputs(frames_dir):
    from data_utils.landmarks import face_landmarker_path, run_landmarks

    if not face_landmarker_path().is_file():
        pytest.skip(f"{face_landmarker_path()} missing (run scripts/fetch_models.py)")
    summary = run_landmarks(frames_dir, force=True, detector="tasks", progress=False)
    assert "tasks" in summary
    n = 10
    lms = np.load(frames_dir / "landmarks.npy")
    assert lms.shape == (n, 478, 3) and lms.dtype == np.float32
    for i in (0, n - 1):
        per = np.load(frames_dir / "ori_imgs" / f"{i}.npy")
        assert np.array_equal(per, lms[i])
        assert np.allclose(load_lms(frames_dir / "ori_imgs" / f"{i}.lms"), per[mt.MP_TO_IBUG68, :2], atol=1e-4)
    assert np.load(frames_dir / "blendshapes.npy").shape == (n, 52)
    tf = np.load(frames_dir / "face_transforms.npy")
    assert tf.shape == (n, 4, 4) and np.allclose(tf[:, 3], [0, 0, 0, 1])
    # z is MediaPipe's z times the width: the face's depth extent is comparable to its width
    assert 0.2 < np.ptp(lms[0, :, 2]) / np.ptp(lms[0, :, 0]) < 1.2
    # iBUG semantics on a frontal face: eyes left to right, nose tip between eyes and mouth, chin lowest
    p = lms[0, mt.MP_TO_IBUG68, :2]
    assert p[36, 0] < p[39, 0] < p[42, 0] < p[45, 0]
    assert p[27, 1] < p[30, 1] < p[51, 1] < p[57, 1] < p[8, 1]
    assert p[8, 1] == p[:17, 1].max() and p[48, 0] < p[54, 0]


def test_legacy_detector_agrees_and_step_is_resumable(frames_dir):
    from data_utils.landmarks import face_landmarker_path, run_landmarks

    run_landmarks(frames_dir, force=True, detector="legacy", progress=False)
    legacy = np.load(frames_dir / "landmarks.npy")
    assert json.loads((frames_dir / "landmarks.json").read_text())["detector"] == "legacy"
    assert not (frames_dir / "blendshapes.npy").exists()
    stamp = (frames_dir / "landmarks.npy").stat().st_mtime_ns
    assert "skipped" in run_landmarks(frames_dir, detector="legacy", progress=False)
    assert (frames_dir / "landmarks.npy").stat().st_mtime_ns == stamp
    if face_landmarker_path().is_file():
        run_landmarks(frames_dir, force=True, detector="tasks", progress=False)
        tasks = np.load(frames_dir / "landmarks.npy")
        err = np.linalg.norm(tasks[..., :2] - legacy[..., :2], axis=-1)
        assert np.median(err) < 4.0, np.median(err)


def test_auto_falls_back_to_legacy_without_the_task_file(frames_dir, monkeypatch, caplog, tmp_path):
    from data_utils.landmarks import TASK_ENV, make_detector

    monkeypatch.setenv(TASK_ENV, str(tmp_path / "absent.task"))
    with caplog.at_level(logging.WARNING):
        det = make_detector("auto")
    det.close()
    assert det.name == "legacy"
    assert any("absent.task" in r.getMessage() for r in caplog.records)
    with pytest.raises(PreprocessError, match="absent.task"):
        make_detector("tasks")

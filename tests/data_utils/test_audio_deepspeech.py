"""`deepspeech`: everything but the graph call is numpy and checked here; the graph needs the user's files."""
from __future__ import annotations

import numpy as np
import pytest

from data_utils.audio import deepspeech as ds
from data_utils.audio.errors import MissingModelError
from data_utils.audio.windowing import unwindow_frames
from data_utils.audio_features import extract_features, main
from tests.fixtures.patches import uninstall

# MFCC rows 0, 9 and 18 of the signal in `_reference_signal`, computed once with
# python_speech_features 0.6 (mfcc(x, samplerate=16000, numcep=26)), the library upstream used.
REFERENCE_MFCC = {
    0: [18.558691, 5.322034, -23.926708, 4.563072, -20.768523, -54.164594, -10.913478, -9.263706, -40.710586,
        12.493774, 47.576478, -0.152827, -3.277054, 22.147497, -5.256059, -19.690251, -0.158479, -2.455876,
        -6.649537, 3.987676, 3.958259, -0.368640, 0.277976, -0.288551, 0.457034, 1.142529],
    9: [18.639841, 5.118620, -18.481094, 24.865435, -26.743560, -67.951030, 0.021612, -6.172368, -33.499654,
        23.212806, 32.676002, 0.940374, 11.243953, 12.344641, -7.093230, -12.667693, -4.939585, -0.008428,
        -2.944248, -0.127572, 4.456720, 0.936278, -0.290369, -0.339378, -0.736180, 2.443782],
    18: [18.465038, 3.626063, -18.063033, 32.494185, -42.709683, -41.569426, -15.562109, -9.541794, -0.891756,
         -16.530043, 55.964200, 5.819860, -18.246118, 40.710733, -21.664857, -16.643869, 7.547297, -10.723011,
         -0.301917, 0.024989, 2.785456, 0.925560, -0.303381, -0.457836, 0.345927, 0.425118],
}


def _reference_signal() -> np.ndarray:
    t = np.arange(3200) / 16000
    return np.round(3000 * np.sin(2 * np.pi * 440 * t) + 1000 * np.sin(2 * np.pi * 2500 * t)
                    + 300 * np.sin(2 * np.pi * 6100 * t ** 1.5))


def test_mfcc_matches_python_speech_features():
    feats = ds.mfcc(_reference_signal())
    assert feats.shape == (19, 26)
    for row, expect in REFERENCE_MFCC.items():
        np.testing.assert_allclose(feats[row], expect, rtol=1e-5, atol=2e-5, err_msg=f"row {row}")


def test_mfcc_frame_count():
    assert ds.mfcc(np.ones(100)).shape == (1, 26)  # shorter than one 25 ms window
    assert ds.mfcc(np.ones(401)).shape == (2, 26)
    assert ds.mfcc(np.ones(16000)).shape == (99, 26)  # 1 + ceil((16000 - 400) / 160)


def test_input_vector_layout_and_normalisation():
    audio = (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
    rows = ds.deepspeech_input(audio)
    assert rows.shape == (50, 494)  # every 2nd of 99 MFCC frames
    assert abs(rows.mean()) < 1e-5 and rows.std() == pytest.approx(1.0, abs=1e-4)
    # Row t holds MFCC frames 2(t-9) .. 2(t+9) context-major; zeros (before normalising) at the edges.
    mf = ds.mfcc(np.clip(audio.astype(np.float64) * 32768, -32768, 32767).astype(np.int16).astype(np.float64))[::2]
    raw = np.concatenate([np.zeros((9, 26)), mf, np.zeros((9, 26))])
    ctx = np.stack([raw[t:t + 19].reshape(-1) for t in range(50)])
    np.testing.assert_allclose(rows, (ctx - ctx.mean()) / ctx.std(), atol=1e-4)


def test_resample_steps_to_round_len_times_50():
    logits = np.arange(10, dtype=np.float32)[:, None].repeat(29, axis=1)
    out = ds.resample_steps(logits, 12)
    assert out.shape == (12, 29)
    np.testing.assert_allclose(out[:10, 0], np.arange(10))
    np.testing.assert_allclose(out[10:, 0], 9.0)  # held at the last value
    np.testing.assert_allclose(ds.resample_steps(logits, 4, rate_in=50, rate_out=25)[:, 3], [0, 2, 4, 6])


def test_rows_are_fed_in_overlapping_chunks():
    rows = np.random.default_rng(2).standard_normal((1000, 494)).astype(np.float32)
    seen = []

    def net(x):
        seen.append(x.shape[0])
        return np.cumsum(x[:, :29], axis=0) * 0 + x[:, :29]  # row-local "network"

    out = ds.run_rows_chunked(rows, net, chunk=300, context=40)
    np.testing.assert_array_equal(out, rows[:, :29])
    assert max(seen) == 380 and len(seen) == 4


def test_full_path_with_a_stand_in_graph():
    """Everything but the TensorFlow call: a linear stand-in for the graph."""
    rng = np.random.default_rng(3)
    weights = rng.standard_normal((494, 29)).astype(np.float32) * 0.05
    audio = (0.1 * rng.standard_normal(int(16000 * 2.03))).astype(np.float32)
    feats = extract_features(audio, "deepspeech", net_fn=lambda rows: rows @ weights)
    assert feats.array.shape == (51, 16, 29)  # round(2.03 * 25) = 51 (50.75)
    stream = unwindow_frames(feats.array)  # [102, 29]
    padded = np.pad(audio, (0, 51 * 640 - audio.shape[0]))  # audio is padded to whole video frames first
    expect = ds.deepspeech_input(padded) @ weights  # [102, 29]: 203 MFCC frames, every 2nd
    assert expect.shape == (102, 29)
    np.testing.assert_allclose(stream, expect, atol=1e-4)
    assert np.all(feats.array[0, :8] == 0)  # window 0 starts with 8 zero-padded steps


def test_missing_graph_names_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv("DEEPSPEECH_PB", raising=False)
    with pytest.raises(MissingModelError, match=r"deepspeech-0_1_0-b90017e8\.pb.*\.tensorflow/models"):
        extract_features(np.zeros(16000, np.float32), "deepspeech", graph_path=tmp_path / "nothere.pb")


def test_missing_tensorflow_names_the_file(tmp_path, monkeypatch):
    graph = tmp_path / ds.GRAPH_NAME
    graph.write_bytes(b"not a real graph")
    uninstall(monkeypatch, 'tensorflow')
    ds.load_graph.cache_clear()
    with pytest.raises(MissingModelError, match=r"needs tensorflow.*deepspeech-0_1_0-b90017e8\.pb"):
        extract_features(np.zeros(16000, np.float32), "deepspeech", graph_path=tmp_path)  # a folder works too


def test_cli_reports_missing_graph_in_one_line(tmp_path, capsys, monkeypatch):
    import soundfile as sf

    monkeypatch.setenv("DEEPSPEECH_PB", str(tmp_path / "nothere.pb"))
    sf.write(tmp_path / "a.wav", np.zeros(16000, np.float32), 16000)
    assert main(["--wav", str(tmp_path / "a.wav"), "--extractor", "deepspeech", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: DeepSpeech graph not found") and "nothere.pb" in err


def test_graph_call_with_tensorflow(tmp_path):
    """The real loading path on a stand-in frozen graph with DeepSpeech 0.1.0's tensor names and
    time-major output. Runs only where the optional tensorflow is installed."""
    tf = pytest.importorskip("tensorflow")
    weights = np.random.default_rng(4).standard_normal((494, 29)).astype(np.float32) * 0.05
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [1, None, 494], name="input_node")
        tf.compat.v1.placeholder(tf.int32, [None], name="input_lengths")
        tf.identity(tf.einsum("bti,io->tbo", x, tf.constant(weights)), name="logits")  # [T, 1, 29]
    path = tmp_path / ds.GRAPH_NAME
    path.write_bytes(graph.as_graph_def().SerializeToString())
    ds.load_graph.cache_clear()
    audio = (0.1 * np.random.default_rng(5).standard_normal(16000)).astype(np.float32)
    feats = extract_features(audio, "deepspeech", graph_path=path)
    np.testing.assert_allclose(unwindow_frames(feats.array), ds.deepspeech_input(audio) @ weights, atol=1e-4)

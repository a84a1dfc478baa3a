"""Windowing into [N, 16, C] / [N, 2, C] and chunked processing of long audio."""
from __future__ import annotations

import numpy as np
import pytest

from data_utils.audio.chunking import n_steps, run_chunked
from data_utils.audio.windowing import fit_frames, pair_frames, shift_frames, unwindow_frames, window_frames


def _ramp(t: int, c: int = 3) -> np.ndarray:
    """Step j, channel k holds 1 + j + 1000 k: every value says where it came from."""
    return (1.0 + np.arange(t)[:, None] + 1000.0 * np.arange(c)[None]).astype(np.float32)


def test_window_i_covers_steps_2i_minus_8_to_2i_plus_7():
    n = 12
    frames = _ramp(2 * n)
    win = window_frames(frames, n)
    assert win.shape == (n, 16, 3)
    for i in range(n):
        for k in range(16):
            step = 2 * i - 8 + k
            expect = frames[step] if 0 <= step < 2 * n else np.zeros(3)
            np.testing.assert_array_equal(win[i, k], expect, err_msg=f"window {i} slot {k}")


def test_window_fits_stream_length_to_2n():
    frames = _ramp(21)  # one step short of 2 * 11 -> last step repeated; extra steps cut
    win = window_frames(frames, 11)
    np.testing.assert_array_equal(win[10, 9], frames[20])  # step 21 = repeat of step 20
    np.testing.assert_array_equal(unwindow_frames(window_frames(_ramp(30), 11)), _ramp(22))


def test_unwindow_inverts_window():
    frames = np.random.default_rng(0).standard_normal((40, 5)).astype(np.float32)
    np.testing.assert_array_equal(unwindow_frames(window_frames(frames, 20)), frames)


def test_pair_frames():
    frames = _ramp(9)
    pairs = pair_frames(frames, 5)
    assert pairs.shape == (5, 2, 3)
    np.testing.assert_array_equal(pairs[2], frames[4:6])
    np.testing.assert_array_equal(pairs[4, 1], frames[8])  # step 9 missing -> repeat of step 8


def test_fit_and_shift():
    frames = _ramp(5)
    assert fit_frames(frames, 3).shape == (3, 3)
    np.testing.assert_array_equal(fit_frames(frames, 7)[5:], frames[[4, 4]])
    shifted = shift_frames(frames, 2)
    np.testing.assert_array_equal(shifted[:3], frames[2:])
    np.testing.assert_array_equal(shifted[3:], frames[[4, 4]])
    assert shift_frames(frames, 0) is frames


def _local_fn(audio: np.ndarray) -> np.ndarray:
    """A frame function with a 2-step receptive field: step j = mean of samples 320j-640 .. 320j+640."""
    t = audio.shape[0] // 320 + 1
    padded = np.pad(audio, 640)
    return np.stack([padded[320 * j:320 * j + 1280].reshape(4, 320).mean(axis=1) for j in range(t)])


def test_chunked_equals_one_pass_for_a_local_model():
    audio = np.random.default_rng(1).standard_normal(16000 * 7 + 123).astype(np.float32)
    one = _local_fn(audio)
    chunked = run_chunked(audio, _local_fn, chunk_s=1.0, context_s=0.1)
    assert chunked.shape == one.shape == (n_steps(audio.shape[0]), 4)
    # Edges of the whole clip see zero padding in both; every interior step must match exactly.
    np.testing.assert_allclose(chunked, one, atol=1e-6)


def test_chunked_without_context_shows_seams():
    """The same local model with no overlap differs at the seams: context is what hides them."""
    audio = np.random.default_rng(1).standard_normal(16000 * 3).astype(np.float32)
    one = _local_fn(audio)
    chunked = run_chunked(audio, _local_fn, chunk_s=1.0, context_s=0.0)
    bad = set(np.flatnonzero(np.abs(chunked[:150] - one[:150]).max(axis=1) > 1e-6))
    assert bad and bad <= {48, 49, 50, 51, 98, 99, 100, 101}, bad  # only next to the seams at 50, 100


def test_chunked_pads_models_that_return_fewer_steps():
    def short_fn(audio):  # HuBERT-like: (s - 400) // 320 + 1 steps, step j reads samples 320j ..
        t = (audio.shape[0] - 400) // 320 + 1
        return audio[: 320 * t : 320, None]

    audio = np.arange(16000 * 3, dtype=np.float32)  # each sample holds its own index
    out = run_chunked(audio, short_fn, chunk_s=1.0, context_s=0.2)
    assert out.shape == (151, 1)
    np.testing.assert_array_equal(out[:149, 0] / 320, np.arange(149))  # aligned to the global grid
    assert out[150, 0] == out[149, 0]  # missing last steps repeat the last one


@pytest.mark.parametrize("n_samples", [1, 319, 320, 16000 * 2 + 5])
def test_chunked_short_audio(n_samples):
    audio = np.ones(n_samples, dtype=np.float32)
    out = run_chunked(audio, lambda a: np.ones((a.shape[0] // 320 + 1, 2)), chunk_s=1.0, context_s=0.5)
    assert out.shape == (n_samples // 320 + 1, 2)


def test_seams_are_cross_faded():
    """A model whose output only says which chunk it ran in: the stitch ramps linearly at the seams."""
    audio = np.zeros(16000 * 3 - 320, dtype=np.float32)  # exactly 150 steps: three chunks of 50
    calls = []

    def chunk_id_fn(chunk):
        calls.append(chunk.shape[0])
        return np.full((chunk.shape[0] // 320 + 1, 1), float(len(calls)), dtype=np.float32)

    out = run_chunked(audio, chunk_id_fn, chunk_s=1.0, context_s=0.4, blend_s=0.2)[:, 0]  # seams at 50, 100
    assert len(calls) == 3 and out.shape == (150,)
    np.testing.assert_allclose(out[:40], 1.0)
    np.testing.assert_allclose(out[60:90], 2.0)
    np.testing.assert_allclose(out[110:], 3.0)
    np.testing.assert_allclose(out[40:60], 1.0 + (np.arange(40, 60) - 40 + 0.5) / 20, atol=1e-6)  # linear ramp
    hard = run_chunked(audio, lambda c: np.full((c.shape[0] // 320 + 1, 1), float(c.shape[0])), chunk_s=1.0,
                       context_s=0.4, blend_s=0.0)[:, 0]
    assert hard[49] != hard[50] and len(set(hard[:50])) == 1  # blend 0: a hard cut exactly at the seam

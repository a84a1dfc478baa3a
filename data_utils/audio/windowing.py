"""Shaping 50-fps feature streams into per-video-frame arrays at 25 fps.

Two layouts exist upstream and both are reproduced here:

* windows (DeepSpeech style, also used for phoneme / pocketsphinx / mel): the 50-fps stream
  [T, C] is zero-padded by 8 steps on each side and cut into windows of 16 steps with stride 2,
  so window i covers 50-fps steps 2i-8 .. 2i+7 -> [N, 16, C];
* pairs (HuBERT style): two consecutive 50-fps steps per video frame -> [N, 2, C].
"""
from __future__ import annotations

import numpy as np

WINDOW = 16  # 50-fps steps per window (320 ms)
PAD = 8  # zero steps added on each side before windowing


def fit_frames(frames: np.ndarray, n_steps: int) -> np.ndarray:
    """Trim or pad (repeating the last step) a stream [T, C] to exactly [n_steps, C]."""
    assert frames.ndim == 2, frames.shape
    t = frames.shape[0]
    if t >= n_steps:
        return frames[:n_steps]
    if t == 0:
        return np.zeros((n_steps, frames.shape[1]), dtype=frames.dtype)
    return np.concatenate([frames, np.repeat(frames[-1:], n_steps - t, axis=0)], axis=0)


def shift_frames(frames: np.ndarray, steps: int) -> np.ndarray:
    """Move a stream [T, C] `steps` earlier (steps > 0) keeping its length; the end repeats.

    Used to cancel a model's output latency (a CTC model emits a phone a little after it is heard).
    """
    if steps == 0 or frames.shape[0] == 0:
        return frames
    assert steps > 0, "only latency compensation (moving features earlier) is supported"
    steps = min(steps, frames.shape[0] - 1)
    return np.concatenate([frames[steps:], np.repeat(frames[-1:], steps, axis=0)], axis=0)


def window_frames(frames: np.ndarray, n_frames: int) -> np.ndarray:
    """Cut a 50-fps stream into one window of 16 steps per 25-fps video frame.

    Args:
        frames: [T, C] features at 50 fps (T is fitted to 2 * n_frames first).
        n_frames: N, the number of video frames.

    Returns:
        [N, 16, C]; window i holds steps 2i-8 .. 2i+7, zeros outside the stream.
    """
    assert frames.ndim == 2, frames.shape
    c = frames.shape[1]
    stream = fit_frames(frames, 2 * n_frames)  # [2N, C]
    padded = np.zeros((2 * n_frames + 2 * PAD, c), dtype=stream.dtype)  # [2N + 16, C]
    padded[PAD:PAD + 2 * n_frames] = stream
    view = np.lib.stride_tricks.sliding_window_view(padded, WINDOW, axis=0)  # [2N + 1, C, 16]
    out = np.ascontiguousarray(view[: 2 * n_frames : 2].transpose(0, 2, 1))  # [N, 16, C]
    assert out.shape == (n_frames, WINDOW, c), out.shape
    return out


def pair_frames(frames: np.ndarray, n_frames: int) -> np.ndarray:
    """Group a 50-fps stream [T, C] into [N, 2, C]: steps 2i and 2i+1 belong to video frame i."""
    assert frames.ndim == 2, frames.shape
    return np.ascontiguousarray(fit_frames(frames, 2 * n_frames).reshape(n_frames, 2, frames.shape[1]))


def unwindow_frames(windows: np.ndarray) -> np.ndarray:
    """Recover the 50-fps stream [2N, C] from windows [N, 16, C] (their two centre steps)."""
    assert windows.ndim == 3 and windows.shape[1] == WINDOW, windows.shape
    return np.ascontiguousarray(windows[:, PAD:PAD + 2].reshape(-1, windows.shape[2]))

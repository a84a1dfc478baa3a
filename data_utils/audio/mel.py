"""`mel` features: weight-free log-mel spectrogram on the 50-fps grid, normalised per utterance.

16 kHz, Hann window of 800 samples (50 ms) in a 1024-point FFT, hop 320 (20 ms), frames centred
on sample 320 j (zero padding at the ends), 80 triangular mel bands (HTK mel scale) from 55 Hz
to 7600 Hz (the band edges of upstream's mel option), natural log of power + 1e-6 floor. Each
band is then normalised to zero mean and unit variance over the utterance.
Frames are independent, so chunked computation equals one pass exactly.
"""
from __future__ import annotations

import functools

import numpy as np
from tqdm import tqdm

from data_utils.audio.decode import HOP, SAMPLE_RATE

N_FFT = 1024
WIN_LENGTH = 800
N_MELS = 80
F_MIN, F_MAX = 55.0, 7600.0
LOG_FLOOR = 1e-6


def _hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


@functools.lru_cache(maxsize=8)
def mel_filterbank(n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE,
                   f_min: float = F_MIN, f_max: float = F_MAX) -> np.ndarray:
    """Triangular filters [n_mels, n_fft // 2 + 1], each with unit area (energy per band comparable)."""
    freqs = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(f_min), _hz_to_mel(f_max), n_mels + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lo) / (mid - lo)
    down = (hi - freqs[None]) / (hi - mid)
    fb = np.maximum(0.0, np.minimum(up, down))
    fb *= (2.0 / (hi - lo))  # unit area in Hz
    return fb.astype(np.float32)


@functools.lru_cache(maxsize=2)
def _window(win_length: int = WIN_LENGTH, n_fft: int = N_FFT) -> np.ndarray:
    win = np.zeros(n_fft, dtype=np.float32)
    off = (n_fft - win_length) // 2
    win[off:off + win_length] = np.hanning(win_length + 1)[:-1]  # periodic Hann
    return win


def log_mel_frames(audio: np.ndarray, first: int = 0, count: int | None = None,
                   n_mels: int = N_MELS) -> np.ndarray:
    """Un-normalised log-mel of steps first .. first+count-1 (step j centred on sample j * 320).

    Args:
        audio: [S] float32 at 16 kHz (the whole utterance; only the needed part is read).

    Returns:
        [count, n_mels] float32.
    """
    total = audio.shape[0] // HOP + 1
    count = total - first if count is None else count
    half = N_FFT // 2
    s0, s1 = first * HOP - half, (first + count - 1) * HOP + half  # samples needed, may lie outside
    seg = np.zeros(s1 - s0, dtype=np.float32)
    a, b = max(0, s0), min(audio.shape[0], s1)
    if b > a:
        seg[a - s0:b - s0] = audio[a:b]
    frames = np.lib.stride_tricks.sliding_window_view(seg, N_FFT)[::HOP][:count]  # [count, 1024]
    spec = np.fft.rfft(frames * _window(), axis=1)  # [count, 513]
    power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
    mel = power @ mel_filterbank(n_mels).T  # [count, n_mels]
    return np.log(mel + LOG_FLOOR).astype(np.float32)


def normalize_utterance(feats: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Per-channel zero mean / unit variance over time: [T, C] -> [T, C]."""
    mean = feats.mean(axis=0, keepdims=True, dtype=np.float64)
    std = feats.std(axis=0, keepdims=True, dtype=np.float64)
    return ((feats - mean) / np.maximum(std, eps)).astype(np.float32)


def mel_steps(audio: np.ndarray, *, n_mels: int = N_MELS, chunk_s: float = 60.0,
              progress: bool = False) -> np.ndarray:
    """Normalised log-mel of 16 kHz audio [S] on the 50-fps grid: [S // 320 + 1, n_mels].

    Computed `chunk_s` at a time, so memory is the audio plus one chunk's spectrum.
    """
    total = audio.shape[0] // HOP + 1
    core = max(1, int(chunk_s * SAMPLE_RATE / HOP))
    out = np.empty((total, n_mels), dtype=np.float32)
    starts = range(0, total, core)
    for a in tqdm(starts, desc="mel", unit="chunk", disable=not progress or len(starts) < 2, leave=False):
        b = min(total, a + core)
        out[a:b] = log_mel_frames(audio, a, b - a, n_mels)
    return normalize_utterance(out)

"""`mel`: weight-free log-mel on the 50-fps grid, per-utterance normalised; long audio in bounded memory."""
from __future__ import annotations

import tracemalloc

import numpy as np
import soundfile as sf

from data_utils.audio.mel import F_MAX, F_MIN, N_MELS, _hz_to_mel, _mel_to_hz, log_mel_frames, mel_filterbank, mel_steps
from data_utils.audio_features import extract_features


def _band_of(hz: float) -> int:
    centres = _mel_to_hz(np.linspace(_hz_to_mel(F_MIN), _hz_to_mel(F_MAX), N_MELS + 2))[1:-1]
    return int(np.abs(centres - hz).argmin())


def test_filterbank_covers_55_to_7600_hz():
    fb = mel_filterbank()
    assert fb.shape == (80, 513) and (fb >= 0).all()
    freqs = np.linspace(0, 8000, 513)
    assert fb[:, freqs < 50].sum() == 0 and fb[:, freqs > 7700].sum() == 0
    assert (fb.sum(axis=1) > 0).all()  # no empty band


def test_tone_peaks_in_its_band_at_its_time():
    sr = 16000
    t = np.arange(2 * sr) / sr
    audio = np.zeros(2 * sr, np.float32)
    audio[sr:] = 0.5 * np.sin(2 * np.pi * 1000 * t[sr:])  # silence then 1 kHz from 1.0 s
    raw = log_mel_frames(audio)
    assert raw.shape == (101, 80)
    assert raw[75].argmax() == _band_of(1000.0)
    assert raw[20].max() < raw[75].max() - 10  # silence is far below the tone
    onset = np.flatnonzero(raw[:, _band_of(1000.0)] > raw[75, _band_of(1000.0)] - 6)[0]
    assert abs(onset - 50) <= 1  # step j is centred on sample 320 j


def test_normalised_per_utterance():
    audio = np.random.default_rng(0).standard_normal(16000 * 3).astype(np.float32) * 0.1
    steps = mel_steps(audio)
    assert steps.shape == (151, 80)
    np.testing.assert_allclose(steps.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(steps.std(axis=0), 1.0, atol=1e-3)
    np.testing.assert_allclose(mel_steps(audio * 3.0), steps, atol=1e-3)  # gain does not matter


def test_chunked_equals_one_pass_exactly():
    audio = np.random.default_rng(1).standard_normal(16000 * 9 + 77).astype(np.float32)
    np.testing.assert_allclose(mel_steps(audio, chunk_s=2.0), mel_steps(audio, chunk_s=100.0), atol=1e-5)


def test_ten_minute_clip_in_bounded_memory(tmp_path):
    """10 min of synthetic speech-like audio through the file path: right N, no NaN, memory bounded."""
    sr, minutes = 16000, 10
    path = tmp_path / "long.wav"
    with sf.SoundFile(path, "w", sr, 1, "PCM_16") as f:  # written in blocks: the test itself stays small
        rng = np.random.default_rng(0)
        for k in range(minutes * 60):
            t = k + np.arange(sr) / sr
            block = 0.2 * np.sin(2 * np.pi * (150 + 50 * np.sin(t)) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
            f.write((block + 0.01 * rng.standard_normal(sr)).astype(np.float32))
    tracemalloc.start()
    feats = extract_features(path, "mel")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert feats.array.shape == (minutes * 60 * 25, 16, 80)
    assert np.isfinite(feats.array).all()
    audio_mb = minutes * 60 * sr * 4 / 2**20  # 36.6 MB of float32 samples
    out_mb = feats.array.nbytes / 2**20  # 73 MB of windows
    # decoded bytes + audio + stream + windows, but never a whole-clip spectrogram (~120 MB more)
    assert peak / 2**20 < 2.2 * audio_mb + out_mb + 40, peak / 2**20

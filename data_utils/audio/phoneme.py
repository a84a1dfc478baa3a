"""`phoneme` features: hama's waveform -> IPA CTC model (4.7 MB, ships in the `hama` wheel).

The model emits log-probabilities over 191 tokens (189 IPA phones/symbols of English and Korean,
a word boundary `<wb>` and the CTC `<blank>`) every 320 samples (50 fps), step j centred near
sample 320 j. We keep all 191 probabilities (C = 191, order = `phoneme_labels()`): the audio net's
first convolution reduces channels anyway, and unused tokens simply stay near zero.

CTC emits a phone slightly after it is heard: against pocketsphinx forced alignments of three
speakers the best match is 2 steps (40 ms) later, so the stream is moved 2 steps earlier by
default (`lag_steps`; docs/audio.md has the numbers).
"""
from __future__ import annotations

import os
import threading

import numpy as np

from data_utils.audio.chunking import run_chunked
from data_utils.audio.windowing import shift_frames

N_TOKENS = 191
LAG_STEPS = 2  # measured CTC latency in 50-fps steps (40 ms)
MAX_STEPS = 1500  # hama's model returns at most 1500 steps: one call sees under 30 s of audio


_local = threading.local()  # one model per thread: the native engine releases the GIL while it runs


def _model():
    if getattr(_local, "model", None) is None:
        from hama import ASRModel  # the native engine loads here, not at import time

        _local.model = ASRModel()
    return _local.model


def default_workers() -> int:
    """Threads for chunks: the engine is single-threaded, so one per core (at most 4)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(4, cores))


def phoneme_labels() -> list[str]:
    """Names of the 191 channels, in order."""
    labels = list(_model().decoder_tokens)
    assert len(labels) == N_TOKENS, len(labels)
    return labels


def _posteriors_one_pass(audio: np.ndarray) -> np.ndarray:
    """samples [s] (under 30 s) -> probabilities [s // 320 + 1, 191]."""
    wav = np.ascontiguousarray(audio, dtype=np.float32)[None]  # [1, s]
    expected = wav.shape[1] // 320 + 1
    if expected > MAX_STEPS:
        raise ValueError(f"hama sees at most {MAX_STEPS} steps (30 s) per call; got {wav.shape[1]} samples")
    log_probs, lengths = _model().session.run(
        ["log_probs", "out_lengths"], {"waveform": wav, "waveform_lengths": np.array([wav.shape[1]], np.int64)})
    t = int(np.asarray(lengths).reshape(-1)[0])
    if t != expected:
        raise RuntimeError(f"hama returned {t} steps for {wav.shape[1]} samples, expected {expected}")
    return np.exp(log_probs[0, :t]).astype(np.float32)  # [t, 191]


def phoneme_posteriors(audio: np.ndarray, *, chunk_s: float = 24.0, context_s: float = 2.5,
                       lag_steps: int = LAG_STEPS, workers: int | None = None,
                       progress: bool = False) -> np.ndarray:
    """Per-step phone probabilities of 16 kHz audio.

    Args:
        audio: [S] float32 mono at 16 kHz.
        chunk_s, context_s: chunking (see `run_chunked`); chunk_s + 2 * context_s must stay
            under hama's 30 s limit. The model is a Conformer (global self-attention), so chunked
            output differs slightly from one pass everywhere; chunks are cross-faded over +-1 s
            at the seams so no step shows there (docs/audio.md has the numbers).
        lag_steps: move the stream this many 50-fps steps earlier (CTC latency).
        workers: chunks run in parallel threads (default one per core, at most 4); the result
            does not depend on it.

    Returns:
        [S // 320 + 1, 191] float32, rows sum to 1.
    """
    if chunk_s + 2 * context_s >= MAX_STEPS / 50:
        raise ValueError(f"chunk_s + 2 * context_s must be under {MAX_STEPS / 50:.0f} s (hama's limit)")
    probs = run_chunked(audio, _posteriors_one_pass, chunk_s=chunk_s, context_s=context_s, progress=progress,
                        desc="phoneme", workers=default_workers() if workers is None else workers)
    return shift_frames(probs, lag_steps)

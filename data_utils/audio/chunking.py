"""Run a frame-synchronous model over long audio in overlapping chunks (bounded memory).

A frame function maps samples [s] to features [t, C] with step j anchored at sample j * hop.
Chunks start on multiples of `hop`, so a chunk's steps line up with the global 50-fps grid.
Each chunk is run with `context_s` of extra audio on both sides and only its core steps are
kept, so the model sees the same neighbourhood around every kept step as in one pass and the
seams do not show (exactly so for models with a receptive field shorter than the context).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np
from tqdm import tqdm

from data_utils.audio.decode import HOP, SAMPLE_RATE

FrameFn = Callable[[np.ndarray], np.ndarray]


def n_steps(n_samples: int, hop: int = HOP) -> int:
    """Steps on the 50-fps grid for `n_samples`: one per `hop`, the first centred on sample 0."""
    return n_samples // hop + 1


def run_chunked(audio: np.ndarray, frame_fn: FrameFn, *, chunk_s: float = 30.0, context_s: float = 2.0,
                hop: int = HOP, sample_rate: int = SAMPLE_RATE, progress: bool = False,
                desc: str = "audio", workers: int = 1) -> np.ndarray:
    """Apply `frame_fn` chunk by chunk and stitch the core steps.

    Args:
        audio: [S] float32 samples.
        frame_fn: samples [s] -> features [t, C], step j at sample j * hop.
        chunk_s: core length of a chunk in seconds (memory scales with chunk_s + 2 * context_s).
        context_s: overlap on each side in seconds, discarded after the call.
        progress: show a tqdm bar over chunks.
        workers: chunks run in this many threads (for frame functions that release the GIL and
            are thread-safe); results are stitched in order, memory grows with `workers`.

    Returns:
        [n_steps(S), C] features on the global 50-fps grid.
    """
    assert audio.ndim == 1, audio.shape
    total = n_steps(audio.shape[0], hop)
    core = max(1, int(round(chunk_s * sample_rate / hop)))
    ctx = max(0, int(round(context_s * sample_rate / hop)))
    starts = list(range(0, total, core))

    def run_one(a: int) -> np.ndarray:
        b = min(a + core, total)
        first = max(0, a - ctx)  # first step fed to the model
        s0, s1 = first * hop, min(audio.shape[0], (b + ctx) * hop)
        feats = np.asarray(frame_fn(audio[s0:s1]))  # [t, C]
        assert feats.ndim == 2, feats.shape
        rows = feats[a - first:b - first]
        if rows.shape[0] < b - a:  # the model returned fewer steps than the grid has (e.g. HuBERT)
            fill = rows[-1:] if rows.shape[0] else feats[-1:]
            if fill.shape[0] == 0:
                raise ValueError(f"audio chunk of {s1 - s0} samples is too short for this model")
            rows = np.concatenate([rows, np.repeat(fill, b - a - rows.shape[0], axis=0)], axis=0)
        return rows

    bar = dict(desc=desc, unit="chunk", total=len(starts), disable=not progress or len(starts) < 2, leave=False)
    if workers > 1 and len(starts) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(tqdm(pool.map(run_one, starts), **bar))
    else:
        parts = [run_one(a) for a in tqdm(starts, **bar)]
    out = np.concatenate(parts, axis=0)
    assert out.shape[0] == total, (out.shape, total)
    return out

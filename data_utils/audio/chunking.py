"""Run a frame-synchronous model over long audio in overlapping chunks (bounded memory).

A frame function maps samples [s] to features [t, C] with step j anchored at sample j * hop.
Chunks start on multiples of `hop`, so a chunk's steps line up with the global 50-fps grid.
Each chunk is run with `context_s` of extra audio on both sides, so the model sees the same
neighbourhood around every kept step as in one pass (exactly so for models whose receptive field
is shorter than the context). Models with global attention (hama's Conformer, HuBERT) still
differ a little from chunk to chunk, so neighbouring chunks are cross-faded over +-`blend_s`
around each seam instead of being cut hard.
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
                blend_s: float = 1.0, hop: int = HOP, sample_rate: int = SAMPLE_RATE, progress: bool = False,
                desc: str = "audio", workers: int = 1) -> np.ndarray:
    """Apply `frame_fn` chunk by chunk and stitch the results on the global grid.

    Args:
        audio: [S] float32 samples.
        frame_fn: samples [s] -> features [t, C], step j at sample j * hop.
        chunk_s: core length of a chunk in seconds (memory scales with chunk_s + 2 * context_s).
        context_s: extra audio on each side of the core that the model sees.
        blend_s: around each seam, the two chunks' outputs are cross-faded linearly over
            +- blend_s (at most half the context), so a model with global attention shows no step
            at the seam; 0 gives hard cuts.
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
    blend = min(int(round(blend_s * sample_rate / hop)), ctx // 2, core // 2)
    starts = list(range(0, total, core))

    def run_one(a: int) -> tuple[int, np.ndarray, np.ndarray]:
        b = min(a + core, total)
        first = max(0, a - ctx)  # first step fed to the model
        s0, s1 = first * hop, min(audio.shape[0], (b + ctx) * hop)
        feats = np.asarray(frame_fn(audio[s0:s1]))  # [t, C], step i = global step first + i
        assert feats.ndim == 2, feats.shape
        if feats.shape[0] < b - first:  # the model returned fewer steps than the grid has (e.g. HuBERT)
            if feats.shape[0] == 0:
                raise ValueError(f"audio chunk of {s1 - s0} samples is too short for this model")
            feats = np.concatenate([feats, np.repeat(feats[-1:], b - first - feats.shape[0], axis=0)], axis=0)
        lo = a - blend if a > 0 else a  # keep [lo, hi): the core plus the cross-fade margins
        hi = min(b + blend, first + feats.shape[0]) if b < total else b
        steps = np.arange(lo, hi) + 0.5
        weight = np.ones(hi - lo, dtype=np.float32)
        if blend:
            if a > 0:
                weight = np.minimum(weight, (steps - (a - blend)) / (2 * blend))
            if b < total:
                weight = np.minimum(weight, ((b + blend) - steps) / (2 * blend))
        return lo, feats[lo - first:hi - first], weight

    bar = dict(desc=desc, unit="chunk", total=len(starts), disable=not progress or len(starts) < 2, leave=False)
    if workers > 1 and len(starts) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = tqdm(pool.map(run_one, starts), **bar)
            out, wsum = _stitch(parts, total)
    else:
        out, wsum = _stitch(tqdm(map(run_one, starts), **bar), total)
    assert np.all(wsum > 0), "a step was covered by no chunk"
    out /= wsum[:, None].astype(np.float32)
    return out


def _stitch(parts, total: int) -> tuple[np.ndarray, np.ndarray]:
    out, wsum = None, np.zeros(total, dtype=np.float64)
    for lo, rows, weight in parts:
        if out is None:
            out = np.zeros((total, rows.shape[1]), dtype=np.float32)  # the output itself, accumulated in place
        out[lo:lo + rows.shape[0]] += weight[:, None] * rows
        wsum[lo:lo + rows.shape[0]] += weight
    return out, wsum

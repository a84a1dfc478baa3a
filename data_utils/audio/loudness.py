"""Loudness of speech per video frame: what the lips of a talking head should roughly follow."""
from __future__ import annotations

import numpy as np


def loudness_track(samples: np.ndarray, sample_rate: int, n_frames: int, fps: float = 25.0,
                   floor_db: float = -45.0) -> np.ndarray:
    """Per-frame loudness [T] in [0, 1]: RMS over each frame's 40 ms, in dB above `floor_db` re the peak."""
    hop = sample_rate / fps
    out = np.zeros(n_frames, np.float32)
    for i in range(n_frames):
        seg = samples[int(i * hop):int((i + 1) * hop)]
        out[i] = np.sqrt(np.mean(seg.astype(np.float64) ** 2)) if seg.size else 0.0
    db = 20 * np.log10(np.maximum(out, 1e-8) / max(float(out.max()), 1e-8))
    return np.clip(1.0 - db / floor_db, 0.0, 1.0).astype(np.float32)

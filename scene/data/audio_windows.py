"""The audio context of video frames: the one gather every batch and every render uses."""
from __future__ import annotations

import torch
from torch import Tensor

WINDOW_SIZE = 8  # frames of audio context per video frame


def audio_windows(features: Tensor, idx: int | Tensor, size: int = WINDOW_SIZE) -> Tensor:
    """Audio context of frame(s) `idx`: frames [idx - size//2, idx - size//2 + size), zeros past the ends.

    Args:
        features: per-frame audio features [T, C, W].
        idx: a frame index (-> [size, C, W]) or a 1-D tensor of B indices (-> [B, size, C, W]), on
            features' device (host indices are range-checked).
        size: window length (upstream: 8, i.e. frames i-4 .. i+3).
    """
    assert features.dim() == 3, features.shape
    T = features.shape[0]
    idx_t = torch.as_tensor(idx, device=features.device).long()
    if idx_t.dim() > 1:
        raise ValueError(f"idx must be an int or a 1-D tensor, got shape {tuple(idx_t.shape)}")
    # checked on the host only: on a GPU the check would stall every training batch
    if idx_t.device.type == "cpu" and bool(((idx_t < 0) | (idx_t >= T)).any()):
        raise IndexError(f"audio frame index out of range [0, {T}): {idx_t.tolist()}")
    # One gather with the out-of-range rows zeroed (no padded copy of the whole clip per call).
    rows = idx_t[..., None] + torch.arange(-(size // 2), size - size // 2, device=features.device)  # [(B,) size]
    inside = ((rows >= 0) & (rows < T)).to(features.dtype)[..., None, None]
    return features[rows.clamp(0, T - 1)] * inside  # [(B,) size, C, W]

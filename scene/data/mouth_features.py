"""Per-frame inputs of the audio-to-mouth model (scene/models/audio_to_mouth.py), from the audio features
a subject or a new clip carries: the frame's own 50-fps steps of each kind, and how much of it is speech.
"""
from __future__ import annotations

import numpy as np

from data_utils.audio.registry import MOUTH_FEATURES  # noqa: F401  (phoneme, mel: the default inputs)

# Silence: the share of phone (not blank / word-boundary / special) posterior mass around a frame.
# Speech sits at 0.14-0.33 (25th-75th percentile on cnn2 and german20s), silence and room noise at ~0.01.
PHONEME_NON_SPEECH = (0, 1, 2, 3, 189, 190)  # <pad> <sos> <eos> <unk> <wb> <blank> of hama's 191 tokens


def speech_activity(phoneme: np.ndarray, non_speech: tuple[int, ...] = PHONEME_NON_SPEECH) -> np.ndarray:
    """[T, C, W] phoneme posterior windows (trainer layout) -> [T] speech activity in [0, 1].

    The share of phone mass over each window (+-160 ms), averaged over 5 frames, then the most active
    frame within +-6 (+-0.24 s): CTC posteriors are spiky, so only a pause of about half a second
    counts as silence (gating shorter gaps closed the mouth on fluent speech: cnn2 val r 0.77 -> 0.65;
    with the hold, 0.80).
    """
    from scipy.ndimage import maximum_filter1d, uniform_filter1d

    phoneme = np.asarray(phoneme, dtype=np.float32)
    if phoneme.ndim != 3 or max(non_speech) >= phoneme.shape[1]:
        raise ValueError(f"expected [T, C, W] phoneme posteriors with the tokens {non_speech}, got {phoneme.shape}")
    active = (1.0 - phoneme[:, list(non_speech), :].sum(1).mean(-1)).clip(0.0, 1.0)
    return maximum_filter1d(uniform_filter1d(active, 5, mode="nearest"), 13, mode="nearest")


def mouth_audio_features(windows: dict[str, np.ndarray]) -> np.ndarray:
    """Per-frame inputs of the model: the two 50-fps steps of each feature kind that belong to the frame.

    Args:
        windows: kind -> [T, C, W] features in the trainer's layout (scene.data.subject_files.read_audio_features):
            W = 16 windows (window i holds 50-fps steps 2i-8 .. 2i+7; the frame's own steps 2i, 2i+1 sit
            at 8 and 9, data_utils/audio/windowing.py) or W = 2 pairs (HuBERT); every kind must have the same T.
    Returns:
        float32 [T, F], F = 2 * sum(C), kinds in the order given.
    """
    parts = []
    for kind, w in windows.items():
        w = np.asarray(w, dtype=np.float32)
        if w.ndim != 3 or w.shape[2] not in (2, 16):
            raise ValueError(f"{kind} features must be [T, C, 16] windows or [T, C, 2] pairs, got shape {w.shape}")
        own = w[:, :, 8:10] if w.shape[2] == 16 else w  # [T, C, 2]: steps 2i and 2i+1
        parts.append(own.transpose(0, 2, 1).reshape(len(w), -1))
    lengths = {kind: len(p) for kind, p in zip(windows, parts)}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"feature kinds cover different frame counts: {lengths}")
    return np.ascontiguousarray(np.concatenate(parts, axis=1))

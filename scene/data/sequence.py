"""What synthesis renders, frame by frame: cameras, backgrounds, expressions and audio windows.

Two kinds of sequence:
- the val split of a subject (`--eval`): every val frame with its own audio; ground truth exists;
- new audio over the training split (`--use_train --audio x.wav`): output frame j is driven by audio
  frame j and takes its head pose, blinks and background from training frame `pingpong(j)`, so
  audio longer than the training track plays on (forwards, backwards, forwards...) with no cut.
Either may carry mouth codes per output frame (raw units, e.g. predicted from the audio); without
them a batch holds the frames' own codes (`mouth_code_raw`, the reconstruction's upper bound).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from scene.data.audio_windows import audio_windows


def pingpong(n_out: int, n_src: int) -> np.ndarray:
    """Indices 0, 1, ..., n_src-1, n_src-2, ..., 1, 0, 1, ... of length n_out (turns repeat no frame)."""
    if n_src <= 1:
        return np.zeros(n_out, dtype=np.int64)
    period = 2 * (n_src - 1)
    k = np.arange(n_out) % period
    return np.where(k < n_src, k, period - k).astype(np.int64)


@dataclass
class RenderSequence:
    data: object  # scene.data.dataset.SubjectData of the split whose cameras/backgrounds are used
    rows: np.ndarray  # [N_out] row of `data` for each output frame
    audio: Tensor | None  # [T, C, W] features driving the output (None: the split's own audio)
    has_gt: bool
    mouth_codes: Tensor | None = None  # [N_out, M] raw mouth codes of the output frames (None: the frames' own)

    @classmethod
    def eval_split(cls, data) -> "RenderSequence":
        return cls(data, np.arange(data.num_frames), None, True)

    @classmethod
    def new_audio(cls, data, features: np.ndarray, device) -> "RenderSequence":
        """features: [T, C, W] float32 of the new audio (one row per output frame)."""
        audio = torch.from_numpy(np.ascontiguousarray(features)).float().to(device)
        return cls(data, pingpong(audio.shape[0], data.num_frames), audio, False)

    def __len__(self) -> int:
        return len(self.rows)

    def batches(self, batch_size: int) -> Iterator[tuple[int, dict]]:
        """(first output index, batch dict) for consecutive chunks of at most batch_size frames."""
        for start in range(0, len(self), batch_size):
            stop = min(start + batch_size, len(self))
            batch = self.data.batch(self.rows[start:stop].tolist())
            if self.audio is not None:
                idx = torch.arange(start, stop, device=self.audio.device)
                batch["audio_windows"] = audio_windows(self.audio, idx)
            if self.mouth_codes is not None:
                batch["mouth_code_raw"] = self.mouth_codes[start:stop]
            yield start, batch

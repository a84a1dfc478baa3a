"""Audio side of the motion networks: windowing, the per-frame conv encoder and temporal attention.

Shapes (T audio frames at 25 fps, C feature channels, W steps per frame, B frames in a batch):
    features          [T, C, W]     DeepSpeech [T, 29, 16], HuBERT [T, 1024, 2], any C and W <= 16
    window            [S, C, W]     S = 8 frames around a video frame (zero-padded at the clip ends)
    AudioNet          [..., C, W] -> [..., 32]
    AudioAttNet       [..., S, 32] -> [..., 32]  (softmax-weighted sum over the S frames)
A motion network's audio code is AudioAttNet(AudioNet(window)): [..., S, C, W] -> [..., 32].
Constants follow upstream-facts section 3.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from scene.data.audio_windows import WINDOW_SIZE

LEAKY_SLOPE = 0.02


class AudioNet(nn.Module):
    """Per-frame conv encoder: [..., C, W] -> [..., dim_out].

    Keeps the centre `win_size` steps (a no-op for W <= 16), then four Conv1d(k3, s2, p1) with
    LeakyReLU(0.02) halve W to 1 (16 -> 8 -> 4 -> 2 -> 1; W = 2 goes 2 -> 1 -> 1 -> 1 -> 1), then
    Linear(64, 64) - LeakyReLU - Linear(64, dim_out).
    """

    def __init__(self, dim_in: int = 29, dim_out: int = 32, win_size: int = 16):
        super().__init__()
        self.dim_in = dim_in
        self.win_size = win_size
        act = lambda: nn.LeakyReLU(LEAKY_SLOPE)  # noqa: E731
        self.encoder_conv = nn.Sequential(
            nn.Conv1d(dim_in, 32, 3, stride=2, padding=1), act(),
            nn.Conv1d(32, 32, 3, stride=2, padding=1), act(),
            nn.Conv1d(32, 64, 3, stride=2, padding=1), act(),
            nn.Conv1d(64, 64, 3, stride=2, padding=1), act(),
        )
        self.encoder_fc = nn.Sequential(nn.Linear(64, 64), act(), nn.Linear(64, dim_out))
        # Per-channel input standardisation (identity until set_input_stats; saved with the weights)
        self.register_buffer("input_mean", torch.zeros(dim_in))
        self.register_buffer("input_scale", torch.ones(dim_in))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints from before input standardisation hold no stats: identity
        state_dict.setdefault(prefix + "input_mean", torch.zeros(self.dim_in))
        state_dict.setdefault(prefix + "input_scale", torch.ones(self.dim_in))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @torch.no_grad()
    def set_input_stats(self, features: Tensor, min_std_fraction: float = 0.1) -> None:
        """Standardise inputs with the training clip's per-channel mean and std ([T, C, W] features).

        Features such as phoneme posteriors vary by ~0.01 between frames; through the default-initialised
        layers that leaves an audio code that is almost the same for every frame, whose gradients vanish.
        Stds are floored at `min_std_fraction` of the largest, so rare channels stay bounded.
        """
        assert features.dim() == 3 and features.shape[1] == self.dim_in, features.shape
        mean, std = features.mean((0, 2)), features.std((0, 2))
        std = std.clamp(min=max(float(std.max()) * min_std_fraction, 1e-8))
        self.input_mean.copy_(mean)
        self.input_scale.copy_(1.0 / std)

    def forward(self, x: Tensor) -> Tensor:  # [..., C, W] -> [..., dim_out]
        assert x.shape[-2] == self.dim_in, (x.shape, self.dim_in)
        x = (x - self.input_mean[:, None]) * self.input_scale[:, None]
        if x.shape[-1] > 16:
            raise ValueError(f"AudioNet reduces at most 16 steps per frame to 1, got W={x.shape[-1]}")
        batch_dims = x.shape[:-2]
        half = self.win_size // 2
        x = x.reshape(-1, *x.shape[-2:])[:, :, max(8 - half, 0): 8 + half]  # [M, C, W]
        h = self.encoder_conv(x).squeeze(-1)  # [M, 64]
        return self.encoder_fc(h).reshape(*batch_dims, -1)


class AudioAttNet(nn.Module):
    """Temporal attention over a window of S audio codes: [..., S, D] -> [..., D].

    Conv1d over the code channels 32 -> 16 -> 8 -> 4 -> 2 -> 1 (k3, s1, p1, LeakyReLU(0.02) after
    each, the last included) gives one score per frame, then Linear(S, S) and a softmax over S.
    """

    def __init__(self, dim_aud: int = 32, seq_len: int = WINDOW_SIZE):
        super().__init__()
        self.dim_aud = dim_aud
        self.seq_len = seq_len
        chans = [dim_aud, 16, 8, 4, 2, 1]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv1d(c_in, c_out, 3, stride=1, padding=1), nn.LeakyReLU(LEAKY_SLOPE)]
        self.attention_conv = nn.Sequential(*layers)
        self.attention_fc = nn.Linear(seq_len, seq_len)

    def weights(self, x: Tensor) -> Tensor:  # [..., S, D] -> [..., S], sums to 1 over S
        assert x.shape[-2:] == (self.seq_len, self.dim_aud), x.shape
        batch_dims = x.shape[:-2]
        y = x.reshape(-1, self.seq_len, self.dim_aud).transpose(1, 2)  # [M, D, S]
        y = self.attention_conv(y).squeeze(1)  # [M, S]
        return torch.softmax(self.attention_fc(y), dim=-1).reshape(*batch_dims, self.seq_len)

    def forward(self, x: Tensor) -> Tensor:  # [..., S, D] -> [..., D]
        return (self.weights(x)[..., None] * x).sum(-2)


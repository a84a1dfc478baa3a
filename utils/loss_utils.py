"""Image losses and metrics on channel-last or channel-first float images in [0, 1]."""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor


def l1_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean absolute error; with `mask` (broadcastable to pred), the mean over masked elements."""
    diff = (pred - target).abs()
    if mask is None:
        return diff.mean()
    mask = mask.expand_as(diff).to(diff.dtype)
    return (diff * mask).sum() / mask.sum().clamp_min(1.0)


@functools.lru_cache(maxsize=8)
def _gaussian_window(size: int, sigma: float, channels: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(x**2) / (2.0 * sigma**2))
    g = g / g.sum()
    window = torch.outer(g, g).to(device=device, dtype=dtype)
    return window.expand(channels, 1, size, size).contiguous()  # [C, 1, k, k]


def ssim(img1: Tensor, img2: Tensor, window_size: int = 11, sigma: float = 1.5, reduce: bool = True) -> Tensor:
    """SSIM with an 11x11 Gaussian window (sigma 1.5), zero padding, C1 = 0.01^2, C2 = 0.03^2 (3DGS's).

    Images are [C, H, W] or [B, C, H, W] (channel-first), values in [0, 1].
    """
    squeeze = img1.dim() == 3
    if squeeze:
        img1, img2 = img1[None], img2[None]
    channels = img1.shape[1]
    w = _gaussian_window(window_size, sigma, channels, img1.device, img1.dtype)
    pad = window_size // 2
    conv = functools.partial(F.conv2d, weight=w, padding=pad, groups=channels)
    mu1, mu2 = conv(img1), conv(img2)
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = conv(img1 * img1) - mu1_sq
    sigma2_sq = conv(img2 * img2) - mu2_sq
    sigma12 = conv(img1 * img2) - mu12
    c1, c2 = 0.01**2, 0.03**2
    ssim_map = ((2 * mu12 + c1) * (2 * sigma12 + c2)) / ((mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2))
    if reduce:
        return ssim_map.mean()
    return ssim_map[0] if squeeze else ssim_map


def psnr(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Peak signal-to-noise ratio in dB for images in [0, 1]; with `mask`, over masked elements."""
    sq = (pred - target) ** 2
    if mask is None:
        mse = sq.mean()
    else:
        mask = mask.expand_as(sq).to(sq.dtype)
        mse = (sq * mask).sum() / mask.sum().clamp_min(1.0)
    return -10.0 * torch.log10(mse.clamp_min(1e-10))


def photometric_loss(pred: Tensor, target: Tensor, lambda_dssim: float = 0.2) -> Tensor:
    """Upstream's L1 + lambda * (1 - SSIM) on [C, H, W] images."""
    return l1_loss(pred, target) + lambda_dssim * (1.0 - ssim(pred, target))


def patchify(img: Tensor, patch: int) -> Tensor:
    """Non-overlapping patch x patch tiles of a [C, H, W] image as a batch [P, C, patch, patch] (crops the rest)."""
    c, h, w = img.shape
    img = img[:, : h - h % patch, : w - w % patch]
    tiles = img.unfold(1, patch, patch).unfold(2, patch, patch)  # [C, h/p, w/p, p, p]
    return tiles.permute(1, 2, 0, 3, 4).reshape(-1, c, patch, patch)

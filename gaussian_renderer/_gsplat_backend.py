"""gsplat 1.5.3 backend (CUDA): a thin pass-through to gsplat's projection, tiling and rasterization ops.

The low-level ops are called directly rather than `gsplat.rasterization` so that the pixel-space
means we hand back ([B, N, 2], one camera per view) are the very tensor the rasterizer consumes: its
.grad is then populated by backward, as densification needs. Depth is rendered as one extra channel
(gsplat's "RGB+D": sum z a T, not normalised) with a 0 background, then split off. gsplat pads
unsupported channel counts itself. gsplat is imported lazily: it imports on CPU but cannot run there.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from gaussian_renderer.rasterize import RasterOutput

TILE_SIZE = 16  # gsplat's default tile


def rasterize_gsplat(
    means: Tensor,  # [B, N, 3]
    quats: Tensor,  # [B, N, 4]
    scales: Tensor,  # [B, N, 3]
    opacities: Tensor,  # [B, N]
    colors: Tensor,  # [B, N, D]
    viewmats: Tensor,  # [B, 4, 4]
    Ks: Tensor,  # [B, 3, 3]
    width: int,
    height: int,
    *,
    bg: Tensor | None = None,  # [B, D]
    near: float = 0.01,
    far: float = 100.0,
    eps2d: float = 0.3,
) -> RasterOutput:
    """Rasterize B views with gsplat (packed=False, classic mode, opacity-aware radii).

    Same contract as `rasterize_torch`: colors [B, H, W, D] (+ T_final * bg), depths [B, H, W, 1]
    (sum z a T), alphas [B, H, W, 1], radii [B, N] int32 (max of gsplat's per-axis radii, 0 =
    culled), means2d [B, N, 2] (0 where culled) with its grad retained.
    """
    from gsplat.cuda._wrapper import fully_fused_projection, isect_offset_encode, isect_tiles, rasterize_to_pixels

    B, N = means.shape[:2]
    D = colors.shape[-1]
    radii, means2d, depths, conics, _ = fully_fused_projection(
        means, None, quats, scales, viewmats[:, None], Ks[:, None], width, height,
        eps2d=eps2d, near_plane=near, far_plane=far, radius_clip=0.0, packed=False,
        opacities=opacities,  # opacity-aware bounding boxes, as gsplat.rasterization does
    )  # radii [B, 1, N, 2], means2d [B, 1, N, 2], depths [B, 1, N], conics [B, 1, N, 3]
    # [B, N, 2], 0 where culled (gsplat leaves those entries uninitialised); the rasterizer below
    # reads this very tensor, so its .grad is what densification wants.
    means2d_out = torch.where((radii[:, 0] > 0).all(-1, keepdim=True), means2d[:, 0], torch.zeros_like(means2d[:, 0]))
    if means2d_out.requires_grad:
        means2d_out.retain_grad()

    tile_width, tile_height = math.ceil(width / TILE_SIZE), math.ceil(height / TILE_SIZE)
    _, isect_ids, flatten_ids = isect_tiles(
        means2d_out[:, None], radii, depths, TILE_SIZE, tile_width, tile_height, packed=False, n_images=B)
    offsets = isect_offset_encode(isect_ids, B, tile_width, tile_height).reshape(B, 1, tile_height, tile_width)

    features = torch.cat([colors[:, None], depths[..., None].to(colors.dtype)], dim=-1)  # [B, 1, N, D + 1]
    bg_ext = None if bg is None else torch.cat([bg, bg.new_zeros(B, 1)], dim=-1)[:, None]  # [B, 1, D + 1]
    render, alphas = rasterize_to_pixels(
        means2d_out[:, None], conics, features, opacities[:, None], width, height, TILE_SIZE,
        offsets, flatten_ids, backgrounds=bg_ext, packed=False,
    )  # [B, 1, H, W, D + 1], [B, 1, H, W, 1]
    return RasterOutput(colors=render[:, 0, ..., :D], depths=render[:, 0, ..., D:], alphas=alphas[:, 0],
                        radii=radii[:, 0].max(-1).values.int(), means2d=means2d_out, backend="gsplat")

"""Tri-plane multi-resolution grid encoder: the pure-PyTorch reference and the CPU path.

Three 2-D multi-resolution grids on the planes xy, yz and xz (the tri-plane "hash" encoding the
motion networks of TalkingGaussian / DEGSTalk use). This module defines what the encoding computes;
a fused Triton/CUDA twin, if one is added, must match `tri_plane_encode` forward and backward.

Layout (the dense case of torch-ngp's grid encoder, upstream-facts section 4):
    per-level scale      s = 2 ** (log2(desired / base) / (L - 1))
    grid scale           scale_l = base * s**l - 1
    resolution           res_l = ceil(scale_l) + 1
    sample position      pos = u * scale_l + 0.5, u = (p + bound) / (2 * bound) in [0, 1]
    table entries        (res_l + 1)**2 rounded up to a multiple of 8, at most 2**log2_hashmap_size
                         (beyond that the cell is hashed, torch-ngp style; none of our presets hash)
    cell index           i + j * (res_l + 1) for the corner (i, j), first plane axis fastest
    interpolation        bilinear on the 4 corners of the cell holding `pos`
    out of bounds        a point whose two plane coordinates leave [0, 1] gets zero features on
                         that plane (the test is per plane, as in the original kernel)
Output: concat(xy, yz, xz), each plane level-major then channel: [..., 3 * L * F].

.. note::
    The mouth preset (base 64, desired 384 * 0.15 = 57.6) has s < 1: its resolutions *decrease*
    from 64 to 58, so its 12 levels are 12 nearly equal grids rather than a coarse-to-fine pyramid.
    This is upstream's behaviour and is kept for fidelity (upstream-facts section 10 lists it as a
    quirk); pass other base/desired values to get a real pyramid.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

# Plane p reads the two input axes PLANE_AXES[p]: xy, yz, xz.
PLANE_AXES = ((0, 1), (1, 2), (0, 2))
# Corner offsets (di, dj) of a grid cell, in the order the 4 bilinear weights are built.
_CORNERS = ((0, 0), (1, 0), (0, 1), (1, 1))
# torch-ngp's spatial hash primes for the first two axes (uint32 arithmetic).
_HASH_PRIMES = (1, 2654435761)
_UINT32 = 0xFFFFFFFF

# Upstream presets (bound 0.15 m around the head; 12 levels x 1 feature per plane -> 36-d).
FACE_GRID = dict(num_levels=12, level_dim=1, base_resolution=16, desired_resolution=256 * 0.15,
                 bound=0.15, log2_hashmap_size=17)
MOUTH_GRID = dict(num_levels=12, level_dim=1, base_resolution=64, desired_resolution=384 * 0.15,
                  bound=0.15, log2_hashmap_size=17)


@dataclass(frozen=True)
class GridLayout:
    """Per-level geometry of one plane's table (all three planes share it)."""

    scales: tuple[float, ...]  # scale_l: u in [0, 1] maps to pos in [0.5, scale_l + 0.5]
    resolutions: tuple[int, ...]  # res_l = ceil(scale_l) + 1
    sizes: tuple[int, ...]  # table entries of level l
    offsets: tuple[int, ...]  # [L + 1] start of level l in the plane's flat table; offsets[-1] = total
    hashed: tuple[bool, ...]  # whether level l hashes its cells (table smaller than the grid)


def grid_layout(num_levels: int, base_resolution: int, desired_resolution: float | None = None,
                per_level_scale: float = 2.0, log2_hashmap_size: int = 17) -> GridLayout:
    """Levels, resolutions and table sizes of one 2-D multi-resolution grid (torch-ngp's rules).

    Args:
        num_levels: L, the number of levels.
        base_resolution: resolution of level 0.
        desired_resolution: resolution of the last level; when given it sets `per_level_scale`
            to 2 ** (log2(desired / base) / (L - 1)) (it may be below base: resolutions then fall).
        per_level_scale: growth factor between levels when `desired_resolution` is None.
        log2_hashmap_size: a level holds at most 2 ** this many entries; larger grids hash.
    """
    if num_levels < 1 or base_resolution < 1:
        raise ValueError(f"need num_levels >= 1 and base_resolution >= 1, got {num_levels}, {base_resolution}")
    if desired_resolution is not None:
        per_level_scale = 2.0 ** (math.log2(desired_resolution / base_resolution) / max(num_levels - 1, 1))
    log2_s = math.log2(per_level_scale)
    max_params = 2 ** log2_hashmap_size
    scales, resolutions, sizes, offsets, hashed = [], [], [], [0], []
    for level in range(num_levels):
        scale = base_resolution * 2.0 ** (level * log2_s) - 1.0
        res = int(math.ceil(scale)) + 1
        dense = (res + 1) ** 2
        size = int(math.ceil(min(max_params, dense) / 8) * 8)
        scales.append(scale)
        resolutions.append(res)
        sizes.append(size)
        offsets.append(offsets[-1] + size)
        hashed.append(dense > size)
    return GridLayout(tuple(scales), tuple(resolutions), tuple(sizes), tuple(offsets), tuple(hashed))


def tri_plane_encode(
    coords: Tensor,  # [..., 3]
    tables: Tensor,  # [3, P, F]
    scales: Tensor,  # [L]
    strides: Tensor,  # [L] int64, res_l + 1
    offsets: Tensor,  # [L] int64, start of each level in a plane's table
    sizes: Tensor,  # [L] int64, entries of each level
    hashed: Tensor | None,  # [L] bool, or None when no level hashes
    bound: float,
) -> Tensor:
    """Bilinear tri-plane lookup of `coords` in three multi-level tables (the reference op).

    Differentiable with respect to `tables` and to `coords` (through the bilinear weights; the
    cell choice is piecewise constant). All levels and planes are gathered in one indexing op.

    Args:
        coords: points [..., 3] in world units; the box [-bound, bound]^3 maps onto [0, 1]^3.
        tables: feature tables [3, P, F] for the planes xy, yz, xz; level l of a plane occupies
            rows offsets[l] : offsets[l] + sizes[l].
        scales, strides, offsets, sizes, hashed: per-level layout from `grid_layout` as tensors
            (`hashed` None when no level hashes: skips the hash path and a device sync).
        bound: half the side of the encoded cube.

    Returns:
        features [..., 3 * L * F]: concat(xy, yz, xz), each plane level-major then channel.
    """
    assert coords.shape[-1] == 3, coords.shape
    assert tables.dim() == 3 and tables.shape[0] == 3, tables.shape
    batch_dims = coords.shape[:-1]
    P, F = tables.shape[1:]
    L = scales.shape[0]

    a_axis, b_axis = (list(axes) for axes in zip(*PLANE_AXES))  # plane p reads axes a[p], b[p]
    u = (coords.reshape(-1, 3) + bound) / (2 * bound)  # [M, 3]
    inside_axis = (u >= 0) & (u <= 1)  # [M, 3]
    inside = inside_axis[:, a_axis] & inside_axis[:, b_axis]  # [M, 3] per plane
    # Positions per input axis (shared by the two planes that read it), then picked per plane.
    pos = u.clamp(0, 1)[:, :, None] * scales.to(u.dtype) + 0.5  # [M, 3 axes, L]
    cell_f = torch.floor(pos)
    frac = pos - cell_f  # [M, 3 axes, L]
    cell = cell_f.long()
    fx, fy = frac[:, a_axis], frac[:, b_axis]  # [M, 3 planes, L]
    cx, cy = cell[:, a_axis], cell[:, b_axis]  # [M, 3 planes, L]

    # Bilinear weights of the corners (0,0), (1,0), (0,1), (1,1).
    gx, gy = 1 - fx, 1 - fy
    w = torch.stack([gx * gy, fx * gy, gx * fy, fx * fy], dim=-1)  # [M, 3, L, 4]

    plane_start = torch.arange(3, device=coords.device)[:, None] * P + offsets  # [3, L]
    deltas = torch.stack([torch.zeros_like(strides), torch.ones_like(strides), strides, strides + 1], -1)  # [L, 4]
    idx = (cx + cy * strides + plane_start)[..., None] + deltas  # [M, 3, L, 4] (dense levels)
    if hashed is not None and bool(hashed.any()):
        corners = torch.tensor(_CORNERS, device=coords.device)  # [4, 2]
        i, j = cx[..., None] + corners[:, 0], cy[..., None] + corners[:, 1]  # [M, 3, L, 4]
        hash_idx = ((i * _HASH_PRIMES[0]) ^ ((j * _HASH_PRIMES[1]) & _UINT32)) % sizes[:, None]
        idx = torch.where(hashed[:, None], hash_idx + plane_start[..., None], idx)

    feats = tables.reshape(3 * P, F).index_select(0, idx.reshape(-1)).view(*idx.shape, F)  # [M, 3, L, 4, F]
    out = (w[..., None] * feats).sum(-2)  # [M, 3, L, F]
    out = out * inside[:, :, None, None].to(out.dtype)
    return out.reshape(*batch_dims, 3 * L * F)


class TriPlaneEncoder(nn.Module):
    """Three 2-D multi-resolution grids (xy, yz, xz) with bilinear interpolation: [..., 3] -> [..., 3*L*F].

    Args:
        num_levels: L levels per plane.
        level_dim: F features per level.
        base_resolution: resolution of level 0.
        desired_resolution: resolution of the last level (sets the per-level scale).
        per_level_scale: growth factor when `desired_resolution` is None.
        bound: inputs in [-bound, bound]^3 are encoded; outside, a plane gives zeros.
        log2_hashmap_size: cap on a level's table size (larger levels hash).
        init_std: tables start uniform in [-init_std, init_std].

    Example:
        >>> enc = TriPlaneEncoder.face()
        >>> enc(torch.zeros(10, 3)).shape
        torch.Size([10, 36])
    """

    def __init__(self, num_levels: int = 12, level_dim: int = 1, base_resolution: int = 16,
                 desired_resolution: float | None = 256 * 0.15, per_level_scale: float = 2.0,
                 bound: float = 0.15, log2_hashmap_size: int = 17, init_std: float = 1e-4):
        super().__init__()
        self.num_levels = num_levels
        self.level_dim = level_dim
        self.bound = float(bound)
        self.layout = grid_layout(num_levels, base_resolution, desired_resolution, per_level_scale,
                                  log2_hashmap_size)
        self.output_dim = 3 * num_levels * level_dim
        lay = self.layout
        # float64 so `.double()` keeps full precision; forward casts to the input dtype (float32 as in CUDA).
        self.register_buffer("scales", torch.tensor(lay.scales, dtype=torch.float64), persistent=False)
        self.register_buffer("strides", torch.tensor([r + 1 for r in lay.resolutions]), persistent=False)
        self.register_buffer("offsets", torch.tensor(lay.offsets[:-1]), persistent=False)
        self.register_buffer("sizes", torch.tensor(lay.sizes), persistent=False)
        self.register_buffer("hashed", torch.tensor(lay.hashed), persistent=False)
        self.embeddings = nn.Parameter(torch.empty(3, lay.offsets[-1], level_dim))  # [3, P, F]
        nn.init.uniform_(self.embeddings, -init_std, init_std)

    @classmethod
    def face(cls, **overrides) -> "TriPlaneEncoder":
        """Upstream's face-branch grids: base 16 -> 39 over 12 levels, bound 0.15."""
        return cls(**{**FACE_GRID, **overrides})

    @classmethod
    def mouth(cls, **overrides) -> "TriPlaneEncoder":
        """Upstream's inside-mouth grids: base 64 -> 58 (decreasing; see the module note)."""
        return cls(**{**MOUTH_GRID, **overrides})

    @property
    def resolutions(self) -> list[int]:
        return list(self.layout.resolutions)

    def forward(self, coords: Tensor) -> Tensor:  # [..., 3] -> [..., 3*L*F]
        hashed = self.hashed if any(self.layout.hashed) else None
        return tri_plane_encode(coords, self.embeddings, self.scales, self.strides, self.offsets,
                                self.sizes, hashed, self.bound)

    def extra_repr(self) -> str:
        return (f"levels={self.num_levels}, level_dim={self.level_dim}, resolutions={self.resolutions}, "
                f"bound={self.bound}, table={tuple(self.embeddings.shape)}")

"""Pure-PyTorch twin of gsplat 1.5.3's 3DGS rasterizer: the CPU path and the reference backend.

Three steps, cut like gsplat's kernels:
1. `project_gaussians`: world -> camera -> pixels (EWA splatting), conics, opacity-aware radii and
   culling. Plain autograd (O(N) work).
2. `intersect_tiles`: for every image tile, the Gaussians whose bounding box touches it, sorted
   front to back by camera z. No gradient.
3. `_CompositeTiles`: front-to-back alpha compositing per tile, in rounds of `gauss_chunk` Gaussians
   per tile, with a cumulative-product transmittance inside each round. Its handwritten backward
   recomputes the alphas back to front, so memory is O(pixels x rounds), not O(pixel-Gaussian pairs),
   and work per round is bounded by `max_pairs`.

Conventions (gsplat's): pixel centres at +0.5; J uses x/z, y/z clamped to 1.3x the half-FoV (for a
centred principal point); eps2d added to the 2-D covariance diagonal; alpha = min(0.999, o exp(-s));
pairs with alpha < 1/255 or s < 0 are skipped; a pixel stops before the Gaussian that would bring its
transmittance to <= 1e-4 (that one is excluded); alphas = 1 - T_final; depth is composited as an
extra colour channel (sum z a T, not normalised).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from gaussian_renderer.rasterize import RasterOutput

ALPHA_MIN = 1.0 / 255.0  # contributions below are skipped
ALPHA_MAX = 0.999  # alpha clamp
T_MIN = 1e-4  # a pixel stops before its transmittance would reach this
RADIUS_EXTEND = 3.33  # bounding box half-size in standard deviations (capped by the opacity rule)
TILE_SIZE = 8  # 8x8 tiles: fewer wasted pixel-Gaussian pairs than 16x16 on CPU


def quat_to_rotmat(quats: Tensor) -> Tensor:
    """[..., 4] wxyz (any norm) -> [..., 3, 3] rotation matrices."""
    w, x, y, z = F.normalize(quats, dim=-1).unbind(-1)
    R = torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1)
    return R.reshape(quats.shape[:-1] + (3, 3))


def project_gaussians(
    means: Tensor,  # [B, N, 3]
    quats: Tensor,  # [B, N, 4]
    scales: Tensor,  # [B, N, 3]
    opacities: Tensor,  # [B, N]
    viewmats: Tensor,  # [B, 4, 4]
    Ks: Tensor,  # [B, 3, 3]
    width: int,
    height: int,
    near: float = 0.01,
    far: float = 100.0,
    eps2d: float = 0.3,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """EWA projection with gsplat's rules (torch twin of `fully_fused_projection`, opacity-aware radii).

    Returns means2d [B, N, 2] (0 where culled), conics [B, N, 3] (inverse 2-D covariance a, b, c with
    s = 0.5 (a dx^2 + c dy^2) + b dx dy), depths [B, N] (camera z) and radii [B, N, 2] int32 per axis
    (0 = culled: z outside [near, far], singular covariance, opacity < 1/255, or off-image box).
    """
    M = quat_to_rotmat(quats) * scales[..., None, :]  # [B, N, 3, 3]  R S
    covars = M @ M.transpose(-1, -2)  # [B, N, 3, 3]
    Rv = viewmats[:, None, :3, :3]  # [B, 1, 3, 3]
    means_c = (Rv @ means[..., None]).squeeze(-1) + viewmats[:, None, :3, 3]  # [B, N, 3]
    covars_c = Rv @ covars @ Rv.transpose(-1, -2)  # [B, N, 3, 3]

    x, y, z = means_c.unbind(-1)  # [B, N]
    in_range = (z >= near) & (z <= far)
    z = torch.where(in_range, z, torch.ones_like(z))  # keeps culled Gaussians (and their grads) finite
    fx, fy, cx, cy = Ks[:, 0, 0, None], Ks[:, 1, 1, None], Ks[:, 0, 2, None], Ks[:, 1, 2, None]  # [B, 1]
    lim_x_pos = (width - cx) / fx + 0.3 * (0.5 * width / fx)
    lim_x_neg = cx / fx + 0.3 * (0.5 * width / fx)
    lim_y_pos = (height - cy) / fy + 0.3 * (0.5 * height / fy)
    lim_y_neg = cy / fy + 0.3 * (0.5 * height / fy)
    tx = z * torch.clamp(x / z, min=-lim_x_neg, max=lim_x_pos)
    ty = z * torch.clamp(y / z, min=-lim_y_neg, max=lim_y_pos)
    zero = torch.zeros_like(z)
    J = torch.stack([fx / z, zero, -fx * tx / (z * z), zero, fy / z, -fy * ty / (z * z)], dim=-1)
    J = J.reshape(z.shape + (2, 3))  # [B, N, 2, 3]
    cov2d = J @ covars_c @ J.transpose(-1, -2)  # [B, N, 2, 2]
    a = cov2d[..., 0, 0] + eps2d
    b = 0.5 * (cov2d[..., 0, 1] + cov2d[..., 1, 0])
    c = cov2d[..., 1, 1] + eps2d
    det = a * c - b * b
    valid = in_range & (det > 0)
    det = torch.where(valid, det, torch.ones_like(det))
    conics = torch.stack([c / det, -b / det, a / det], dim=-1)  # [B, N, 3]
    means2d = torch.stack([fx * x / z + cx, fy * y / z + cy], dim=-1)  # [B, N, 2]

    with torch.no_grad():
        opac = opacities.detach()
        valid = valid & (opac >= ALPHA_MIN)
        # Opacity-aware box: alpha >= 1/255 only inside s <= ln(255 o), i.e. |dx| <= sqrt(2 ln(255 o) a).
        extend = torch.sqrt(2.0 * torch.log((opac / ALPHA_MIN).clamp_min(1.0))).clamp_max(RADIUS_EXTEND)
        rx = torch.ceil(extend * torch.sqrt(a.detach().clamp_min(0)))
        ry = torch.ceil(extend * torch.sqrt(c.detach().clamp_min(0)))
        valid = valid & ((rx > 0) | (ry > 0))
        mx, my = means2d.detach().unbind(-1)
        valid = valid & (mx + rx > 0) & (mx - rx < width) & (my + ry > 0) & (my - ry < height)
        radii = torch.stack([rx, ry], dim=-1).where(valid[..., None], torch.zeros_like(means2d)).int()
    means2d = means2d.where(valid[..., None], torch.zeros_like(means2d))
    return means2d, conics, means_c[..., 2], radii


@torch.no_grad()
def intersect_tiles(
    means2d: Tensor,  # [I, N, 2]
    radii: Tensor,  # [I, N, 2] int
    depths: Tensor,  # [I, N]
    tile_size: int,
    tile_width: int,
    tile_height: int,
) -> tuple[Tensor, Tensor]:
    """Per-tile lists of touching Gaussians, front to back (ties: lower index first, like gsplat).

    Returns offsets [I * tile_height * tile_width + 1] (int64; tile t owns flatten_ids[offsets[t]:
    offsets[t + 1]]) and flatten_ids [M] (int64 indices into the flattened [I * N]).
    """
    I, N = depths.shape
    device = means2d.device
    n_tiles = I * tile_height * tile_width
    visible = (radii > 0).all(-1).reshape(-1).nonzero().squeeze(1)  # [V] into I * N
    m = means2d.reshape(-1, 2)[visible].double() / tile_size  # [V, 2] in tiles
    r = radii.reshape(-1, 2)[visible].double() / tile_size
    x0 = torch.floor(m[:, 0] - r[:, 0]).clamp(0, tile_width).long()
    x1 = torch.ceil(m[:, 0] + r[:, 0]).clamp(0, tile_width).long()
    y0 = torch.floor(m[:, 1] - r[:, 1]).clamp(0, tile_height).long()
    y1 = torch.ceil(m[:, 1] + r[:, 1]).clamp(0, tile_height).long()
    nx = x1 - x0
    counts = nx * (y1 - y0)  # [V]
    g = torch.repeat_interleave(torch.arange(len(visible), device=device), counts)  # [M]
    k = torch.arange(len(g), device=device) - (torch.cumsum(counts, 0) - counts)[g]  # rank in the box
    tile = (visible[g] // N * tile_height + y0[g] + k // nx[g]) * tile_width + x0[g] + k % nx[g]
    rank = torch.empty(I, N, dtype=torch.long, device=device)  # front-to-back rank within its image
    rank.scatter_(1, torch.argsort(depths, dim=1, stable=True), torch.arange(N, device=device).expand(I, N))
    keys, order = torch.sort(tile * N + rank.reshape(-1)[visible[g]])
    flatten_ids = visible[g][order]
    offsets = torch.zeros(n_tiles + 1, dtype=torch.long, device=device)
    offsets[1:] = torch.cumsum(torch.bincount(keys // N, minlength=n_tiles), 0)
    return offsets, flatten_ids


@dataclass
class _TilePlan:
    """Non-differentiable inputs of the compositor: tile lists, image geometry, chunking."""

    offsets: Tensor  # [n_tiles + 1]
    flatten_ids: Tensor  # [M]
    n_images: int
    width: int
    height: int
    tile_size: int
    tile_width: int
    tile_height: int
    gauss_chunk: int  # Gaussians per tile per round
    max_pairs: int  # pixel-Gaussian pairs evaluated at once (bounds memory)

    @property
    def n_tiles(self) -> int:
        return self.n_images * self.tile_height * self.tile_width

    def outside(self) -> Tensor:
        """[n_tiles, P] bool: tile padding beyond the image."""
        ts = self.tile_size
        local = torch.arange(ts, device=self.offsets.device)
        tiles = torch.arange(self.n_tiles, device=self.offsets.device)
        px = (tiles % self.tile_width * ts)[:, None, None] + local[None, None, :]  # [n_tiles, 1, ts]
        py = (tiles // self.tile_width % self.tile_height * ts)[:, None, None] + local[None, :, None]
        return ((px >= self.width) | (py >= self.height)).reshape(self.n_tiles, ts * ts)

    def rounds(self):
        """Yield (r, has_round [n_tiles] bool, tiles per group) for each round of `gauss_chunk` Gaussians."""
        counts = self.offsets[1:] - self.offsets[:-1]
        n_rounds = math.ceil(int(counts.max()) / self.gauss_chunk) if len(counts) else 0
        per_group = max(1, self.max_pairs // (self.tile_size**2 * self.gauss_chunk))
        for r in range(n_rounds):
            yield r, counts > r * self.gauss_chunk, per_group

    def gather(self, tiles: Tensor, r: int) -> tuple[Tensor, Tensor]:
        """Gaussian ids [A, G] of round r for `tiles` and their validity mask [A, G]."""
        G = self.gauss_chunk
        idx = self.offsets[tiles, None] + r * G + torch.arange(G, device=tiles.device)  # [A, G]
        valid = idx < self.offsets[tiles + 1, None]
        idx = idx.clamp_max(max(len(self.flatten_ids) - 1, 0))
        return self.flatten_ids[idx], valid

    def deltas(self, tiles: Tensor, mean: Tensor) -> tuple[Tensor, Tensor]:
        """dx [A, 1, ts, G] (per column) and dy [A, ts, 1, G] (per row): Gaussian mean minus pixel centre."""
        ts = self.tile_size
        centres = torch.arange(ts, device=tiles.device, dtype=mean.dtype) + 0.5
        ox = (tiles % self.tile_width * ts).to(mean.dtype)[:, None]  # [A, 1]
        oy = (tiles // self.tile_width % self.tile_height * ts).to(mean.dtype)[:, None]
        dx = mean[:, None, :, 0] - (ox + centres)[..., None]  # [A, ts, G]
        dy = mean[:, None, :, 1] - (oy + centres)[..., None]
        return dx[:, None], dy[:, :, None]

    def to_image(self, t: Tensor) -> Tensor:
        """[n_tiles, P, D] tile layout -> [I, H, W, D] images."""
        ts, th, tw = self.tile_size, self.tile_height, self.tile_width
        t = t.reshape(self.n_images, th, tw, ts, ts, -1).permute(0, 1, 3, 2, 4, 5)
        return t.reshape(self.n_images, th * ts, tw * ts, -1)[:, : self.height, : self.width]

    def to_tiles(self, img: Tensor) -> Tensor:
        """[I, H, W, D] images -> [n_tiles, P, D] tile layout (zero padding)."""
        ts, th, tw = self.tile_size, self.tile_height, self.tile_width
        img = F.pad(img, (0, 0, 0, tw * ts - self.width, 0, th * ts - self.height))
        img = img.reshape(self.n_images, th, ts, tw, ts, -1).permute(0, 1, 3, 2, 4, 5)
        return img.reshape(self.n_tiles, ts * ts, -1)


def _chunk_alphas(dx, dy, conic, opac, T_in):
    """One round of one tile group, as [A, P, G] pair tensors (P = ts * ts pixels, row-major).

    dx [A, 1, ts, G], dy [A, ts, 1, G] from `deltas`; conic [A, G, 3]; opac [A, G] (0 for padding
    slots); T_in [A, P] the transmittance entering the round (0 for pixels already done).
    Returns vis = exp(-s), alpha (clamped; 0 where skipped or past the stop), the transmittance
    before and after each Gaussian relative to T_in, and `alive` (the prefix before the stop).
    """
    A, _, ts, G = dx.shape
    a, b, c = (conic[:, None, None, :, k] for k in range(3))  # [A, 1, 1, G]
    # s = 0.5 (a dx^2 + c dy^2) + b dx dy, built from per-row and per-column pieces (2 full-size ops).
    sigma = torch.addcmul(0.5 * a * dx * dx + 0.5 * c * dy * dy, b * dy, dx).reshape(A, ts * ts, G)
    vis = torch.exp(-sigma)
    alpha = (opac[:, None, :] * vis).clamp_max_(ALPHA_MAX)
    alpha = alpha.masked_fill_((alpha < ALPHA_MIN) | (sigma < 0), 0.0)
    prod = torch.cumprod(1 - alpha, dim=-1)  # [A, P, G] transmittance after each, relative to T_in
    # Stop rule: exclude the first Gaussian with T_in * prod <= T_MIN and all behind it. prod is
    # monotone, so `alive` is a prefix; skipped Gaussians (alpha 0) keep prod unchanged.
    alive = prod > (T_MIN / T_in.clamp_min(1e-38))[..., None]
    alpha = alpha.masked_fill_(~alive, 0.0)
    before = torch.cat([torch.ones_like(prod[..., :1]), prod[..., :-1]], dim=-1)
    return vis, alpha, before, prod, alive


class _CompositeTiles(torch.autograd.Function):
    """Front-to-back compositing over per-tile Gaussian lists (torch twin of `rasterize_to_pixels`)."""

    @staticmethod
    def forward(ctx, means2d, conics, colors, opacities, bg, plan: _TilePlan):
        # means2d [IN, 2], conics [IN, 3], colors [IN, D], opacities [IN], bg [I, D] or None
        dtype, D, device = colors.dtype, colors.shape[-1], colors.device
        outside = plan.outside()
        n_tiles, P = outside.shape
        T = torch.ones(n_tiles, P, dtype=dtype, device=device)
        done = outside.clone()
        acc = torch.zeros(n_tiles, P, D, dtype=dtype, device=device)
        saved = []  # (tiles, r, T_in) per group, for the backward pass
        for r, has_round, per_group in plan.rounds():
            active = (has_round & ~done.all(-1)).nonzero().squeeze(1)
            for tiles in active.split(per_group):
                gid, valid = plan.gather(tiles, r)
                T_tiles = T[tiles]
                T_in = T_tiles.masked_fill(done[tiles], 0.0)
                dx, dy = plan.deltas(tiles, means2d[gid])
                _, alpha, before, prod, alive = _chunk_alphas(dx, dy, conics[gid], opacities[gid] * valid, T_in)
                acc[tiles] += T_in[..., None] * torch.bmm(alpha * before, colors[gid])  # [A, P, D]
                # T after the last Gaussian before the stop; k < G means the stop rule fired (pixel done).
                k = alive.sum(-1, keepdim=True)  # [A, P, 1]
                factor = torch.gather(prod, -1, (k - 1).clamp_min(0))[..., 0].masked_fill(k[..., 0] == 0, 1.0)
                T[tiles] = T_tiles * factor
                done[tiles] |= k[..., 0] < alpha.shape[-1]
                saved.append((tiles, r, T_in))
        T = T.masked_fill(outside, 1.0)
        img = acc if bg is None else acc + T[..., None] * bg.repeat_interleave(n_tiles // plan.n_images, 0)[:, None]
        ctx.plan, ctx.saved = plan, saved
        ctx.save_for_backward(means2d, conics, colors, opacities, bg, T)
        return plan.to_image(img), plan.to_image(1 - T[..., None])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, v_img, v_alphas):
        means2d, conics, colors, opacities, bg, T_final = ctx.saved_tensors
        plan = ctx.plan
        v_acc = plan.to_tiles(v_img)  # [n_tiles, P, D]
        # dL/dalpha_g from the terms that use T_final (1 - T_final and T_final * bg), times (1 - alpha_g).
        tail = -T_final * plan.to_tiles(v_alphas)[..., 0]  # [n_tiles, P]
        v_bg = None
        if bg is not None:
            bg_t = bg.repeat_interleave(v_acc.shape[0] // plan.n_images, 0)  # [n_tiles, D]
            tail = tail + T_final * (v_acc * bg_t[:, None]).sum(-1)
            v_bg = (T_final[..., None] * v_acc).reshape(plan.n_images, -1, v_acc.shape[-1]).sum(1)
        v_means2d, v_conics = torch.zeros_like(means2d), torch.zeros_like(conics)
        v_colors, v_opac = torch.zeros_like(colors), torch.zeros_like(opacities)
        behind_all = torch.zeros_like(T_final)  # sum of w f over the rounds behind the current one
        for tiles, r, T_in in reversed(ctx.saved):
            gid, valid = plan.gather(tiles, r)
            conic, opac, col = conics[gid], opacities[gid] * valid, colors[gid]  # [A, G, ...]
            dx, dy = plan.deltas(tiles, means2d[gid])
            vis, alpha, before, _, _ = _chunk_alphas(dx, dy, conic, opac, T_in)
            vc = v_acc[tiles]  # [A, P, D]
            f = torch.bmm(vc, col.transpose(1, 2))  # [A, P, G]  dL/dcolour . colour
            w = alpha * before * T_in[..., None]  # [A, P, G]  blending weights
            wf = w * f
            cum = torch.cumsum(wf, -1)
            behind = (behind_all[tiles] + cum[..., -1] + tail[tiles])[..., None] - cum  # + later rounds, bg, alpha
            v_a = (before * T_in[..., None] * f - behind / (1 - alpha)).masked_fill_(alpha == 0, 0.0)
            q = v_a.mul_(vis).masked_fill_(vis > ALPHA_MAX / opac.clamp_min(1e-38)[:, None, :], 0.0)  # clamp: no grad
            A, ts, G = q.shape[0], dx.shape[2], q.shape[-1]
            v_sigma = (q * -opac[:, None, :]).reshape(A, ts, ts, G)  # rows, columns
            col_sum, row_sum = v_sigma.sum(1, keepdim=True), v_sigma.sum(2, keepdim=True)
            s_x, s_xx = (col_sum * dx).sum((1, 2)), (col_sum * dx * dx).sum((1, 2))  # [A, G]
            s_y, s_yy = (row_sum * dy).sum((1, 2)), (row_sum * dy * dy).sum((1, 2))
            s_xy = ((v_sigma * dx).sum(2, keepdim=True) * dy).sum((1, 2))
            a, b, c = conic.unbind(-1)
            flat = gid.reshape(-1)
            v_opac.index_add_(0, flat, q.sum(1).reshape(-1))
            v_means2d.index_add_(0, flat, torch.stack([a * s_x + b * s_y, b * s_x + c * s_y], -1).reshape(-1, 2))
            v_conics.index_add_(0, flat, torch.stack([0.5 * s_xx, s_xy, 0.5 * s_yy], -1).reshape(-1, 3))
            v_colors.index_add_(0, flat, torch.bmm(w.transpose(1, 2), vc).reshape(-1, col.shape[-1]))
            behind_all[tiles] += cum[..., -1]
        return v_means2d, v_conics, v_colors, v_opac, v_bg, None


def rasterize_torch(
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
    tile_size: int = TILE_SIZE,
    gauss_chunk: int = 64,
    max_pairs: int | None = None,
) -> RasterOutput:
    """Rasterize B views (each with its own N Gaussians); see `gaussian_renderer.rasterize`.

    `gauss_chunk` (Gaussians per tile per round) and `max_pairs` (pixel-Gaussian pairs held at once;
    default 2^20 on CPU, 2^23 on CUDA, i.e. ~4 / 32 MB per float32 temporary) only trade speed for
    memory: the result does not depend on them.
    """
    if max_pairs is None:
        max_pairs = 1 << 23 if means.device.type == "cuda" else 1 << 20
    B, N = means.shape[:2]
    D = colors.shape[-1]
    means2d, conics, depths, radii = project_gaussians(
        means, quats, scales, opacities, viewmats, Ks, width, height, near, far, eps2d)
    tile_width, tile_height = math.ceil(width / tile_size), math.ceil(height / tile_size)
    offsets, flatten_ids = intersect_tiles(means2d.detach(), radii, depths.detach(), tile_size,
                                           tile_width, tile_height)
    plan = _TilePlan(offsets, flatten_ids, B, width, height, tile_size, tile_width, tile_height,
                     gauss_chunk, max_pairs)
    features = torch.cat([colors, depths[..., None].to(colors.dtype)], dim=-1)  # depth as channel D
    bg_ext = None if bg is None else torch.cat([bg.to(colors.dtype), colors.new_zeros(B, 1)], dim=-1)
    img, alphas = _CompositeTiles.apply(
        means2d.reshape(B * N, 2), conics.reshape(B * N, 3), features.reshape(B * N, D + 1),
        opacities.reshape(B * N), bg_ext, plan)
    if means2d.requires_grad:
        means2d.retain_grad()
    return RasterOutput(colors=img[..., :D], depths=img[..., D:], alphas=alphas,
                        radii=radii.max(-1).values, means2d=means2d, backend="torch")

"""Float64 brute-force rasterizer: every pixel x every Gaussian, gsplat 1.5.3's rules, no tiles.

The ground truth the tests and the GPU check compare both backends with. Written independently of
`_torch_backend` (its own quaternion formula, explicit 2x2 inverse, one Gaussian at a time over all
pixels) and kept slow and obvious on purpose. It is differentiable through torch autograd, so its
gradients can be compared too. The only culling is the rules themselves: z outside [near, far], a
singular 2-D covariance, and per pixel s < 0 or alpha < 1/255; compositing stops before the Gaussian
that would bring the transmittance to <= 1e-4.

Also here: `random_scene`, the synthetic face-sized scene the tests, benchmark and GPU check share.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from gaussian_renderer.rasterize import RasterOutput


def _rotation(q: Tensor) -> Tensor:
    """[N, 4] wxyz -> [N, 3, 3], as (w^2 - v.v) I + 2 v v^T + 2 w [v]x for the unit quaternion."""
    q = q / q.norm(dim=-1, keepdim=True)
    w, v = q[:, 0], q[:, 1:]
    eye = torch.eye(3, dtype=q.dtype, device=q.device)
    cross = torch.zeros(q.shape[0], 3, 3, dtype=q.dtype, device=q.device)
    cross = cross + torch.stack([
        torch.stack([torch.zeros_like(w), -v[:, 2], v[:, 1]], -1),
        torch.stack([v[:, 2], torch.zeros_like(w), -v[:, 0]], -1),
        torch.stack([-v[:, 1], v[:, 0], torch.zeros_like(w)], -1),
    ], 1)
    return ((w * w - (v * v).sum(-1))[:, None, None] * eye + 2 * v[:, :, None] * v[:, None, :]
            + 2 * w[:, None, None] * cross)


def _render_view(means, quats, scales, opacities, colors, viewmat, K, width, height, bg, near, far, eps2d):
    """One view, float64. Returns colors [H, W, D], depths [H, W, 1], alphas [H, W, 1], radii [N], means2d [N, 2]."""
    N, D = colors.shape
    R = _rotation(quats)
    cov = R @ torch.diag_embed(scales**2) @ R.transpose(1, 2)  # [N, 3, 3]
    W_rot, t = viewmat[:3, :3], viewmat[:3, 3]
    p = means @ W_rot.T + t  # [N, 3] camera space
    cov_c = W_rot @ cov @ W_rot.T
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]

    ys, xs = torch.meshgrid(torch.arange(height, dtype=means.dtype, device=means.device) + 0.5,
                            torch.arange(width, dtype=means.dtype, device=means.device) + 0.5, indexing="ij")
    out = torch.zeros(height, width, D, dtype=means.dtype, device=means.device)
    depth = torch.zeros(height, width, dtype=means.dtype, device=means.device)
    T = torch.ones(height, width, dtype=means.dtype, device=means.device)
    done = torch.zeros(height, width, dtype=torch.bool, device=means.device)
    radii = torch.zeros(N, dtype=torch.int32, device=means.device)
    means2d = torch.zeros(N, 2, dtype=means.dtype, device=means.device)

    for i in torch.argsort(p[:, 2].detach(), stable=True).tolist():  # front to back, ties by index
        x, y, z = p[i]
        if not (near <= z.item() <= far):
            continue
        # Jacobian of (fx x/z + cx, fy y/z + cy), with x/z and y/z held within 1.3x the half-FoV.
        u = torch.clamp(x / z, -(cx / fx + 0.15 * width / fx), (width - cx) / fx + 0.15 * width / fx)
        v = torch.clamp(y / z, -(cy / fy + 0.15 * height / fy), (height - cy) / fy + 0.15 * height / fy)
        J = torch.stack([torch.stack([fx / z, torch.zeros_like(z), -fx * u / z]),
                         torch.stack([torch.zeros_like(z), fy / z, -fy * v / z])])
        S = J @ cov_c[i] @ J.T + eps2d * torch.eye(2, dtype=means.dtype, device=means.device)
        det = S[0, 0] * S[1, 1] - S[0, 1] * S[1, 0]
        if det.item() <= 0:
            continue
        inv = torch.stack([torch.stack([S[1, 1], -S[0, 1]]), torch.stack([-S[1, 0], S[0, 0]])]) / det
        mu = torch.stack([fx * x / z + cx, fy * y / z + cy])
        o = opacities[i].item()
        if o >= 1 / 255:  # radius for reporting only (the opacity-aware box gsplat uses)
            ext = min(3.33, math.sqrt(2 * math.log(o * 255)))
            rx, ry = math.ceil(ext * math.sqrt(S[0, 0].item())), math.ceil(ext * math.sqrt(S[1, 1].item()))
            mx, my = mu[0].item(), mu[1].item()
            if max(rx, ry) > 0 and mx + rx > 0 and mx - rx < width and my + ry > 0 and my - ry < height:
                radii[i] = max(rx, ry)
                means2d[i] = mu.detach()
        d0, d1 = xs - mu[0], ys - mu[1]
        s = 0.5 * (inv[0, 0] * d0 * d0 + inv[1, 1] * d1 * d1) + 0.5 * (inv[0, 1] + inv[1, 0]) * d0 * d1
        alpha = torch.clamp(opacities[i] * torch.exp(-s), max=0.999)
        hit = (s >= 0) & (alpha >= 1 / 255) & ~done
        stop = hit & (T * (1 - alpha) <= 1e-4)
        done = done | stop
        use = hit & ~stop
        w = torch.where(use, alpha * T, torch.zeros_like(T))
        out = out + w[..., None] * colors[i]
        depth = depth + w * z
        T = torch.where(use, T * (1 - alpha), T)
    if bg is not None:
        out = out + T[..., None] * bg
    return out, depth[..., None], (1 - T)[..., None], radii, means2d


def rasterize_reference(
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
    """Brute-force twin of `rasterize_torch` / gsplat, computed in float64 whatever the input dtype.

    Outputs are float64 (radii int32, means2d detached). Gradients flow to float64 inputs.
    """
    to64 = (lambda t: t if t is None or t.dtype == torch.float64 else t.double())
    args = [to64(t) for t in (means, quats, scales, opacities, colors, viewmats, Ks)]
    bg = to64(bg)
    views = [_render_view(*(a[b] for a in args), width, height, None if bg is None else bg[b], near, far, eps2d)
             for b in range(means.shape[0])]
    cols, deps, alps, radii, m2d = (torch.stack(x) for x in zip(*views))
    return RasterOutput(colors=cols, depths=deps, alphas=alps, radii=radii, means2d=m2d, backend="reference")


def look_at_camera(width: int, height: int, *, focal_scale: float = 1.2, distance: float = 0.6,
                   batch: int = 1, dtype=torch.float32, device="cpu") -> tuple[Tensor, Tensor]:
    """viewmats [B, 4, 4] (identity rotation, scene centre `distance` m ahead) and Ks [B, 3, 3], centred."""
    viewmat = torch.eye(4, dtype=dtype, device=device)
    viewmat[2, 3] = distance
    f = focal_scale * width
    K = torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=dtype, device=device)
    return viewmat.expand(batch, 4, 4).clone(), K.expand(batch, 3, 3).clone()


def random_scene(n: int, *, channels: int = 3, cube: float = 0.2, opacity: tuple[float, float] = (0.1, 0.9),
                 anisotropy: float = 2.0, seed: int = 0, batch: int = 1, dtype=torch.float32, device="cpu"):
    """Face-sized synthetic scene: n Gaussians uniform in a `cube`-metre cube centred at the origin.

    Scales are the root mean squared distance to the 3 nearest neighbours (the 3DGS initialisation),
    times a random per-axis factor in [1/anisotropy, anisotropy]; random rotations, opacities uniform
    in `opacity`, colours uniform in [0, 1]. Returns means, quats, scales, opacities, colors, each
    with a leading batch dim (the same Gaussians repeated `batch` times).
    """
    from scipy.spatial import cKDTree

    gen = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=gen, dtype=torch.float64) - 0.5) * cube
    k = min(4, n)
    dist, _ = cKDTree(means.numpy()).query(means.numpy(), k=k)
    nn = torch.from_numpy(dist[:, 1:] if k > 1 else dist + cube)
    base = (nn**2).mean(-1).clamp_min(1e-12).sqrt()
    aniso = torch.exp((torch.rand(n, 3, generator=gen, dtype=torch.float64) * 2 - 1) * math.log(anisotropy))
    scales = base[:, None] * aniso
    quats = torch.randn(n, 4, generator=gen, dtype=torch.float64)
    lo, hi = opacity
    opacities = lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)
    colors = torch.rand(n, channels, generator=gen, dtype=torch.float64)
    return tuple(t.to(dtype=dtype, device=device).expand(batch, *t.shape).clone()
                 for t in (means, quats, scales, opacities, colors))

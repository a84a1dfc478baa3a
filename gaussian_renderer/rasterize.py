"""The one rasterize API of the project; every renderer calls `rasterize`.

Backends (same inputs, same outputs, agree within float tolerance):
- ``gsplat``: CUDA, gsplat 1.5.3 (production path).
- ``torch``: our differentiable pure-PyTorch rasterizer (reference and CPU path).
- ``auto``: gsplat when the tensors live on CUDA and gsplat imports, torch otherwise.

Conventions (gsplat's): pixel centres at +0.5, world-to-camera `viewmats` in OpenCV axes
(x right, y down, z forward), intrinsics `Ks` = [[fx,0,cx],[0,fy,cy],[0,0,1]], quaternions wxyz,
`scales` and `opacities` already activated. A 0.3 px low-pass is added to every 2-D covariance,
alpha is clamped to 0.999, contributions under 1/255 are skipped, and compositing stops before
transmittance would fall under 1e-4.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

log = logging.getLogger(__name__)

Backend = Literal["auto", "torch", "gsplat"]
_announced: set[str] = set()


@dataclass
class RasterOutput:
    """What `rasterize` returns. B = batch of views (absent for a single view)."""

    colors: Tensor  # [B, H, W, D]  sum c_i a_i T_i (+ T_final * bg when bg is given)
    depths: Tensor  # [B, H, W, 1]  sum z_i a_i T_i (expected depth, not normalised)
    alphas: Tensor  # [B, H, W, 1]  sum a_i T_i
    radii: Tensor  # [B, N] int, 0 for Gaussians that were culled (not visible)
    means2d: Tensor  # [B, N, 2] pixel-space centres, always batched; the backend retains its grad
    # (when it requires grad) so densification can read means2d.grad after backward.
    backend: str = ""
    extras: dict = field(default_factory=dict)

    @property
    def visibility(self) -> Tensor:  # [B, N] bool
        return self.radii > 0


def resolve_backend(backend: Backend, device: torch.device) -> str:
    """Pick the concrete backend and say once which one runs."""
    if backend == "auto":
        backend = "torch"
        if device.type == "cuda":
            try:
                from gaussian_renderer.gsplat_prebuilt import preload_prebuilt_gsplat

                preload_prebuilt_gsplat()
                import gsplat  # noqa: F401

                backend = "gsplat"
            except ImportError:
                log.warning("gsplat is not installed: using the (slow) torch rasterizer on CUDA")
    if backend == "gsplat" and device.type != "cuda":
        raise RuntimeError("The gsplat backend needs CUDA tensors; use --backend torch (or auto) on CPU.")
    if backend not in ("torch", "gsplat"):
        raise ValueError(f"Unknown rasterizer backend {backend!r}; choose auto, torch or gsplat.")
    if backend not in _announced:
        _announced.add(backend)
        log.info("Rasterizer backend: %s", backend)
    return backend


def rasterize(
    means: Tensor,  # [B, N, 3] or [N, 3] world positions
    quats: Tensor,  # [B, N, 4] or [N, 4] wxyz, need not be normalised
    scales: Tensor,  # [B, N, 3] or [N, 3] activated (positive) scales
    opacities: Tensor,  # [B, N] or [N] in [0, 1]
    colors: Tensor,  # [B, N, D] or [N, D] any D >= 1 (precomputed colours / features)
    viewmats: Tensor,  # [B, 4, 4] or [4, 4] world-to-camera (OpenCV)
    Ks: Tensor,  # [B, 3, 3] or [3, 3]
    width: int,
    height: int,
    *,
    bg: Tensor | None = None,  # [D] or [B, D] background added with weight T_final
    near: float = 0.01,
    far: float = 100.0,
    eps2d: float = 0.3,
    backend: Backend = "auto",
) -> RasterOutput:
    """Rasterize 3-D Gaussians to colour, expected depth and alpha images.

    Inputs may carry a leading batch dim B (one view per batch entry, each with its own
    Gaussians, as when every frame deforms the field differently); without it the outputs have
    no batch dim either (colors [H, W, D], radii [N], ...).
    """
    unbatched = means.dim() == 2
    if unbatched:
        means, quats, scales, opacities, colors = (t.unsqueeze(0) for t in (means, quats, scales, opacities, colors))
        viewmats, Ks = viewmats.unsqueeze(0), Ks.unsqueeze(0)
        if bg is not None and bg.dim() == 1:
            bg = bg.unsqueeze(0)
    B, N = means.shape[:2]
    D = colors.shape[-1]
    assert means.shape == (B, N, 3), means.shape
    assert quats.shape == (B, N, 4), quats.shape
    assert scales.shape == (B, N, 3), scales.shape
    assert opacities.shape == (B, N), opacities.shape
    assert colors.shape == (B, N, D), colors.shape
    assert viewmats.shape == (B, 4, 4), viewmats.shape
    assert Ks.shape == (B, 3, 3), Ks.shape
    if bg is not None:
        bg = bg.expand(B, D) if bg.dim() == 1 else bg
        assert bg.shape == (B, D), bg.shape

    name = resolve_backend(backend, means.device)
    if name == "gsplat":
        from gaussian_renderer.gsplat_prebuilt import preload_prebuilt_gsplat

        preload_prebuilt_gsplat()
        from gaussian_renderer._gsplat_backend import rasterize_gsplat as impl
    else:
        from gaussian_renderer._torch_backend import rasterize_torch as impl
    out = impl(means, quats, scales, opacities, colors, viewmats, Ks, width, height,
               bg=bg, near=near, far=far, eps2d=eps2d)
    out.backend = name
    if unbatched:
        out.colors, out.depths, out.alphas = out.colors[0], out.depths[0], out.alphas[0]
        out.radii = out.radii[0]  # means2d stays batched: its .grad lives on the batched tensor
    return out

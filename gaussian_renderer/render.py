"""Face, mouth and fused renders: apply a motion network to the canonical Gaussians, then rasterize.

All functions take a batch of B views (one camera + one set of conditions per frame) and return
channel-last images. The fused image is face over mouth over the per-frame background B:

    mouth = C_mouth + B (1 - a_mouth)          (C_* are premultiplied: rendered without a background)
    image = C_face + mouth (1 - a_face)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from gaussian_renderer.rasterize import rasterize
from utils.sh_utils import eval_sh

if TYPE_CHECKING:  # the model is only read here; the renderer sits below the models (tests/test_layering.py)
    from scene.models.gaussian_model import GaussianModel


@dataclass
class Views:
    """B pinhole views of one size."""

    viewmats: Tensor  # [B, 4, 4] world-to-camera (OpenCV)
    Ks: Tensor  # [B, 3, 3]
    width: int
    height: int

    @property
    def batch(self) -> int:
        return self.viewmats.shape[0]

    @property
    def centers(self) -> Tensor:  # [B, 3] camera positions in world
        R, t = self.viewmats[:, :3, :3], self.viewmats[:, :3, 3]
        return -(R.transpose(1, 2) @ t[..., None])[..., 0]


def sh_colors(model: GaussianModel, means: Tensor, views: Views) -> Tensor:
    """View-dependent RGB of every Gaussian for every view: means [B, N, 3] -> [B, N, 3]."""
    dirs = F.normalize(means - views.centers[:, None, :], dim=-1)
    return eval_sh(model.active_sh_degree, model.sh[None], dirs).expand(dirs.shape)  # degree 0 ignores dirs


def deform_face(model: GaussianModel, motion: dict) -> tuple[Tensor, Tensor, Tensor]:
    """Apply face offsets (B frames) to the canonical Gaussians: means, quats, scales [B, N, *]."""
    means = model.means[None] + motion["d_xyz"]
    quats = F.normalize(model.params["quats"][None] + motion["d_rot"], dim=-1)
    scales = torch.exp(model.params["log_scales"][None] + motion["d_scale"])
    return means, quats, scales


def render_face(model: GaussianModel, motion: dict, views: Views, backend: str = "auto",
                with_attention: bool = False) -> dict:
    """Face field for B frames. `motion` is FaceMotionNet's output ([B, N, k] tensors).

    Returns image [B,H,W,3] (premultiplied), alpha [B,H,W,1], depth [B,H,W,1], the RasterOutput
    (`raster`, for densification), and with_attention: attention [B,H,W,2] (audio, expression;
    a third channel, mouth code, for nets with mouth codes), rendered with detached geometry so only
    the attention nets learn from it (upstream).
    """
    means, quats, scales = deform_face(model, motion)
    B = views.batch
    opacities = model.opacities[None].expand(B, -1)
    out = rasterize(means, quats, scales, opacities, sh_colors(model, means, views), views.viewmats, views.Ks,
                    views.width, views.height, backend=backend)
    result = {"image": out.colors, "alpha": out.alphas, "depth": out.depths, "raster": out}
    if with_attention:
        names = ["ambient_aud", "ambient_eye"] + (["ambient_mouth"] if "ambient_mouth" in motion else [])
        ambient = torch.cat([motion[k] for k in names], dim=-1)  # [B, N, 2 or 3]
        att = rasterize(means.detach(), quats.detach(), scales.detach(), opacities.detach(), ambient,
                        views.viewmats, views.Ks, views.width, views.height, backend=backend)
        result["attention"] = att.colors
    return result


def render_mouth(model: GaussianModel, motion: dict | None, views: Views, backend: str = "auto") -> dict:
    """Inside-mouth field for B frames; `motion` is MouthMotionNet's output, or None for the static field."""
    B = views.batch
    means = model.means[None].expand(B, -1, -1)
    if motion is not None:
        means = means + motion["d_xyz"]
    out = rasterize(means, model.quats[None].expand(B, -1, -1), model.scales[None].expand(B, -1, -1),
                    model.opacities[None].expand(B, -1), sh_colors(model, means, views), views.viewmats, views.Ks,
                    views.width, views.height, backend=backend)
    return {"image": out.colors, "alpha": out.alphas, "depth": out.depths, "raster": out}


def dilate_alpha(alpha: Tensor, size: int = 13) -> Tensor:
    """Max-pool dilation of [B, H, W, 1] alpha with reflect padding (upstream's --dilate)."""
    a = alpha.permute(0, 3, 1, 2)
    a = F.pad(a, (size // 2,) * 4, mode="reflect")
    return F.max_pool2d(a, size, stride=1).permute(0, 2, 3, 1)


def composite(face: dict, mouth: dict, background: Tensor, dilate: bool = False) -> Tensor:
    """Face over mouth over background: all [B, H, W, *]; returns [B, H, W, 3]."""
    a_mouth = dilate_alpha(mouth["alpha"]) if dilate else mouth["alpha"]
    mouth_img = mouth["image"] + background * (1.0 - a_mouth)
    return face["image"] + mouth_img * (1.0 - face["alpha"])

"""Behaviour of the public `rasterize` on CPU (torch backend): what a user of the API can rely on."""
from __future__ import annotations

import pytest
import torch

from gaussian_renderer import rasterize, resolve_backend
from tests.gaussian_renderer.scenes import hard_scene, single_gaussian

KEYS = ("means", "quats", "scales", "opacities", "colors", "viewmats", "Ks")


def _raster(s, width=32, height=32, **kw):
    return rasterize(*(s[k] for k in KEYS), width, height, **kw)


def _peak(alphas):  # alphas [H, W, 1] -> (row, col) of the brightest pixel
    idx = int(alphas[..., 0].argmax())
    return divmod(idx, alphas.shape[1])


def test_auto_backend_is_torch_on_cpu_and_gsplat_needs_cuda():
    assert resolve_backend("auto", torch.device("cpu")) == "torch"
    with pytest.raises(RuntimeError, match="needs CUDA"):
        resolve_backend("gsplat", torch.device("cpu"))
    with pytest.raises(ValueError, match="Unknown rasterizer backend"):
        resolve_backend("opengl", torch.device("cpu"))


def test_one_gaussian_lights_the_centre_pixel():
    out = _raster(single_gaussian(opacity=0.9))
    assert out.backend == "torch"
    assert out.colors.shape == (32, 32, 3) and out.alphas.shape == (32, 32, 1) and out.depths.shape == (32, 32, 1)
    assert out.radii.shape == (1,) and out.means2d.shape == (1, 1, 2)
    assert _peak(out.alphas) == (16, 16)  # principal point sits on the centre of pixel (16, 16)
    assert float(out.alphas[16, 16, 0]) == pytest.approx(0.9, abs=1e-6)  # s = 0 at the mean
    assert torch.allclose(out.colors[16, 16], torch.tensor([0.9, 0.45, 0.225]), atol=1e-6)
    assert float(out.depths[16, 16, 0] / out.alphas[16, 16, 0]) == pytest.approx(1.0, abs=1e-6)
    assert float(out.alphas[0, 0, 0]) == 0.0  # far corner: below 1/255, skipped


def test_moving_the_gaussian_moves_the_peak():
    # 0.1 m to the right and 0.05 m down at 1 m with f = 40 px -> 4 px right, 2 px down.
    out = _raster(single_gaussian(x=0.1, y=0.05))
    assert _peak(out.alphas) == (18, 20)
    assert torch.allclose(out.means2d[0, 0], torch.tensor([20.5, 18.5]))


def test_alpha_and_colour_stay_in_range():
    s = {k: v[0] for k, v in hard_scene(200, 3, seed=1, dtype=torch.float32).items() if k != "bg"}
    out = _raster(s, 48, 32, bg=torch.tensor([0.2, 0.4, 1.0]))
    assert float(out.alphas.min()) >= 0.0 and float(out.alphas.max()) <= 1.0
    assert float(out.alphas.max()) > 0.9  # the scene does cover some pixels
    assert float(out.colors.min()) >= 0.0 and float(out.colors.max()) <= 1.0 + 1e-6  # convex mix of [0, 1] values


def test_gaussian_behind_the_camera_renders_nothing():
    bg = torch.tensor([0.1, 0.2, 0.3])
    out = _raster(single_gaussian(z=-1.0), bg=bg)
    assert out.radii.tolist() == [0]
    assert torch.equal(out.alphas, torch.zeros(32, 32, 1))
    assert torch.equal(out.colors, bg.expand(32, 32, 3))
    near = _raster(single_gaussian(z=0.005), near=0.01)  # in front but closer than the near plane
    assert near.radii.tolist() == [0] and float(near.alphas.max()) == 0.0


def test_means2d_grad_is_populated_after_backward():
    s = single_gaussian(x=0.05)
    s = {k: (torch.cat([v, v]) if k in KEYS[:5] else v) for k, v in s.items()}  # two Gaussians
    s["means"] = s["means"] * torch.tensor([[1.0, 1, 1], [1, 1, -1]])  # the second one behind the camera
    s["means"].requires_grad_(True)
    out = _raster(s)
    assert out.means2d.requires_grad
    (out.colors[..., 0] * torch.linspace(0, 1, 32)).sum().backward()  # brighter to the right
    grad = out.means2d.grad
    assert grad is not None and grad.shape == (1, 2, 2)
    assert float(grad[0, 0, 0]) > 0  # moving it right raises the loss
    assert torch.equal(grad[0, 1], torch.zeros(2))  # culled: no gradient
    assert float(s["means"].grad[0, 0]) > 0


def test_opaque_stack_stops_before_transmittance_reaches_the_limit():
    # Three opacity-0.995 Gaussians on the same ray: after two T would be 2.5e-5 <= 1e-4, so the
    # second one is excluded; the pixel is the first Gaussian over the background.
    s = single_gaussian(opacity=0.995, dtype=torch.float64)
    s = {k: (v.repeat(3, *[1] * (v.dim() - 1)) if k in KEYS[:5] else v) for k, v in s.items()}
    s["means"] = torch.tensor([[0.0, 0, 1.0], [0, 0, 2.0], [0, 0, 3.0]], dtype=torch.float64)
    s["colors"] = torch.eye(3, dtype=torch.float64)
    bg = torch.tensor([0.0, 0.0, 0.0], dtype=torch.float64)
    out = _raster(s, bg=bg + 1.0)
    assert torch.allclose(out.colors[16, 16], torch.tensor([1.0, 0.005, 0.005], dtype=torch.float64), atol=1e-12)
    assert float(out.alphas[16, 16, 0]) == pytest.approx(0.995, abs=1e-12)
    clamped = _raster({**s, "opacities": torch.ones(3, dtype=torch.float64)}, bg=bg)
    assert float(clamped.alphas[16, 16, 0]) == pytest.approx(0.999, abs=1e-12)  # alpha clamp

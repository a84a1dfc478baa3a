"""Torch rasterizer vs the float64 brute force: values, gradients, gradcheck, chunking, batching, edge cases."""
from __future__ import annotations

import math

import pytest
import torch

from gaussian_renderer._reference import rasterize_reference
from gaussian_renderer._torch_backend import project_gaussians, rasterize_torch
from tests.gaussian_renderer.scenes import assert_close, hard_scene

W, H = 48, 32
INPUTS = ("means", "quats", "scales", "opacities", "colors")


def _render(fn, s, width=W, height=H, with_bg=True, **kw):
    return fn(*(s[k] for k in INPUTS), s["viewmats"], s["Ks"], width, height,
              bg=s["bg"] if with_bg else None, **kw)


def _compare(out, ref, atol, what=""):
    for key in ("colors", "depths", "alphas"):
        assert_close(getattr(out, key), getattr(ref, key), atol, f"{what}{key}")
    assert torch.equal(out.radii, ref.radii), f"{what}radii differ"


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("n,channels", [(20, 1), (200, 3), (120, 5)])
@pytest.mark.parametrize("with_bg", [True, False])
def test_cpu_float64_matches_brute_force(n, channels, seed, with_bg):
    s = hard_scene(n, channels, seed)
    ref = _render(rasterize_reference, s, with_bg=with_bg)
    out = _render(rasterize_torch, s, with_bg=with_bg)
    assert 0 < int((ref.radii > 0).sum()) < n  # the scene really has culled and visible Gaussians
    _compare(out, ref, 1e-10)


@pytest.mark.parametrize("seed", [0, 3])
def test_cpu_float32_matches_brute_force(seed):
    s = hard_scene(200, 3, seed)
    ref = _render(rasterize_reference, s)
    out = _render(rasterize_torch, {k: v.float() for k, v in s.items()})
    assert out.colors.dtype == torch.float32
    _compare(out, ref, 1e-5)


def test_odd_image_size_and_tile_sizes():
    s = hard_scene(150, 3, seed=5, width=37, height=29)
    ref = _render(rasterize_reference, s, 37, 29)
    for tile_size in (4, 8, 16):
        _compare(_render(rasterize_torch, s, 37, 29, tile_size=tile_size), ref, 1e-10, f"tile {tile_size}: ")


def test_chunk_sizes_do_not_change_result():
    s = hard_scene(120, 3, seed=2)
    results = []
    for gauss_chunk, max_pairs in [(64, 1 << 20), (3, 1), (1, 5000), (7, 200)]:
        leaves = {k: s[k].clone().requires_grad_() for k in INPUTS}
        out = _render(rasterize_torch, {**s, **leaves}, gauss_chunk=gauss_chunk, max_pairs=max_pairs)
        (out.colors.sum() + 2 * out.depths.sum() - out.alphas.sum()).backward()
        results.append((out, {k: v.grad for k, v in leaves.items()}))
    (base, base_grads), rest = results[0], results[1:]
    for out, grads in rest:
        _compare(out, base, 1e-12)
        for k in INPUTS:
            assert_close(grads[k], base_grads[k], 1e-10, f"grad {k}")


def test_gradients_match_brute_force_autograd():
    s = hard_scene(60, 3, seed=4)
    gen = torch.Generator().manual_seed(0)
    weights = [torch.randn(1, H, W, c, generator=gen, dtype=torch.float64) for c in (3, 1, 1)]
    grads = []
    for fn in (rasterize_torch, rasterize_reference):
        leaves = {k: s[k].clone().requires_grad_() for k in (*INPUTS, "bg")}
        out = _render(fn, {**s, **leaves})
        loss = sum((o * w).sum() for o, w in zip((out.colors, out.depths, out.alphas), weights))
        loss.backward()
        grads.append({k: v.grad for k, v in leaves.items()})
    for k in (*INPUTS, "bg"):
        scale = float(grads[1][k].abs().max())
        assert scale > 0, k
        assert_close(grads[0][k], grads[1][k], 1e-9 * scale, f"grad {k}")


def test_gradcheck_tiny_scene():
    gen = torch.Generator().manual_seed(3)
    n, w, h = 4, 12, 8
    spread = torch.tensor([0.5, 0.35, 0.2], dtype=torch.float64)
    means = (torch.rand(1, n, 3, generator=gen, dtype=torch.float64) - 0.5) * spread
    quats = torch.randn(1, n, 4, generator=gen, dtype=torch.float64)
    scales = 0.03 + 0.04 * torch.rand(1, n, 3, generator=gen, dtype=torch.float64)
    opacities = 0.3 + 0.6 * torch.rand(1, n, generator=gen, dtype=torch.float64)
    colors = torch.rand(1, n, 3, generator=gen, dtype=torch.float64)
    bg = torch.rand(1, 3, generator=gen, dtype=torch.float64)
    viewmats = torch.eye(4, dtype=torch.float64)[None].clone()
    viewmats[0, 2, 3] = 0.6
    Ks = torch.tensor([[[12.0, 0, 6], [0, 12.0, 4], [0, 0, 1]]], dtype=torch.float64)

    def fn(means, quats, scales, opacities, colors, bg):
        out = rasterize_torch(means, quats, scales, opacities, colors, viewmats, Ks, w, h, bg=bg, gauss_chunk=2)
        return out.colors, out.depths, out.alphas

    inputs = tuple(t.clone().requires_grad_() for t in (means, quats, scales, opacities, colors, bg))
    assert float(fn(*inputs)[2].detach().max()) > 0.3  # the Gaussians are in view
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-5, fast_mode=True)


def test_batched_views_equal_single_views():
    a, b = hard_scene(80, 3, seed=6), hard_scene(80, 3, seed=7)
    both = {k: torch.cat([a[k], b[k]]) for k in a}
    out = _render(rasterize_torch, both)
    for i, s in enumerate((a, b)):
        single = _render(rasterize_torch, s)
        for key in ("colors", "depths", "alphas", "radii", "means2d"):
            assert torch.equal(getattr(out, key)[i], getattr(single, key)[0]), key


def test_no_visible_gaussians_gives_background_and_finite_grads():
    s = hard_scene(10, 3, seed=0)
    s["means"] = s["means"] - 5.0 * s["viewmats"][0, 2, :3]  # pushed 5 m behind the camera
    leaves = {k: s[k].clone().requires_grad_() for k in INPUTS}
    out = _render(rasterize_torch, {**s, **leaves})
    assert (out.radii == 0).all()
    assert torch.equal(out.alphas, torch.zeros_like(out.alphas))
    assert_close(out.colors, s["bg"][:, None, None].expand_as(out.colors), 0.0, "colors")
    out.colors.sum().backward()
    for k, v in leaves.items():
        assert torch.equal(v.grad, torch.zeros_like(v.grad)), k

    empty = {k: v[:, :0] if k in INPUTS else v for k, v in s.items()}
    out = _render(rasterize_torch, empty)
    assert out.radii.shape == (1, 0) and out.means2d.shape == (1, 0, 2)
    assert_close(out.colors, s["bg"][:, None, None].expand_as(out.colors), 0.0, "colors")


def test_radius_rule_is_opacity_aware():
    # Isotropic Gaussian on the optical axis: 2-D variance (f s / z)^2 + 0.3 on each axis.
    f, z, scale = 40.0, 1.0, 0.05
    var = (f * scale / z) ** 2 + 0.3
    for opacity in (1.0, 0.5, 0.05, 0.01):
        expected = math.ceil(min(3.33, math.sqrt(2 * math.log(opacity * 255))) * math.sqrt(var))
        _, _, _, radii = project_gaussians(
            torch.tensor([[[0.0, 0.0, z]]]), torch.tensor([[[1.0, 0, 0, 0]]]), torch.full((1, 1, 3), scale),
            torch.tensor([[opacity]]), torch.eye(4)[None], torch.tensor([[[f, 0, 16], [0, f, 16], [0, 0, 1]]]), 32, 32)
        assert radii.tolist() == [[[expected, expected]]], opacity
    _, _, _, radii = project_gaussians(
        torch.tensor([[[0.0, 0.0, z]]]), torch.tensor([[[1.0, 0, 0, 0]]]), torch.full((1, 1, 3), scale),
        torch.tensor([[0.9 / 255]]), torch.eye(4)[None], torch.tensor([[[f, 0, 16], [0, f, 16], [0, 0, 1]]]), 32, 32)
    assert radii.tolist() == [[[0, 0]]]  # opacity under 1/255 never reaches 1/255: culled


def test_clamped_alpha_gradients_match_brute_force():
    # Opacity-1 Gaussians: alpha hits the 0.999 clamp near their centres, which passes no gradient.
    s = hard_scene(3, 3, seed=0)
    s["means"] = torch.tensor([[[0.0, 0.0, 0.5], [0.05, 0.02, 0.7], [-0.04, 0.0, 0.9]]], dtype=torch.float64)
    s["viewmats"] = torch.eye(4, dtype=torch.float64)[None]
    s["scales"] = torch.full((1, 3, 3), 0.1, dtype=torch.float64)
    s["opacities"] = torch.tensor([[1.0, 1.0, 0.999]], dtype=torch.float64)
    grads = []
    for fn in (rasterize_torch, rasterize_reference):
        leaves = {k: s[k].clone().requires_grad_() for k in INPUTS}
        out = _render(fn, {**s, **leaves})
        assert float(out.alphas.detach().max()) >= 0.999  # some pixels are clamped
        (out.colors.sum() + out.alphas.sum() + out.depths.sum()).backward()
        grads.append({k: v.grad for k, v in leaves.items()})
    for k in INPUTS:
        assert_close(grads[0][k], grads[1][k], 1e-9 * max(1.0, float(grads[1][k].abs().max())), f"grad {k}")

"""Small synthetic scenes and a close-check that says where values differ (shared by the renderer tests)."""
from __future__ import annotations

import math

import torch
from torch import Tensor


def hard_scene(n: int, channels: int = 3, seed: int = 0, width: int = 48, height: int = 32,
               dtype=torch.float64) -> dict[str, Tensor]:
    """n Gaussians spread so that some are behind the camera, off-screen (past the J clamp), nearly
    transparent or under 1/255, two at opacity 1 (alpha clamp); tilted, shifted camera with an
    off-centre principal point and fx != fy. Returns batched tensors (B = 1) and bg [1, D]."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.rand(*shape, generator=g, dtype=torch.float64)

    ang = 0.2
    R = torch.tensor([[math.cos(ang), -math.sin(ang), 0], [math.sin(ang), math.cos(ang), 0], [0, 0, 1]],
                     dtype=torch.float64)
    viewmat = torch.eye(4, dtype=torch.float64)
    viewmat[:3, :3] = R
    viewmat[:3, 3] = torch.tensor([0.05, -0.03, 0.4])
    K = torch.tensor([[1.1 * width, 0, 0.45 * width], [0, 1.0 * width, 0.55 * height], [0, 0, 1]],
                     dtype=torch.float64)
    cam = torch.stack([(rand(n) - 0.5) * 1.6, (rand(n) - 0.5) * 1.2, rand(n) * 1.6 - 0.4], -1)
    means = (cam - viewmat[:3, 3]) @ R  # world = R^T (cam - t)
    scales = torch.exp(math.log(0.004) + rand(n, 3) * math.log(25))  # 4 mm .. 10 cm
    quats = torch.randn(n, 4, generator=g, dtype=torch.float64)
    opacities = rand(n)
    opacities[: n // 8] = rand(n // 8) * 0.02  # nearly transparent, some under 1/255
    opacities[n // 8: n // 8 + 2] = 1.0  # hits the 0.999 clamp
    colors = rand(n, channels)
    bg = rand(1, channels)
    scene = dict(means=means, quats=quats, scales=scales, opacities=opacities, colors=colors,
                 viewmats=viewmat, Ks=K)
    scene = {k: v[None].to(dtype) for k, v in scene.items()}
    scene["bg"] = bg.to(dtype)
    return scene


def single_gaussian(x: float = 0.0, y: float = 0.0, z: float = 1.0, scale: float = 0.02, opacity: float = 0.9,
                    width: int = 32, height: int = 32, focal: float = 40.0, dtype=torch.float32) -> dict[str, Tensor]:
    """One isotropic Gaussian at camera-space (x, y, z), identity camera, principal point at the
    centre of pixel (width // 2, height // 2). Unbatched tensors."""
    K = torch.tensor([[focal, 0, width // 2 + 0.5], [0, focal, height // 2 + 0.5], [0, 0, 1]], dtype=dtype)
    return dict(means=torch.tensor([[x, y, z]], dtype=dtype), quats=torch.tensor([[1.0, 0, 0, 0]], dtype=dtype),
                scales=torch.full((1, 3), scale, dtype=dtype), opacities=torch.tensor([opacity], dtype=dtype),
                colors=torch.tensor([[1.0, 0.5, 0.25]], dtype=dtype), viewmats=torch.eye(4, dtype=dtype), Ks=K)


def assert_close(actual: Tensor, expected: Tensor, atol: float, name: str = "") -> None:
    """Max-abs check whose failure message gives the largest difference and where it is."""
    assert actual.shape == expected.shape, f"{name}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    diff = (actual.double() - expected.double()).abs()
    if diff.numel() and not bool(diff.max() <= atol):
        idx = tuple(int(i) for i in torch.unravel_index(diff.argmax(), diff.shape))
        raise AssertionError(f"{name}: max abs diff {float(diff.max()):.3e} > {atol:.1e} at {idx} "
                             f"(actual {float(actual[idx]):.6g}, expected {float(expected[idx]):.6g}); "
                             f"{int((diff > atol).sum())} of {diff.numel()} values off")


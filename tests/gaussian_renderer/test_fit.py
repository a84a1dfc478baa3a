"""Fitting test: random 3D Gaussians optimised with L1 + SSIM (and densification) against a real frame."""
import itertools
import time

import numpy as np
import pytest
import torch

from arguments import OptimizationParams
from gaussian_renderer import rasterize
from scene.training.densify import DensifyStrategy
from scene.models.gaussian_model import GaussianModel, make_gaussian_optimizer
from utils.loss_utils import l1_loss, psnr, ssim
from utils.sh_utils import eval_sh


def fit_image(target: torch.Tensor, iterations: int = 200, num_points: int = 1500, seed: int = 0) -> dict:
    """Fit Gaussians seen by one pinhole camera to `target` [H, W, 3]; returns PSNR, time and counts."""
    torch.manual_seed(seed)
    H, W = target.shape[:2]
    f = 1.2 * W
    K = torch.tensor([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1.0]])
    viewmat = torch.eye(4)  # camera at the origin looking down +z
    half = 0.5 * W / f
    means = torch.stack([(torch.rand(num_points) * 2 - 1) * half, (torch.rand(num_points) * 2 - 1) * half * H / W,
                         1.0 + (torch.rand(num_points) - 0.5) * 0.1], -1)
    model = GaussianModel.from_points(means, torch.rand(num_points, 3), sh_degree=0, embedding_dim=0, opacity=0.3)
    opt = OptimizationParams(position_lr_init=1.6e-4)
    optimizer = make_gaussian_optimizer(model, opt, extent=1.0)
    strategy = DensifyStrategy(grad_threshold=2e-4, densify_from=50, densify_until=iterations * 3 // 4,
                               interval=50, prune_big_after=iterations, opacity_ramp=0.0, min_opacity=0.01)
    state = strategy.initialize_state(model)
    t0 = time.time()
    for it in range(1, iterations + 1):
        colors = eval_sh(0, model.sh, torch.zeros_like(model.means))
        out = rasterize(model.means, model.quats, model.scales, model.opacities, colors, viewmat, K, W, H,
                        backend="torch")
        image = out.colors
        loss = 0.8 * l1_loss(image, target) + 0.2 * (1 - ssim(image.permute(2, 0, 1), target.permute(2, 0, 1)))
        loss.backward()
        strategy.accumulate(state, out.means2d, out.radii, W, H)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        strategy.step(model, optimizer, state, it, extent=1.0)
    with torch.no_grad():
        colors = eval_sh(0, model.sh, torch.zeros_like(model.means))
        image = rasterize(model.means, model.quats, model.scales, model.opacities, colors, viewmat, K, W, H,
                          backend="torch").colors
    return {"psnr": float(psnr(image, target)), "seconds": time.time() - t0, "iterations": iterations,
            "num_points": model.num_points, "start_points": num_points}


@pytest.mark.slow
def test_fit_real_frame_reaches_25db(german_video):
    from utils.video_io import iter_frames

    frame = next(itertools.islice(iter_frames(german_video, size=(128, 128)), 100, None))
    target = torch.from_numpy(frame.copy()).float() / 255.0
    result = fit_image(target)
    print(f"fit: {result}")
    assert result["num_points"] != result["start_points"]  # densification did something
    assert result["psnr"] >= 25.0, result

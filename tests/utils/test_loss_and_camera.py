import math

import numpy as np
import torch

from utils.graphics_utils import c2w_opengl_to_w2c_opencv, focal_to_fov, fov_to_focal, intrinsics, project_points, scene_extent
from utils.loss_utils import l1_loss, patchify, psnr, ssim
from utils.general_utils import expon_lr


def test_ssim_identity_and_ordering():
    torch.manual_seed(0)
    img = torch.rand(3, 40, 40)
    assert torch.isclose(ssim(img, img), torch.tensor(1.0), atol=1e-6)
    slightly = (img + 0.02 * torch.randn_like(img)).clamp(0, 1)
    very = (img + 0.3 * torch.randn_like(img)).clamp(0, 1)
    assert 1.0 > ssim(img, slightly) > ssim(img, very) > 0.0
    # brightness shift of a flat image: luminance term only, closed form
    flat = torch.full((1, 32, 32), 0.5)
    s = ssim(flat, flat + 0.1, reduce=False)[0, 16, 16]  # centre pixel: no padding effects
    c1 = 0.01**2
    assert torch.isclose(s, torch.tensor((2 * 0.5 * 0.6 + c1) / (0.25 + 0.36 + c1)), atol=1e-4)  # float32 variances


def test_psnr_and_masked_l1():
    a = torch.zeros(3, 8, 8)
    b = torch.full((3, 8, 8), 0.1)
    assert torch.isclose(psnr(a, b), torch.tensor(20.0), atol=1e-4)
    mask = torch.zeros(1, 8, 8)
    mask[:, :4] = 1
    b[:, 4:] = 1.0  # errors outside the mask do not count
    assert torch.isclose(l1_loss(a, b, mask), torch.tensor(0.1))
    assert torch.isclose(psnr(a, b, mask), torch.tensor(20.0), atol=1e-4)


def test_patchify_tiles():
    img = torch.arange(2 * 6 * 9, dtype=torch.float32).reshape(2, 6, 9)
    tiles = patchify(img, 3)
    assert tiles.shape == (6, 2, 3, 3)
    assert torch.equal(tiles[1], img[:, 0:3, 3:6])
    assert torch.equal(tiles[4], img[:, 3:6, 3:6])


def test_fov_focal_round_trip():
    assert math.isclose(fov_to_focal(focal_to_fov(1200.0, 512), 512), 1200.0)
    assert math.isclose(focal_to_fov(256.0, 512), math.pi / 2)


def test_transforms_c2w_to_w2c_projects_point_in_front():
    # Camera 0.6 m in front of the head (OpenGL: camera looks down its -z, so it sits at +z).
    c2w = np.eye(4)
    c2w[2, 3] = 0.6
    w2c = c2w_opengl_to_w2c_opencv(c2w)
    K = intrinsics(1000, 1000, 256, 256)
    origin = torch.zeros(1, 3)
    uv = project_points(origin, torch.from_numpy(w2c), torch.from_numpy(K))
    assert torch.allclose(uv, torch.tensor([[256.0, 256.0]]))
    # a point above the head (world +y) appears above the centre (smaller row), right (+x) to the right
    uv = project_points(torch.tensor([[0.05, 0.05, 0.0]]), torch.from_numpy(w2c), torch.from_numpy(K))
    assert uv[0, 0] > 256 and uv[0, 1] < 256
    cam = w2c[:3, :3] @ np.zeros(3) + w2c[:3, 3]
    assert cam[2] > 0  # in front in OpenCV convention


def test_scene_extent_and_lr_schedule():
    v = [np.eye(4, dtype=np.float32) for _ in range(3)]
    for i, m in enumerate(v):
        m[0, 3] = i * 0.1
    assert math.isclose(scene_extent(v), 1.1 * 0.1, rel_tol=1e-5)
    assert math.isclose(expon_lr(0, 1e-2, 1e-4, max_steps=100), 1e-2)
    assert math.isclose(expon_lr(100, 1e-2, 1e-4, max_steps=100), 1e-4, rel_tol=1e-6)
    assert math.isclose(expon_lr(50, 1e-2, 1e-4, max_steps=100), 1e-3, rel_tol=1e-6)

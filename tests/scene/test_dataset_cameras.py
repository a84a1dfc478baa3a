"""transforms json -> batched OpenCV cameras at the training resolution."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from scene.data.cameras import make_cameras, read_transforms, training_size
from utils.graphics_utils import project_points


def _write(path, c2ws, focal=500.0, cx=260.0, cy=250.0):
    frames = [{"img_id": i, "aud_id": i, "transform_matrix": m.tolist()} for i, m in enumerate(c2ws)]
    path.write_text(json.dumps({"focal_len": focal, "cx": cx, "cy": cy, "frames": frames}))


def _c2w(position, yaw=0.0):
    c, s = math.cos(yaw), math.sin(yaw)
    m = np.eye(4)
    m[:3, :3] = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
    m[:3, 3] = position
    return m


def test_camera_projects_known_point_to_expected_pixel(tmp_path):
    # OpenGL camera 0.5 m in front of the origin on +z, looking down -z: world +x is image right,
    # world +y is image up (smaller row).
    _write(tmp_path / "t.json", [_c2w([0, 0, 0.5])])
    cams = make_cameras(read_transforms(tmp_path / "t.json"), native_wh=(512, 500), size_wh=(512, 500))
    vm, K = torch.from_numpy(cams.viewmats[0]), torch.from_numpy(cams.Ks[0])
    uv = project_points(torch.tensor([[0.0, 0.0, 0.0], [0.05, 0.02, 0.0]]), vm, K)
    # cx, cy come from the json (not the image centre): 260 + 500 * 0.05 / 0.5 = 310; 250 - 500 * 0.02 / 0.5 = 230
    torch.testing.assert_close(uv, torch.tensor([[260.0, 250.0], [310.0, 230.0]]))


def test_yawed_camera_and_resolution_scaling(tmp_path):
    yaw = 0.3
    _write(tmp_path / "t.json", [_c2w([0.5 * math.sin(yaw), 0, 0.5 * math.cos(yaw)], yaw)])
    tf = read_transforms(tmp_path / "t.json")
    size = training_size((512, 500), 256)
    assert size == (256, 250)
    cams = make_cameras(tf, (512, 500), size)
    uv = project_points(torch.zeros(1, 3), torch.from_numpy(cams.viewmats[0]), torch.from_numpy(cams.Ks[0]))
    torch.testing.assert_close(uv, torch.tensor([[130.0, 125.0]]))  # the orbit keeps the origin on the axis
    assert cams.width == 256 and cams.height == 250
    assert cams.fovx == pytest.approx(2 * math.atan(512 / 1000))


def test_scene_extent_from_camera_centres(tmp_path):
    _write(tmp_path / "t.json", [_c2w([0.1, 0, 0.5]), _c2w([-0.1, 0, 0.5])])
    cams = make_cameras(read_transforms(tmp_path / "t.json"), (512, 512), (512, 512))
    assert cams.extent == pytest.approx(1.1 * 0.1)


def test_training_size_native_and_long_side():
    assert training_size((640, 480), -1) == (640, 480)
    assert training_size((480, 640), 320) == (240, 320)


def test_malformed_transforms_name_the_file(tmp_path):
    (tmp_path / "t.json").write_text(json.dumps({"focal_len": 1.0, "frames": [{"img_id": 0}]}))
    with pytest.raises(ValueError, match="t.json"):
        read_transforms(tmp_path / "t.json")

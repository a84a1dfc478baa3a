import pytest
import torch

from utils.lpips import ALEXNET_FILE, LINEAR_FILE, LPIPS, find_lpips_weights, load_lpips


def _fake_weights(folder, seed=0):
    """Random weights in the two published checkpoint layouts (torchvision AlexNet + lpips linear heads)."""
    torch.manual_seed(seed)
    ref = LPIPS()
    alex = {}
    for (idx, *_), conv in zip(((0,), (3,), (6,), (8,), (10,)), ref.convs):
        alex[f"features.{idx}.weight"] = torch.randn_like(conv.weight) * 0.05
        alex[f"features.{idx}.bias"] = torch.zeros_like(conv.bias)
    alex["classifier.1.weight"] = torch.zeros(1)  # extra keys of the real file are ignored
    linear = {f"lin{i}.model.1.weight": torch.rand_like(l.weight) for i, l in enumerate(ref.lins)}
    torch.save(alex, folder / ALEXNET_FILE)
    torch.save(linear, folder / LINEAR_FILE)


def test_lpips_loads_user_weights_and_behaves_like_a_distance(tmp_path):
    _fake_weights(tmp_path)
    net = load_lpips(tmp_path)
    x = torch.rand(2, 3, 64, 64)
    assert torch.allclose(net(x, x), torch.zeros(2), atol=1e-6)
    near = (x + 0.02 * torch.randn_like(x)).clamp(0, 1)
    far = torch.rand(2, 3, 64, 64)
    assert (net(x, near) < net(x, far)).all()
    assert (net(x, far) > 0).all()


def test_missing_weights_are_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "none"))
    with pytest.raises(FileNotFoundError, match=ALEXNET_FILE):
        find_lpips_weights(tmp_path)

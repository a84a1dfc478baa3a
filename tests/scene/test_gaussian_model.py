import numpy as np
import pytest
import torch

from arguments import OptimizationParams
from scene.training.densify import DensifyStrategy, duplicate, quat_to_rotmat, remove, split
from scene.models.gaussian_model import GaussianModel, knn_mean_sq_dist, make_gaussian_optimizer


def _random_model(n=64, seed=0):
    torch.manual_seed(seed)
    m = GaussianModel.random_init(n, sh_degree=2, embedding_dim=32, seed=seed)
    with torch.no_grad():  # make every field non-trivial so the round trip checks real values
        for k, p in m.params.items():
            p.add_(torch.randn_like(p) * 0.1)
    return m


def test_random_init_layout_and_knn_scales():
    m = GaussianModel.random_init(500, seed=1)
    assert m.means.shape == (500, 3) and m.sh.shape == (500, 9, 3) and m.embeddings.shape == (500, 32)
    assert m.means.abs().max() <= 0.1
    assert torch.all(m.embeddings == 0)
    assert torch.allclose(m.opacities, torch.full((500,), 0.1), atol=1e-6)
    assert torch.allclose(m.quats, torch.tensor([1.0, 0, 0, 0]).expand(500, 4))
    # initial scale = sqrt(mean squared distance to the 3 nearest neighbours), checked by brute force
    pts = m.means.detach().numpy().astype(np.float64)
    d2 = ((pts[:, None] - pts[None]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    expected = np.sqrt(np.sort(d2, axis=1)[:, :3].mean(1))
    np.testing.assert_allclose(m.scales[:, 0].detach().numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(knn_mean_sq_dist(pts.astype(np.float32)), expected**2, rtol=1e-4)


def test_ply_round_trip_is_bit_exact(tmp_path):
    m = _random_model()
    path = m.save_ply(tmp_path / "pc.ply")
    m2 = GaussianModel.load_ply(path)
    for k in m.params:
        assert torch.equal(m.params[k], m2.params[k]), k
    names = [p.name for p in __import__("plyfile").PlyData.read(str(path))["vertex"].properties]
    assert names[:9] == ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    assert "f_rest_23" in names and "f_rest_24" not in names and "embedding_31" in names
    assert names.index("opacity") == 9 + 24
    # f_rest is channel-major: f_rest_0..7 are the red coefficients of bases 1..8
    ply = __import__("plyfile").PlyData.read(str(path))["vertex"]
    np.testing.assert_array_equal(ply["f_rest_1"], m.params["shN"][:, 1, 0].detach().numpy())
    np.testing.assert_array_equal(ply["f_rest_8"], m.params["shN"][:, 0, 1].detach().numpy())


def test_capture_restore_identical():
    m = _random_model()
    m.oneup_sh_degree()
    m2 = GaussianModel.restore(m.capture())
    assert m2.active_sh_degree == 1
    for k in m.params:
        assert torch.equal(m.params[k], m2.params[k])


def _optimizer_after_one_step(m):
    opt = make_gaussian_optimizer(m, OptimizationParams(), extent=1.0)
    loss = sum((p**2).sum() for p in m.params.values())
    loss.backward()
    opt.step()
    return opt


def test_prune_and_clone_keep_optimizer_state_in_sync():
    m = _random_model(n=10)
    opt = _optimizer_after_one_step(m)
    state = DensifyStrategy().initialize_state(m)
    exp_avg_before = opt.state[m.params["means"]]["exp_avg"].clone()
    mask = torch.zeros(10, dtype=torch.bool)
    mask[[1, 4]] = True
    remove(m, opt, state, mask)
    assert m.num_points == 8 and state["grad2d"].shape == (8,)
    assert torch.equal(opt.state[m.params["means"]]["exp_avg"], exp_avg_before[~mask])
    assert opt.param_groups[0]["params"][0] is m.params["means"]
    clone = torch.zeros(8, dtype=torch.bool)
    clone[0] = True
    duplicate(m, opt, state, clone)
    assert m.num_points == 9
    assert torch.equal(m.params["means"][8], m.params["means"][0])
    assert torch.all(opt.state[m.params["means"]]["exp_avg"][8] == 0)
    # the optimiser still steps on the new tensors
    loss = sum((p**2).sum() for p in m.params.values())
    loss.backward()
    opt.step()


def test_split_samples_inside_parent_and_shrinks():
    torch.manual_seed(0)
    m = _random_model(n=5)
    opt = _optimizer_after_one_step(m)
    state = DensifyStrategy().initialize_state(m)
    parent_mean = m.means[2].detach().clone()
    parent_scale = m.scales[2].detach().clone()
    mask = torch.zeros(5, dtype=torch.bool)
    mask[2] = True
    split(m, opt, state, mask, n=2)
    assert m.num_points == 6
    children = m.means[-2:].detach()
    assert torch.allclose(m.scales[-2:], (parent_scale / 1.6).expand(2, 3), rtol=1e-5)
    assert ((children - parent_mean).norm(dim=-1) < 5 * parent_scale.max()).all()
    assert not torch.any((m.means.detach() == parent_mean).all(-1))


def test_strategy_step_clones_splits_and_prunes():
    m = GaussianModel.random_init(200, seed=3)
    opt = make_gaussian_optimizer(m, OptimizationParams(), extent=1.0)
    s = DensifyStrategy(grad_threshold=1e-3, densify_from=0, interval=1, percent_dense=0.01)
    state = s.initialize_state(m)
    with torch.no_grad():
        m.params["log_scales"][:50] = np.log(0.05)  # large: will split
        m.params["log_scales"][50:100] = np.log(0.001)  # small: will clone
        m.params["logit_opacities"][150:] = -10.0  # transparent: will be pruned
    state["grad2d"][:100] = 1.0
    state["count"][:100] = 1.0
    stats = s.step(m, opt, state, it=1, extent=1.0)
    assert stats == {"clone": 50, "split": 50, "prune": 50}
    assert m.num_points == 200 + 50 + (2 * 50 - 50) - 50  # clones, split children minus parents, pruned
    assert float(state["grad2d"].abs().sum()) == 0.0


def test_strategy_max_points_densifies_the_largest_gradients_only():
    m = GaussianModel.random_init(200, seed=3)
    opt = make_gaussian_optimizer(m, OptimizationParams(), extent=1.0)
    s = DensifyStrategy(grad_threshold=1e-3, densify_from=0, interval=1, percent_dense=0.01, max_points=230)
    state = s.initialize_state(m)
    with torch.no_grad():
        m.params["log_scales"][:] = np.log(0.001)  # all small: selected ones are cloned
    state["grad2d"][:100] = torch.linspace(0.01, 1.0, 100)  # 100 above the threshold, budget 30
    state["count"][:100] = 1.0
    means = m.means.detach().clone()
    stats = s.step(m, opt, state, it=1, extent=1.0)
    assert stats["clone"] == 30 and m.num_points == 230
    assert torch.equal(m.means.detach()[200:], means[70:100])  # the 30 largest gradients were cloned
    state["grad2d"][:] = 1.0
    state["count"][:] = 1.0
    assert s.step(m, opt, state, it=2, extent=1.0)["clone"] == 0  # at the cap: prune only


def test_quat_to_rotmat_orthonormal():
    q = torch.randn(100, 4)
    R = quat_to_rotmat(q)
    assert torch.allclose(R @ R.transpose(-1, -2), torch.eye(3).expand(100, 3, 3), atol=1e-5)
    assert torch.allclose(torch.linalg.det(R), torch.ones(100), atol=1e-5)

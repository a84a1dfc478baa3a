"""Motion networks: shapes, upstream-style concatenated forward, batching, gradients, attention, windows."""
from __future__ import annotations

import pytest
import torch

from scene.data.audio_windows import audio_windows
from scene.models.audio_net import AudioAttNet, AudioNet
from scene.models.motion_net import MLP, FaceMotionNet, FacePointFeatures, MouthMotionNet

N = 50
AUDIO_KINDS = {"deepspeech": (29, 16), "hubert": (1024, 2)}


def _inputs(net, n=N, frames=3, c=29, w=16, exp_dim=52, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    xyz = ((torch.rand(n, 3, generator=gen) * 2 - 1) * 0.1).to(dtype)
    emb = (torch.randn(n, net.embedding_dim, generator=gen) * 0.1).to(dtype)
    windows = torch.randn(frames, 8, c, w, generator=gen).to(dtype)
    expr = torch.rand(frames, exp_dim, generator=gen).to(dtype)
    return xyz, emb, windows, expr


def _randomise_grid(net, seed=1):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        net.grid.embeddings.copy_(torch.randn(net.grid.embeddings.shape, generator=gen) * 0.5)
    return net


def _naive_face(net: FaceMotionNet, xyz, emb, window, expr):
    """One frame, written the upstream way: concatenate [enc_x, enc_a*att, enc_e*att] -> sigma_net."""
    enc_x = torch.cat([net.grid(xyz), emb], -1)
    enc_a = net.audio_att_net(net.audio_net(window)[None])[0]  # [32]
    aud_att = net.aud_ch_att_net(enc_x)
    eye_att = torch.relu(net.eye_att_net(enc_x))
    k = {"3dmm": 50, "au": 5}[net.exp_method]
    enc_e = torch.cat([net.exp_encode_net(expr[:k]), expr[k:]]) * eye_att
    h = net.sigma_net(torch.cat([enc_x, enc_a.expand(len(xyz), -1) * aud_att, enc_e], -1))
    return {"d_xyz": h[:, :3] * 1e-2, "d_rot": h[:, 3:7], "d_opa": h[:, 7:8], "d_scale": h[:, 8:11],
            "ambient_aud": aud_att.norm(dim=-1, keepdim=True), "ambient_eye": eye_att.norm(dim=-1, keepdim=True)}


def _naive_mouth(net: MouthMotionNet, xyz, emb, window):
    enc_x = torch.cat([net.grid(xyz), emb], -1)
    enc_a = net.audio_att_net(net.audio_net(window)[None])[0]
    h_in = torch.cat([enc_x, enc_a.expand(len(xyz), -1)], -1)
    d_xyz = net.sigma_net(h_in) * 1e-2
    d_xyz[:, 0] /= 5
    d_xyz[:, 2] /= 5
    jaw_exp = net.jaw_net(h_in)
    return {"d_xyz": d_xyz, "jaw_exp": jaw_exp, "jaw": jaw_exp.mean(0)}


@pytest.mark.parametrize("audio", sorted(AUDIO_KINDS))
@pytest.mark.parametrize("exp_method,exp_dim,sigma_in", [("3dmm", 52, 116), ("au", 6, 106)])
def test_face_shapes(audio, exp_method, exp_dim, sigma_in):
    c, w = AUDIO_KINDS[audio]
    torch.manual_seed(0)
    net = FaceMotionNet(audio_in_dim=c, exp_method=exp_method)
    assert net.sigma_net.layers[0].in_features == sigma_in
    xyz, emb, windows, expr = _inputs(net, c=c, w=w, exp_dim=exp_dim)
    out = net.predict(xyz, emb, windows, expr)
    sizes = {"d_xyz": 3, "d_rot": 4, "d_opa": 1, "d_scale": 3, "ambient_aud": 1, "ambient_eye": 1}
    assert {k: tuple(v.shape) for k, v in out.items()} == {k: (3, N, s) for k, s in sizes.items()}
    single = net.predict(xyz, emb, windows[0], expr[0])
    assert {k: tuple(v.shape) for k, v in single.items()} == {k: (N, s) for k, s in sizes.items()}


def test_talkinggaussian_layout_without_embedding():
    net = FaceMotionNet(embedding_dim=0, exp_method="au")
    assert net.sigma_net.layers[0].in_features == 74  # 36 + 32 + 6, TalkingGaussian's sigma_net
    xyz, _, windows, expr = _inputs(net, exp_dim=6)
    assert net.predict(xyz, None, windows, expr)["d_xyz"].shape == (3, N, 3)


@pytest.mark.parametrize("audio", sorted(AUDIO_KINDS))
@pytest.mark.parametrize("use_jaw", [True, False])
def test_mouth_shapes(audio, use_jaw):
    c, w = AUDIO_KINDS[audio]
    net = MouthMotionNet(audio_in_dim=c, use_jaw=use_jaw)
    xyz, emb, windows, _ = _inputs(net, c=c, w=w)
    out = net.predict(xyz, emb, windows)
    expect = {"d_xyz": (3, N, 3)}
    if use_jaw:
        expect.update(jaw_exp=(3, N, 3), jaw=(3, 3))
    assert {k: tuple(v.shape) for k, v in out.items()} == expect


@pytest.mark.parametrize("exp_method,exp_dim", [("3dmm", 52), ("au", 6)])
def test_face_matches_concatenated_upstream_form(exp_method, exp_dim):
    torch.manual_seed(0)
    net = _randomise_grid(FaceMotionNet(exp_method=exp_method)).double()
    xyz, emb, windows, expr = _inputs(net, exp_dim=exp_dim, dtype=torch.float64)
    out = net.predict(xyz, emb, windows, expr)
    for b in range(windows.shape[0]):
        ref = _naive_face(net, xyz, emb, windows[b], expr[b])
        for k, v in ref.items():
            torch.testing.assert_close(out[k][b], v, rtol=1e-10, atol=1e-12, msg=f"{k} frame {b}")


def test_mouth_matches_concatenated_upstream_form():
    torch.manual_seed(0)
    net = _randomise_grid(MouthMotionNet()).double()
    xyz, emb, windows, _ = _inputs(net, dtype=torch.float64)
    out = net.predict(xyz, emb, windows)
    for b in range(windows.shape[0]):
        for k, v in _naive_mouth(net, xyz, emb, windows[b]).items():
            torch.testing.assert_close(out[k][b], v, rtol=1e-10, atol=1e-12, msg=f"{k} frame {b}")


def test_batched_equals_per_frame_and_cache():
    torch.manual_seed(0)
    face = _randomise_grid(FaceMotionNet())
    xyz, emb, windows, expr = _inputs(face, frames=5)
    enc_x = face.encode_points(xyz, emb)
    cached = face.point_features(enc_x)
    assert isinstance(cached, FacePointFeatures)
    codes = face.encode_audio(windows)  # [5, 32]
    batched = face(cached, codes, expr)
    for b in range(5):
        single = face(enc_x, face.encode_audio(windows[b]), expr[b])
        for k in batched:
            torch.testing.assert_close(batched[k][b], single[k], msg=k)

    mouth = _randomise_grid(MouthMotionNet())
    enc_m = mouth.encode_points(xyz, emb)
    batched = mouth(mouth.point_features(enc_m), mouth.encode_audio(windows))
    for b in range(5):
        single = mouth(enc_m, mouth.encode_audio(windows[b]))
        for k in batched:
            torch.testing.assert_close(batched[k][b], single[k], msg=k)


def test_deterministic_with_seed_and_zero_embedding():
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        net = FaceMotionNet()
        xyz, _, windows, expr = _inputs(net, seed=5)
        outs.append(net.predict(xyz, torch.zeros(N, 32), windows, expr))
    for k in outs[0]:
        assert torch.equal(outs[0][k], outs[1][k]), k
    assert outs[0]["d_xyz"].abs().sum() > 0
    torch.manual_seed(124)
    other = FaceMotionNet().predict(xyz, torch.zeros(N, 32), windows, expr)
    assert not torch.equal(other["d_xyz"], outs[0]["d_xyz"])


@pytest.mark.parametrize("kind", ["face", "mouth"])
def test_gradients_reach_every_parameter_embedding_and_positions(kind):
    torch.manual_seed(0)
    net = FaceMotionNet() if kind == "face" else MouthMotionNet()
    xyz, emb, windows, expr = _inputs(net)
    xyz.requires_grad_(True)
    emb = torch.zeros_like(emb, requires_grad=True)  # zero init, as the Gaussian model starts
    out = net.predict(xyz, emb, windows, expr) if kind == "face" else net.predict(xyz, emb, windows)
    gen = torch.Generator().manual_seed(9)
    loss = sum((v * torch.randn(v.shape, generator=gen)).sum() for k, v in out.items() if k != "jaw")
    loss.backward()
    missing = [name for name, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing
    assert emb.grad.abs().sum() > 0 and xyz.grad.abs().sum() > 0


def test_mouth_damps_x_and_z_by_five():
    torch.manual_seed(0)
    net = MouthMotionNet(use_jaw=False)
    with torch.no_grad():  # make the three raw outputs identical, so only the damping differs
        last = net.sigma_net.layers[-1].weight
        last[0] = last[1]
        last[2] = last[1]
    xyz, emb, windows, _ = _inputs(net)
    d = net.predict(xyz, emb, windows)["d_xyz"]
    assert d[..., 1].abs().max() > 0
    torch.testing.assert_close(d[..., 0] * 5, d[..., 1])
    torch.testing.assert_close(d[..., 2] * 5, d[..., 1])


def test_attention_is_a_softmax_over_the_window():
    torch.manual_seed(0)
    att = AudioAttNet(32, 8)
    x = torch.randn(4, 8, 32)
    w = att.weights(x)
    assert w.shape == (4, 8) and (w > 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(4))
    torch.testing.assert_close(att(x), torch.einsum("bs,bsd->bd", w, x))
    # the same code in every slot comes back unchanged
    same = torch.randn(32).expand(8, 32)
    torch.testing.assert_close(att(same), same[0])


@pytest.mark.parametrize("w_in", [16, 2, 1])
def test_audio_net_reduces_window_to_one(w_in):
    torch.manual_seed(0)
    net = AudioNet(29, 32)
    x = torch.randn(6, 29, w_in)
    conv = net.encoder_conv(x)
    assert conv.shape == (6, 64, 1)
    torch.testing.assert_close(net(x), net.encoder_fc(conv[..., 0]))
    assert net(x.reshape(2, 3, 29, w_in)).shape == (2, 3, 32)


def test_audio_net_lengths_halve_16_to_1():
    net = AudioNet(29, 32)
    lengths, h = [], torch.randn(1, 29, 16)
    for layer in net.encoder_conv:
        h = layer(h)
        if isinstance(layer, torch.nn.Conv1d):
            lengths.append(h.shape[-1])
    assert lengths == [8, 4, 2, 1]
    with pytest.raises(ValueError, match="W=32"):
        net(torch.randn(1, 29, 32))


def test_audio_windows_zero_pad_and_batch():
    T = 10
    feats = torch.arange(1, T + 1, dtype=torch.float32)[:, None, None].expand(T, 2, 3).clone()
    win = audio_windows(feats, 0)
    assert win.shape == (8, 2, 3)
    assert win[:, 0, 0].tolist() == [0, 0, 0, 0, 1, 2, 3, 4]  # frames -4..3
    assert audio_windows(feats, 5)[:, 0, 0].tolist() == [2, 3, 4, 5, 6, 7, 8, 9]
    assert audio_windows(feats, 9)[:, 0, 0].tolist() == [6, 7, 8, 9, 10, 0, 0, 0]
    idx = torch.tensor([0, 5, 9])
    batched = audio_windows(feats, idx)
    assert batched.shape == (3, 8, 2, 3)
    for b, i in enumerate(idx.tolist()):
        assert torch.equal(batched[b], audio_windows(feats, i))
    with pytest.raises(IndexError):
        audio_windows(feats, T)


def test_mlp_is_bias_free_relu_between():
    mlp = MLP(4, 2, 8, 3)
    assert [tuple(l.weight.shape) for l in mlp.layers] == [(8, 4), (8, 8), (2, 8)]
    assert all(l.bias is None for l in mlp.layers)
    x = torch.randn(5, 4)
    h = torch.relu(x @ mlp.layers[0].weight.T)
    h = torch.relu(h @ mlp.layers[1].weight.T)
    torch.testing.assert_close(mlp(x), h @ mlp.layers[2].weight.T)
    assert (mlp(x) < 0).any()  # no activation at the output


@pytest.mark.parametrize("kind", ["face", "mouth"])
def test_param_groups_cover_all_parameters_once(kind):
    net = FaceMotionNet() if kind == "face" else MouthMotionNet()
    groups = net.param_groups(lr=5e-3, lr_net=5e-4)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in net.parameters()}
    by_name = {g["name"]: g for g in groups}
    assert (by_name["grid"]["lr"], by_name["grid"]["weight_decay"]) == (5e-3, 0.01)
    assert (by_name["audio_att_net"]["lr"], by_name["audio_att_net"]["weight_decay"]) == (2.5e-3, 1e-4)
    assert all((g["lr"], g["weight_decay"]) == (5e-4, 0.0) for n, g in by_name.items()
               if n not in ("grid", "audio_att_net"))
    assert net.param_groups(grid_weight_decay=0.0)[0]["weight_decay"] == 0.0
    opt = torch.optim.AdamW(groups, betas=(0.9, 0.99), eps=1e-8)
    xyz, emb, windows, expr = _inputs(net)
    out = net.predict(xyz, emb, windows, expr) if kind == "face" else net.predict(xyz, emb, windows)
    before = net.grid.embeddings.detach().clone()
    out["d_xyz"].square().sum().backward()
    opt.step()
    assert not torch.equal(before, net.grid.embeddings)


def test_bad_inputs_raise_clear_errors():
    net = FaceMotionNet()
    with pytest.raises(ValueError, match="embedding"):
        net.encode_points(torch.zeros(4, 3), None)
    with pytest.raises(ValueError, match="exp_method"):
        FaceMotionNet(exp_method="smirk")


def _shapes(mlp: MLP):
    return [tuple(l.weight.shape) for l in mlp.layers]


def test_architecture_matches_upstream_layers():
    face = FaceMotionNet()
    assert _shapes(face.aud_ch_att_net) == [(32, 68), (32, 32)]
    assert _shapes(face.eye_att_net) == [(16, 68), (16, 16)]
    assert _shapes(face.exp_encode_net) == [(16, 50), (14, 16)]
    assert _shapes(face.sigma_net) == [(64, 116), (64, 64), (11, 64)]
    mouth = MouthMotionNet()
    assert _shapes(mouth.sigma_net) == _shapes(mouth.jaw_net) == [(32, 100), (32, 32), (3, 32)]
    conv = [(type(m).__name__, getattr(m, "out_channels", None)) for m in face.audio_net.encoder_conv]
    assert conv == [("Conv1d", 32), ("LeakyReLU", None), ("Conv1d", 32), ("LeakyReLU", None),
                    ("Conv1d", 64), ("LeakyReLU", None), ("Conv1d", 64), ("LeakyReLU", None)]
    att = [(type(m).__name__, getattr(m, "out_channels", None)) for m in face.audio_att_net.attention_conv]
    assert att == [x for c in (16, 8, 4, 2, 1) for x in (("Conv1d", c), ("LeakyReLU", None))]
    assert all(m.negative_slope == 0.02 for m in face.modules() if isinstance(m, torch.nn.LeakyReLU))

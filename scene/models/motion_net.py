"""Motion (deformation) networks: per-Gaussian offsets from audio and expression.

Two fields, as in TalkingGaussian / DEGSTalk (upstream-facts section 4):
    FaceMotionNet   tri-plane features + per-Gaussian embedding, audio through per-point channel
                    attention, expression through per-point eye attention -> d_xyz, d_rot, d_scale, d_opa
    MouthMotionNet  mouth grids + embedding, audio broadcast -> d_xyz (x and z damped by 5), jaw head
Ours: both also read the frame's mouth code (`mouth_dim` > 0; scene/models/audio_to_mouth.py), the face net
through a per-point mouth attention like the expression's, the mouth net broadcast like its audio.
With mouth_dim 0 they are upstream's nets (and load models trained before mouth codes).

Split for speed: everything that depends only on the canonical Gaussians is computed by
`encode_points` (tri-plane lookup + embedding -> enc_x) and `point_features` (the per-point
attentions and the enc_x part of the first sigma layer). Cache its result while the Gaussians do
not change (inference); recompute it every step while they train (gradients then reach the grid
tables, the embedding and the positions). `forward` then takes B frames of conditions at once:

    feats = net.point_features(net.encode_points(means, embeddings))   # once
    windows = audio_windows(features, frame_ids)                         # [B, 8, C, W]
    out = net.deform(feats, windows, expressions, mouth_codes)           # d_xyz [B, N, 3], ...

`predict(means, embeddings, windows, ...)` does both in one call (training: nothing cached).

Splitting the first sigma layer by input block is exact algebra (W [x; a*att; e*att] =
W_x x + (W_a * a) att + (W_e * e) att), just cheaper per frame than concatenating [B, N, 116].
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from scene.models.audio_net import AudioAttNet, AudioNet
from submodules.gridencoder import FACE_GRID, MOUTH_GRID, TriPlaneEncoder

# exp_method -> (coded dims, code size, pass-through dims): the first `coded` expression values go
# through a small MLP, the last `pass-through` values (eyelids / blink) are appended unchanged.
EXPRESSION_LAYOUTS = {
    "3dmm": (50, 14, 2),  # DEGSTalk: 50 expression coefficients + 2 eyelids -> 16-d
    "au": (5, 5, 1),  # TalkingGaussian: 5 action units + AU45 blink -> 6-d
}
MOUTH_ENC_DIM = 16  # encoded mouth code (as the 3dmm expression's 16)


class MLP(nn.Module):
    """Bias-free Linear layers with ReLU between them and none at the output."""

    def __init__(self, dim_in: int, dim_out: int, dim_hidden: int, num_layers: int):
        super().__init__()
        dims = [dim_in] + [dim_hidden] * (num_layers - 1) + [dim_out]
        self.layers = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: Tensor) -> Tensor:  # [..., dim_in] -> [..., dim_out]
        return self.forward_tail(self.layers[0](x))

    def forward_tail(self, h: Tensor) -> Tensor:
        """Finish the MLP from the first layer's output `h` [..., dim_hidden] (pre-activation)."""
        for layer in self.layers[1:]:
            h = layer(torch.relu(h))
        return h

    def split_first(self, *sizes: int) -> list[Tensor]:
        """Column blocks of the first weight [dim_hidden, dim_in] for input blocks of `sizes`."""
        assert sum(sizes) == self.layers[0].in_features, (sizes, self.layers[0].in_features)
        return list(torch.split(self.layers[0].weight, list(sizes), dim=1))


class FacePointFeatures(NamedTuple):
    """Audio-independent per-point terms of FaceMotionNet (cacheable)."""

    aud_att: Tensor  # [N, A] per-point audio channel attention
    eye_att: Tensor  # [N, E] per-point expression attention (>= 0)
    sigma_x: Tensor  # [N, H] enc_x's contribution to the first sigma layer
    mouth_att: Tensor | None = None  # [N, MOUTH_ENC_DIM] per-point mouth-code attention (>= 0)


class MouthPointFeatures(NamedTuple):
    """Audio-independent per-point terms of MouthMotionNet (cacheable)."""

    sigma_x: Tensor  # [N, H] enc_x's contribution to the first sigma layer
    jaw_x: Tensor | None  # [N, H] same for the jaw head (None without it)


def _as_batch(audio_code: Tensor, *conds: Tensor) -> tuple[bool, Tensor, list[Tensor]]:
    """Add a leading frame axis to unbatched conditions; check that all agree on B."""
    unbatched = audio_code.dim() == 1
    if unbatched:
        audio_code, conds = audio_code[None], tuple(c[None] for c in conds)
    assert audio_code.dim() == 2, audio_code.shape
    for c in conds:
        assert c.dim() == 2 and c.shape[0] == audio_code.shape[0], (audio_code.shape, c.shape)
    return unbatched, audio_code, list(conds)


def _scaled_matmul(att: Tensor, weight: Tensor, code: Tensor) -> Tensor:
    """(att * code_b) @ weight.T for every frame b as one GEMM: [N,K], [H,K], [B,K] -> [N,B,H].

    Folds each frame's code into the weight ((att * c) W^T = att (W * c)^T), so nothing of size
    [B, N, K] is formed and all frames share one [N, K] x [K, B*H] matrix product.
    """
    (N, K), (H, _), B = att.shape, weight.shape, code.shape[0]
    per_frame = (weight * code[:, None, :]).reshape(B * H, K)  # [B*H, K]
    return (att @ per_frame.T).view(N, B, H)


class _MotionBase(nn.Module):
    """Grid + embedding point encoding, the audio encoder and the mouth-code encoder of both fields."""

    def __init__(self, grid: dict, audio_in_dim: int, audio_dim: int, embedding_dim: int, mouth_dim: int = 0,
                 direct_audio: bool = True):
        super().__init__()
        self.grid = TriPlaneEncoder(**grid)
        self.embedding_dim = embedding_dim
        self.audio_dim = audio_dim
        self.in_dim = self.grid.output_dim + embedding_dim  # enc_x size (36 + 32 = 68 upstream)
        self.audio_net = AudioNet(audio_in_dim, audio_dim)
        self.audio_att_net = AudioAttNet(audio_dim)
        self.mouth_dim = mouth_dim  # codes per frame (0: no mouth-code input)
        self.mouth_enc_dim = MOUTH_ENC_DIM if mouth_dim else 0
        self.mouth_encode_net = MLP(mouth_dim, MOUTH_ENC_DIM, 32, 2) if mouth_dim else None
        # False: the audio path is cut (a zero code): the lips follow the mouth codes alone. Saved, so a
        # checkpoint knows; checkpoints from before it have the path.
        self.uses_direct_audio = bool(direct_audio)  # read per step: a Python bool, no device sync
        self.register_buffer("direct_audio", torch.tensor(self.uses_direct_audio))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        flag = state_dict.setdefault(prefix + "direct_audio", torch.tensor(True))
        self.uses_direct_audio = bool(flag)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def encode_mouth(self, mouth_code: Tensor | None, batch: int) -> Tensor:
        """Encoded mouth codes [B, mouth_enc_dim] ([B, 0] for a net without the input)."""
        if not self.mouth_dim:
            return torch.zeros(batch, 0, device=self.grid_device)
        if mouth_code is None:
            raise ValueError("this motion net was trained with mouth codes: pass the frames' mouth_code")
        assert mouth_code.shape == (batch, self.mouth_dim), (mouth_code.shape, batch, self.mouth_dim)
        return self.mouth_encode_net(mouth_code)

    @property
    def grid_device(self) -> torch.device:
        return next(self.grid.parameters()).device

    def encode_points(self, xyz: Tensor, embedding: Tensor | None = None) -> Tensor:
        """enc_x = concat(tri-plane features, per-Gaussian embedding): [N,3], [N,E] -> [N, in_dim]."""
        assert xyz.dim() == 2 and xyz.shape[-1] == 3, xyz.shape
        feats = self.grid(xyz)  # [N, 36]
        if self.embedding_dim == 0:
            return feats
        if embedding is None or embedding.shape != (xyz.shape[0], self.embedding_dim):
            got = None if embedding is None else tuple(embedding.shape)
            raise ValueError(f"expected embedding [{xyz.shape[0]}, {self.embedding_dim}], got {got}")
        return torch.cat([feats, embedding], dim=-1)

    def encode_audio(self, windows: Tensor) -> Tensor:
        """Audio code of each frame from its window: [..., 8, C, W] -> [..., audio_dim] (zeros when cut)."""
        if not self.uses_direct_audio:
            return windows.new_zeros(windows.shape[:-3] + (self.audio_dim,))
        return self.audio_att_net(self.audio_net(windows))

    def deform(self, points, windows: Tensor, *conditions: Tensor | None) -> dict:
        """Offsets from audio windows: `forward(points, encode_audio(windows), *conditions)`.

        Args:
            points: enc_x [N, in_dim] from `encode_points`, or its cached `point_features`.
            windows: audio windows [(B,) 8, C, W] (scene.data.audio_windows).
            conditions: what `forward` takes after the audio code (face: expression, mouth_code;
                mouth: mouth_code).
        """
        return self(points, self.encode_audio(windows), *conditions)

    def predict(self, xyz: Tensor, embedding: Tensor | None, windows: Tensor, *conditions: Tensor | None) -> dict:
        """All in one, from the Gaussians' positions [N, 3] and embedding [N, E] (None without one)."""
        return self.deform(self.encode_points(xyz, embedding), windows, *conditions)

    def _groups(self, nets: dict[str, nn.Module], lr: float, lr_net: float,
                grid_weight_decay: float) -> list[dict]:
        groups = [{"name": "grid", "params": list(self.grid.parameters()), "lr": lr,
                   "weight_decay": grid_weight_decay},
                  {"name": "audio_att_net", "params": list(self.audio_att_net.parameters()),
                   "lr": lr_net * 5, "weight_decay": 1e-4}]
        for name, net in nets.items():
            groups.append({"name": name, "params": list(net.parameters()), "lr": lr_net, "weight_decay": 0.0})
        return groups


class FaceMotionNet(_MotionBase):
    """Face deformation field: per-Gaussian d_xyz, d_rot, d_scale, d_opa from audio + expression.

    Args:
        audio_in_dim: C of the audio features (29 DeepSpeech, 1024 HuBERT, any other).
        audio_dim: size of the audio code (32).
        embedding_dim: per-Gaussian embedding size (32 DEGSTalk; 0 gives TalkingGaussian's 36-d enc_x).
        exp_method: "3dmm" (52-d: 50 expression + 2 eyelids) or "au" (6-d action units).
        grid: TriPlaneEncoder keyword arguments (upstream face preset by default).
    """

    def __init__(self, audio_in_dim: int = 29, audio_dim: int = 32, embedding_dim: int = 32,
                 exp_method: str = "3dmm", grid: dict = FACE_GRID, mouth_dim: int = 0, direct_audio: bool = True):
        super().__init__(grid, audio_in_dim, audio_dim, embedding_dim, mouth_dim, direct_audio)
        if exp_method not in EXPRESSION_LAYOUTS:
            raise ValueError(f"exp_method must be one of {sorted(EXPRESSION_LAYOUTS)}, got {exp_method!r}")
        self.exp_method = exp_method
        n_coded, code_dim, n_pass = EXPRESSION_LAYOUTS[exp_method]
        self.exp_dim = n_coded + n_pass  # expression input size (52 or 6)
        self.eye_dim = code_dim + n_pass  # encoded expression size (16 or 6)
        self.aud_ch_att_net = MLP(self.in_dim, audio_dim, 32, 2)
        self.eye_att_net = MLP(self.in_dim, self.eye_dim, 16, 2)
        self.exp_encode_net = MLP(n_coded, code_dim, 16, 2)
        self.mouth_att_net = MLP(self.in_dim, MOUTH_ENC_DIM, 16, 2) if mouth_dim else None
        # upstream 116 -> 64 -> 64 -> 11 (+16 inputs with mouth codes)
        self.sigma_net = MLP(self.in_dim + audio_dim + self.eye_dim + self.mouth_enc_dim, 11, 64, 3)

    @property
    def _blocks(self) -> tuple[int, ...]:
        return (self.in_dim, self.audio_dim, self.eye_dim, self.mouth_enc_dim)

    def point_features(self, enc_x: Tensor) -> FacePointFeatures:
        """Per-point, audio-independent terms: [N, in_dim] -> FacePointFeatures."""
        assert enc_x.dim() == 2 and enc_x.shape[-1] == self.in_dim, enc_x.shape
        w_x = self.sigma_net.split_first(*self._blocks)[0]
        return FacePointFeatures(aud_att=self.aud_ch_att_net(enc_x),
                                 eye_att=torch.relu(self.eye_att_net(enc_x)),
                                 sigma_x=enc_x @ w_x.T,
                                 mouth_att=torch.relu(self.mouth_att_net(enc_x)) if self.mouth_dim else None)

    def encode_expression(self, expression: Tensor) -> Tensor:  # [..., exp_dim] -> [..., eye_dim]
        assert expression.shape[-1] == self.exp_dim, (expression.shape, self.exp_dim)
        n_coded = EXPRESSION_LAYOUTS[self.exp_method][0]
        return torch.cat([self.exp_encode_net(expression[..., :n_coded]), expression[..., n_coded:]], -1)

    def forward(self, points: Tensor | FacePointFeatures, audio_code: Tensor, expression: Tensor,
                mouth_code: Tensor | None = None) -> dict:
        """Offsets for B frames (or one frame when the conditions are unbatched).

        Args:
            points: enc_x [N, in_dim] from `encode_points`, or its cached `point_features`.
            audio_code: [B, audio_dim] or [audio_dim] from `encode_audio`.
            expression: [B, exp_dim] or [exp_dim].
            mouth_code: [B, mouth_dim] or [mouth_dim] standardised mouth codes (nets with mouth_dim > 0).

        Returns:
            dict of [B, N, k] tensors ([N, k] unbatched): d_xyz (k=3, already x1e-2), d_rot (4),
            d_opa (1), d_scale (3), ambient_aud, ambient_eye and with mouth codes ambient_mouth
            (1; per-point attention norms, frame-independent, returned as expanded views).
        """
        feats = points if isinstance(points, FacePointFeatures) else self.point_features(points)
        conds = (expression,) if mouth_code is None or not self.mouth_dim else (expression, mouth_code)
        unbatched, code, (expr, *mouth) = _as_batch(audio_code, *conds)
        _, w_a, w_e, w_m = self.sigma_net.split_first(*self._blocks)
        enc_e = self.encode_expression(expr)  # [B, eye_dim]
        enc_m = self.encode_mouth(mouth[0] if mouth else None, code.shape[0])  # [B, mouth_enc_dim]
        atts = [feats.aud_att, feats.eye_att] + ([feats.mouth_att] if self.mouth_dim else [])
        h = feats.sigma_x[:, None, :] + _scaled_matmul(torch.cat(atts, dim=-1), torch.cat([w_a, w_e, w_m], 1),
                                                       torch.cat([code, enc_e, enc_m], -1))  # [N, B, 64]
        h = self.sigma_net.forward_tail(h).transpose(0, 1).contiguous()  # [B, N, 11]
        B, N = h.shape[:2]
        out = {
            "d_xyz": h[..., 0:3] * 1e-2,
            "d_rot": h[..., 3:7],
            "d_opa": h[..., 7:8],
            "d_scale": h[..., 8:11],
            "ambient_aud": feats.aud_att.norm(dim=-1, keepdim=True).expand(B, N, 1),
            "ambient_eye": feats.eye_att.norm(dim=-1, keepdim=True).expand(B, N, 1),
        }
        if self.mouth_dim:
            out["ambient_mouth"] = feats.mouth_att.norm(dim=-1, keepdim=True).expand(B, N, 1)
        return {k: v[0] for k, v in out.items()} if unbatched else out

    def param_groups(self, lr: float = 5e-3, lr_net: float = 5e-4, grid_weight_decay: float = 0.01) -> list[dict]:
        """Optimizer groups as upstream: grids `lr`, MLPs `lr_net` (wd 0), audio attention 5*lr_net (wd 1e-4).

        .. note::
            Upstream gives the grid group no weight_decay key, so AdamW's default 0.01 applies to
            the tables. We keep 0.01 as the explicit default for fidelity (it slowly pulls
            untouched cells to zero); pass `grid_weight_decay=0.0` to switch it off.
        """
        nets = {"audio_net": self.audio_net, "sigma_net": self.sigma_net, "aud_ch_att_net": self.aud_ch_att_net,
                "eye_att_net": self.eye_att_net, "exp_encode_net": self.exp_encode_net}
        if self.mouth_dim:
            nets.update(mouth_encode_net=self.mouth_encode_net, mouth_att_net=self.mouth_att_net)
        return self._groups(nets, lr, lr_net, grid_weight_decay)


class MouthMotionNet(_MotionBase):
    """Inside-mouth field: per-Gaussian d_xyz (x and z damped by 5) and, optionally, a jaw head.

    Args:
        audio_in_dim, audio_dim, embedding_dim, grid: as for FaceMotionNet (mouth grid preset).
        use_jaw: add DEGSTalk's jaw head (3 jaw parameters per point; their mean over points is the
            frame's jaw prediction, supervised by the tracked jaw pose).

    .. note::
        Upstream also builds an audio channel-attention net here but never uses it; it is left out.
    """

    XYZ_DAMPING = (5.0, 1.0, 5.0)  # mostly vertical motion inside the mouth

    def __init__(self, audio_in_dim: int = 29, audio_dim: int = 32, embedding_dim: int = 32,
                 use_jaw: bool = True, grid: dict = MOUTH_GRID, mouth_dim: int = 0, direct_audio: bool = True):
        super().__init__(grid, audio_in_dim, audio_dim, embedding_dim, mouth_dim, direct_audio)
        self.sigma_net = MLP(self.in_dim + audio_dim + self.mouth_enc_dim, 3, 32, 3)
        self.jaw_net = MLP(self.in_dim + audio_dim + self.mouth_enc_dim, 3, 32, 3) if use_jaw else None
        self.register_buffer("xyz_damping", torch.tensor(self.XYZ_DAMPING), persistent=False)

    def point_features(self, enc_x: Tensor) -> MouthPointFeatures:
        """Per-point, audio-independent terms: [N, in_dim] -> MouthPointFeatures."""
        assert enc_x.dim() == 2 and enc_x.shape[-1] == self.in_dim, enc_x.shape
        blocks = (self.in_dim, self.audio_dim, self.mouth_enc_dim)
        w_x = self.sigma_net.split_first(*blocks)[0]
        jaw_x = None
        if self.jaw_net is not None:
            jaw_x = enc_x @ self.jaw_net.split_first(*blocks)[0].T
        return MouthPointFeatures(sigma_x=enc_x @ w_x.T, jaw_x=jaw_x)

    def forward(self, points: Tensor | MouthPointFeatures, audio_code: Tensor, mouth_code: Tensor | None = None) -> dict:
        """Offsets for B frames (or one frame when `audio_code` is unbatched).

        Args:
            points: enc_x [N, in_dim] from `encode_points`, or its cached `point_features`.
            audio_code: [B, audio_dim] or [audio_dim].
            mouth_code: [B, mouth_dim] or [mouth_dim] standardised mouth codes (nets with mouth_dim > 0).

        Returns:
            d_xyz [B, N, 3] (x1e-2, x and z further /5); with the jaw head also jaw_exp [B, N, 3]
            (per point) and jaw [B, 3] (mean over points). Unbatched: the B axis is dropped.
        """
        feats = points if isinstance(points, MouthPointFeatures) else self.point_features(points)
        unbatched, code, mouth = _as_batch(audio_code, *([mouth_code] if mouth_code is not None and self.mouth_dim else []))
        cond = torch.cat([code, self.encode_mouth(mouth[0] if mouth else None, code.shape[0])], -1)  # [B, A + Me]
        blocks = (self.in_dim, self.audio_dim + self.mouth_enc_dim)
        w_c = self.sigma_net.split_first(*blocks)[1]
        h = self.sigma_net.forward_tail(feats.sigma_x + (cond @ w_c.T)[:, None, :])  # [B, N, 3]
        out = {"d_xyz": h * 1e-2 / self.xyz_damping.to(h.dtype)}
        if self.jaw_net is not None:
            j_c = self.jaw_net.split_first(*blocks)[1]
            jaw_exp = self.jaw_net.forward_tail(feats.jaw_x + (cond @ j_c.T)[:, None, :])  # [B, N, 3]
            out.update(jaw_exp=jaw_exp, jaw=jaw_exp.mean(dim=-2))
        return {k: v[0] for k, v in out.items()} if unbatched else out

    def param_groups(self, lr: float = 5e-3, lr_net: float = 5e-4, grid_weight_decay: float = 0.01) -> list[dict]:
        """Optimizer groups as FaceMotionNet.param_groups (grids, MLPs, audio attention)."""
        nets = {"audio_net": self.audio_net, "sigma_net": self.sigma_net}
        if self.jaw_net is not None:
            nets["jaw_net"] = self.jaw_net
        if self.mouth_dim:
            nets["mouth_encode_net"] = self.mouth_encode_net
        return self._groups(nets, lr, lr_net, grid_weight_decay)

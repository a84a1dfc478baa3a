"""Canonical 3D Gaussians with a learnable per-Gaussian embedding (the "per-embedding" of DEGSTalk).

The model only holds raw parameters, their activations and PLY I/O. Optimisers are built by the
trainer (`gaussian_param_groups`), densification lives in `scene/training/densify.py`.

Raw parameters (ParameterDict keys; N Gaussians, K = (sh_degree+1)^2 SH bases, E embedding dims):
    means            [N, 3]      world positions (metres, head at the origin)
    quats            [N, 4]      wxyz, normalised on use
    log_scales       [N, 3]      scales = exp(log_scales) (standard 3DGS; upstream's softplus quirk dropped
                                 so exported PLYs mean the same in common splat viewers)
    logit_opacities  [N]         opacities = sigmoid(logit_opacities)
    sh0              [N, 1, 3]   SH DC coefficient
    shN              [N, K-1, 3] higher SH coefficients
    embeddings       [N, E]      per-Gaussian code fed to the motion networks (zero init)
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from plyfile import PlyData, PlyElement
from scipy.spatial import cKDTree
from torch import Tensor, nn

from utils.io_utils import atomic_path
from utils.sh_utils import num_sh_bases, rgb_to_sh

PARAM_KEYS = ("means", "quats", "log_scales", "logit_opacities", "sh0", "shN", "embeddings")


def knn_mean_sq_dist(points: np.ndarray, k: int = 3) -> np.ndarray:
    """Mean squared distance of each point to its k nearest neighbours (simple-knn's distCUDA2)."""
    k = min(k, len(points) - 1)
    if k < 1:
        return np.full(len(points), 1e-4, dtype=np.float32)
    dist, _ = cKDTree(points).query(points, k=k + 1)  # first neighbour is the point itself
    return (dist[:, 1:] ** 2).mean(1).astype(np.float32)


class GaussianModel(nn.Module):
    def __init__(self, sh_degree: int = 2, embedding_dim: int = 32, num_points: int = 0):
        super().__init__()
        self.max_sh_degree = sh_degree
        self.active_sh_degree = 0
        self.embedding_dim = embedding_dim
        K = num_sh_bases(sh_degree)
        shapes = {"means": (3,), "quats": (4,), "log_scales": (3,), "logit_opacities": (),
                  "sh0": (1, 3), "shN": (K - 1, 3), "embeddings": (embedding_dim,)}
        self.params = nn.ParameterDict({k: nn.Parameter(torch.zeros(num_points, *s)) for k, s in shapes.items()})

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def random_init(cls, num_points: int, sh_degree: int = 2, embedding_dim: int = 32, extent: float = 0.1,
                    opacity: float = 0.1, seed: int | None = None) -> "GaussianModel":
        """`num_points` Gaussians uniform in the cube [-extent, extent]^3 with random tiny colours."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        means = (torch.rand(num_points, 3, generator=gen) * 2 - 1) * extent
        colors = torch.rand(num_points, 3, generator=gen) / 255.0
        return cls.from_points(means, colors, sh_degree, embedding_dim, opacity)

    @classmethod
    def from_points(cls, means: Tensor, colors: Tensor, sh_degree: int = 2, embedding_dim: int = 32,
                    opacity: float = 0.1) -> "GaussianModel":
        """Gaussians at `means` [N,3] with RGB `colors` [N,3]; scales from the 3-nearest-neighbour distance."""
        model = cls(sh_degree, embedding_dim, num_points=0)
        n = means.shape[0]
        dist2 = np.clip(knn_mean_sq_dist(means.detach().cpu().numpy()), 1e-7, None)
        log_scales = torch.from_numpy(np.log(np.sqrt(dist2)))[:, None].repeat(1, 3)
        quats = torch.zeros(n, 4)
        quats[:, 0] = 1.0
        values = {
            "means": means.float(),
            "quats": quats,
            "log_scales": log_scales.float(),
            "logit_opacities": torch.full((n,), math.log(opacity / (1 - opacity))),
            "sh0": rgb_to_sh(colors.float())[:, None, :],
            "shN": torch.zeros(n, num_sh_bases(sh_degree) - 1, 3),
            "embeddings": torch.zeros(n, embedding_dim),
        }
        model.set_params(values)
        return model

    def set_params(self, values: dict[str, Tensor]) -> None:
        """Replace every raw parameter (new nn.Parameters: rebuild optimisers afterwards)."""
        device = self.params["means"].device
        for k in PARAM_KEYS:
            self.params[k] = nn.Parameter(values[k].detach().to(device).contiguous().requires_grad_(True))

    # ---- activations ----------------------------------------------------------------------------
    @property
    def num_points(self) -> int:
        return self.params["means"].shape[0]

    @property
    def means(self) -> Tensor:
        return self.params["means"]

    @property
    def quats(self) -> Tensor:
        return torch.nn.functional.normalize(self.params["quats"], dim=-1)

    @property
    def scales(self) -> Tensor:
        return torch.exp(self.params["log_scales"])

    @property
    def opacities(self) -> Tensor:
        return torch.sigmoid(self.params["logit_opacities"])

    @property
    def sh(self) -> Tensor:
        """[N, K, 3] all SH coefficients."""
        return torch.cat([self.params["sh0"], self.params["shN"]], dim=1)

    @property
    def embeddings(self) -> Tensor:
        return self.params["embeddings"]

    def oneup_sh_degree(self) -> None:
        self.active_sh_degree = min(self.active_sh_degree + 1, self.max_sh_degree)

    # ---- checkpoints --------------------------------------------------------------------------
    def capture(self) -> dict:
        """Everything needed to rebuild the model (the optimiser and densify state are saved by the trainer)."""
        return {"max_sh_degree": self.max_sh_degree, "active_sh_degree": self.active_sh_degree,
                "embedding_dim": self.embedding_dim,
                "params": {k: v.detach().cpu().clone() for k, v in self.params.items()}}

    @classmethod
    def restore(cls, state: dict, device: torch.device | str = "cpu") -> "GaussianModel":
        model = cls(state["max_sh_degree"], state["embedding_dim"], num_points=0).to(device)
        model.set_params(state["params"])
        model.active_sh_degree = state["active_sh_degree"]
        return model

    # ---- PLY ----------------------------------------------------------------------------------
    def _ply_attributes(self) -> list[str]:
        K = num_sh_bases(self.max_sh_degree)
        names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
        names += [f"f_rest_{i}" for i in range(3 * (K - 1))]
        names += ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
        names += [f"embedding_{i}" for i in range(self.embedding_dim)]
        return names

    def save_ply(self, path: str | Path) -> Path:
        """Standard 3DGS PLY layout (log scales, logit opacity, channel-major f_rest) + embedding_* fields."""
        p = {k: v.detach().cpu().float().numpy() for k, v in self.params.items()}
        n = len(p["means"])
        columns = [p["means"], np.zeros((n, 3), np.float32), p["sh0"].reshape(n, 3),
                   p["shN"].transpose(0, 2, 1).reshape(n, -1),  # [N, 3, K-1]: all R, then G, then B
                   p["logit_opacities"][:, None], p["log_scales"], p["quats"], p["embeddings"]]
        data = np.concatenate(columns, axis=1).astype(np.float32)
        names = self._ply_attributes()
        assert data.shape[1] == len(names), (data.shape, len(names))
        vertex = np.empty(n, dtype=[(name, "f4") for name in names])
        for i, name in enumerate(names):
            vertex[name] = data[:, i]
        with atomic_path(path) as tmp:
            PlyData([PlyElement.describe(vertex, "vertex")]).write(str(tmp))
        return Path(path)

    @classmethod
    def load_ply(cls, path: str | Path, sh_degree: int | None = None) -> "GaussianModel":
        v = PlyData.read(str(path))["vertex"]
        names = [p.name for p in v.properties]
        n_rest = sum(name.startswith("f_rest_") for name in names)
        K = n_rest // 3 + 1
        degree = int(round(math.sqrt(K))) - 1 if sh_degree is None else sh_degree
        emb_dim = sum(name.startswith("embedding_") for name in names)
        col = lambda prefix, count: np.stack([np.asarray(v[f"{prefix}{i}"]) for i in range(count)], axis=1)
        n = len(v["x"])
        model = cls(degree, emb_dim, num_points=0)
        values = {
            "means": np.stack([v["x"], v["y"], v["z"]], axis=1),
            "quats": col("rot_", 4),
            "log_scales": col("scale_", 3),
            "logit_opacities": np.asarray(v["opacity"]),
            "sh0": col("f_dc_", 3).reshape(n, 1, 3),
            "shN": col("f_rest_", n_rest).reshape(n, 3, K - 1).transpose(0, 2, 1) if n_rest else np.zeros((n, 0, 3)),
            "embeddings": col("embedding_", emb_dim) if emb_dim else np.zeros((n, 0)),
        }
        model.set_params({k: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for k, a in values.items()})
        model.active_sh_degree = degree
        return model


def gaussian_param_groups(model: GaussianModel, opt, extent: float) -> list[dict]:
    """Adam parameter groups with upstream's learning rates (positions scale with the scene extent)."""
    p = model.params
    return [
        {"params": [p["means"]], "lr": opt.position_lr_init * extent, "name": "means"},
        {"params": [p["sh0"]], "lr": opt.feature_lr, "name": "sh0"},
        {"params": [p["shN"]], "lr": opt.feature_lr / 20.0, "name": "shN"},
        {"params": [p["logit_opacities"]], "lr": opt.opacity_lr, "name": "logit_opacities"},
        {"params": [p["log_scales"]], "lr": opt.scaling_lr, "name": "log_scales"},
        {"params": [p["quats"]], "lr": opt.rotation_lr, "name": "quats"},
        {"params": [p["embeddings"]], "lr": opt.embedding_lr, "name": "embeddings"},
    ]


def make_gaussian_optimizer(model: GaussianModel, opt, extent: float) -> torch.optim.Adam:
    return torch.optim.Adam(gaussian_param_groups(model, opt, extent), lr=0.0, eps=1e-15)

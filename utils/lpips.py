"""LPIPS (AlexNet variant) in plain PyTorch, from weights the user supplies (no torchvision, no download).

LPIPS(x, y) = sum over 5 AlexNet ReLU layers of mean_hw( w_l . (f_l(x)/|f_l(x)| - f_l(y)/|f_l(y)|)^2 ).
Weights: torchvision's AlexNet ImageNet checkpoint (`alexnet-owt-7be5be79.pth`, keys `features.*`) and
the LPIPS v0.1 linear heads (`alex.pth` from the `lpips` package, keys `lin{0..4}.model.1.weight`).
Give their folder with --lpips_weights, or put them in ~/.cache/torch/hub/checkpoints/ (torchvision's
cache) and lpips' weights folder; without them the LPIPS loss terms are skipped with one warning.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from utils.io_utils import load_checkpoint

log = logging.getLogger(__name__)
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
LINEAR_FILE = "alex.pth"
# conv layers of torchvision's AlexNet `features`: (index, in, out, kernel, stride, padding)
_CONVS = ((0, 3, 64, 11, 4, 2), (3, 64, 192, 5, 1, 2), (6, 192, 384, 3, 1, 1), (8, 384, 256, 3, 1, 1), (10, 256, 256, 3, 1, 1))
_CHANNELS = (64, 192, 384, 256, 256)
_warned = False  # the missing-weights warning is given once per process


class LPIPS(nn.Module):
    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(i, o, k, s, p) for _, i, o, k, s, p in _CONVS)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in _CHANNELS)
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self.requires_grad_(False)

    def features(self, x: Tensor) -> list[Tensor]:
        x = (x - self.shift) / self.scale
        feats = []
        for i, conv in enumerate(self.convs):
            if i in (1, 2):  # max-pool before conv2 and conv3, as in AlexNet
                x = F.max_pool2d(x, 3, 2)
            x = F.relu(conv(x))
            feats.append(x)
        return feats

    def forward(self, x: Tensor, y: Tensor, normalize: bool = True) -> Tensor:
        """x, y: [B, 3, H, W] in [0, 1] (normalize=True) or [-1, 1]; returns [B] distances."""
        if normalize:
            x, y = x * 2 - 1, y * 2 - 1
        total = 0.0
        for fx, fy, lin in zip(self.features(x), self.features(y), self.lins):
            fx = fx / (fx.norm(dim=1, keepdim=True) + 1e-10)
            fy = fy / (fy.norm(dim=1, keepdim=True) + 1e-10)
            total = total + lin((fx - fy) ** 2).mean(dim=(2, 3))
        return total[:, 0]

    def load_weights(self, alexnet: dict, linear: dict) -> "LPIPS":
        for (idx, *_), conv in zip(_CONVS, self.convs):
            conv.weight.data.copy_(alexnet[f"features.{idx}.weight"])
            conv.bias.data.copy_(alexnet[f"features.{idx}.bias"])
        for i, lin in enumerate(self.lins):
            lin.weight.data.copy_(linear[f"lin{i}.model.1.weight"])
        return self


def find_lpips_weights(folder: str | Path | None = None) -> tuple[Path, Path] | None:
    """(alexnet, linear) weight files from `folder` or the usual caches; None when absent."""
    folders = [Path(folder)] if folder else []
    folders += [Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints",
                Path(__file__).resolve().parents[1] / ".cache" / "models"]
    alex = next((f / ALEXNET_FILE for f in folders if (f / ALEXNET_FILE).is_file()), None)
    lin = next((f / LINEAR_FILE for f in folders if (f / LINEAR_FILE).is_file()), None)
    if folder and (alex is None or lin is None):
        raise FileNotFoundError(f"--lpips_weights {folder} must hold {ALEXNET_FILE} (torchvision AlexNet) and "
                                f"{LINEAR_FILE} (lpips v0.1 linear heads)")
    return (alex, lin) if alex and lin else None


def load_lpips(folder: str | Path | None = None, device: torch.device | str = "cpu") -> LPIPS | None:
    """The LPIPS net when its weights can be found, else None (one warning naming the flag)."""
    global _warned
    found = find_lpips_weights(folder)
    if found is None:
        if _warned:
            return None
        _warned = True
        log.warning("LPIPS weights not found: LPIPS loss terms are skipped (set --lpips_weights DIR with %s and %s)",
                    ALEXNET_FILE, LINEAR_FILE)
        return None
    alex, lin = (load_checkpoint(p) for p in found)
    return LPIPS().load_weights(alex, lin).to(device).eval()

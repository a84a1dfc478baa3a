"""Evaluation metrics of rendered talking-head videos against the ground truth.

Per frame, on the GPU during synthesis (`FrameMetrics`):
- PSNR and SSIM on the full frame (upstream's protocol: the background is pasted from the frame, so
  these numbers are flattering) and on the face crop (the box around the face and mouth masks plus a
  margin: the honest number);
- LPIPS (AlexNet, utils/lpips.py) on the full frame and the face crop, when the user gives the weights
  (`load_lpips_metric`); otherwise it is listed as skipped, with the reason, like any metric that
  cannot run (`markdown_table` writes a "skipped: why" row).
LMD and the mouth-opening correlation, from the two videos afterwards, need MediaPipe landmarks:
data_utils.lip_tracking.landmark_metrics.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from utils.loss_utils import ssim

def face_box(mask: Tensor, margin: float = 0.1) -> tuple[int, int, int, int] | None:
    """(r0, r1, c0, c1) box of a [H, W, 1] mask grown by `margin` of its size; None when empty."""
    rows = torch.nonzero(mask[..., 0].any(dim=1)).flatten()
    cols = torch.nonzero(mask[..., 0].any(dim=0)).flatten()
    if rows.numel() == 0:
        return None
    H, W = mask.shape[:2]
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    dr, dc = int(margin * (r1 - r0)), int(margin * (c1 - c0))
    return max(r0 - dr, 0), min(r1 + dr, H), max(c0 - dc, 0), min(c1 + dc, W)


def _psnr(a: Tensor, b: Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else -10.0 * math.log10(mse)


def load_lpips_metric(folder: str | None, device: torch.device | str = "cpu"):
    """(LPIPS net, None) from the user's weights folder, or (None, why it is skipped) without one."""
    from utils.lpips import ALEXNET_FILE, LINEAR_FILE, load_lpips

    if not folder:
        return None, f"no weights given (--lpips_weights DIR with {ALEXNET_FILE} and {LINEAR_FILE})"
    return load_lpips(folder, device), None  # a folder without the files: FileNotFoundError naming them


LPIPS_MIN_SIDE = 32  # AlexNet's two poolings need at least 31 pixels a side


@dataclass
class FrameMetrics:
    """Accumulates per-frame PSNR / SSIM (and LPIPS with a net), full frame and face crop."""

    lpips: torch.nn.Module | None = None
    values: dict[str, list[float]] = field(default_factory=dict)
    no_face_box: int = 0

    def __post_init__(self):
        keys = ("psnr", "ssim", "face_psnr", "face_ssim") + (("lpips", "face_lpips") if self.lpips is not None else ())
        self.values = {k: [] for k in keys}

    @torch.no_grad()
    def add(self, pred: Tensor, gt: Tensor, face_mask: Tensor | None = None) -> None:
        """pred, gt [B, H, W, 3] in [0, 1]; face_mask [B, H, W, 1] (face + mouth) for the crop."""
        for b in range(pred.shape[0]):
            p, g = pred[b], gt[b]
            self.values["psnr"].append(_psnr(p, g))
            self.values["ssim"].append(float(ssim(p.permute(2, 0, 1), g.permute(2, 0, 1))))
            self._add_lpips("lpips", p, g)
            box = face_box(face_mask[b]) if face_mask is not None else None
            if box is None:
                self.no_face_box += 1
                continue
            r0, r1, c0, c1 = box
            pc, gc = p[r0:r1, c0:c1], g[r0:r1, c0:c1]
            self.values["face_psnr"].append(_psnr(pc, gc))
            self.values["face_ssim"].append(float(ssim(pc.permute(2, 0, 1), gc.permute(2, 0, 1))))
            self._add_lpips("face_lpips", pc, gc)

    def _add_lpips(self, key: str, pred: Tensor, gt: Tensor) -> None:
        if self.lpips is None or min(pred.shape[:2]) < LPIPS_MIN_SIDE:
            return
        chw = lambda x: x.permute(2, 0, 1)[None].float()  # noqa: E731
        self.values[key].append(float(self.lpips(chw(pred), chw(gt))[0]))

    def summary(self) -> dict:
        out = {k: float(np.mean(v)) if v else None for k, v in self.values.items()}
        out["frames"] = len(self.values["psnr"])
        out["frames_without_face_box"] = self.no_face_box
        return out


def markdown_table(results: dict) -> str:
    """One-row-per-metric markdown table of a flat dict; `results["skipped"]` ({metric: why}) adds a
    "skipped: why" row per metric that did not run."""
    lines = ["| metric | value |", "|---|---|"]
    skipped = results.get("skipped") or {}
    for k, v in results.items():
        if k == "skipped" or (k in skipped and v is None):
            continue
        lines.append(f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |")
    lines += [f"| {k} | skipped: {why} |" for k, why in skipped.items()]
    return "\n".join(lines) + "\n"

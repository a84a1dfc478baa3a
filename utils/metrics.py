"""Evaluation metrics of rendered talking-head videos against the ground truth.

Per frame, on the GPU during synthesis (`FrameMetrics`):
- PSNR and SSIM on the full frame (upstream's protocol: the background is pasted from the frame, so
  these numbers are flattering) and on the face crop (the box around the face and mouth masks plus a
  margin: the honest number);
- LPIPS (AlexNet, utils/lpips.py) on the full frame and the face crop, when the user gives the weights
  (`load_lpips_metric`); otherwise it is listed as skipped, with the reason, like any metric that
  cannot run (`markdown_table` writes a "skipped: why" row).
From the two videos afterwards (`landmark_metrics`, CPU, MediaPipe):
- LMD: mean distance of the mean-centred mouth landmarks (pixels); frames where either video has no
  detected face are counted and reported, never silently skipped;
- mouth-opening correlation: Pearson r of the mouth opening over time (inner-lip gap over the outer
  eye-corner distance, as utils.lip_sync), render vs ground truth.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from utils.loss_utils import ssim

# MediaPipe face-mesh indices of the lips (outer + inner contours) and the inner-lip midpoints.
LIPS = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146,
        78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95]
INNER_MID = (13, 14)
OUTER_EYE_CORNERS = (33, 263)  # normalise the mouth opening (utils.lip_sync.mouth_openings)


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


def _mouth_track(frames) -> tuple[list[np.ndarray | None], list[float | None]]:
    """Per frame: mean-centred lip landmarks [40, 2] (or None) and the normalised inner-lip gap."""
    from data_utils.landmarks import LegacyDetector, quiet_native_stderr, upscaled_for_detection

    with quiet_native_stderr():
        detector = LegacyDetector(max_faces=1)
    lips, openings = [], []
    try:
        for i, frame in enumerate(frames):
            big, scale = upscaled_for_detection(frame)  # small renders, e.g. --fast's 128 px
            face = detector(big, i)
            if face is None:
                lips.append(None)
                openings.append(None)
                continue
            pts = face.points[:, :2] / scale  # pixels of the frame as given
            lip = pts[LIPS]
            lips.append(lip - lip.mean(0))
            eyes = np.linalg.norm(pts[OUTER_EYE_CORNERS[0]] - pts[OUTER_EYE_CORNERS[1]])
            openings.append(float(np.linalg.norm(pts[INNER_MID[0]] - pts[INNER_MID[1]]) / max(eyes, 1e-6)))
    finally:
        detector.close()
    return lips, openings


def landmark_metrics(pred_frames, gt_frames) -> dict:
    """LMD and mouth-opening correlation between two frame sequences (iterables of RGB uint8)."""
    pred_lips, pred_open = _mouth_track(pred_frames)
    gt_lips, gt_open = _mouth_track(gt_frames)
    n = min(len(pred_lips), len(gt_lips))
    both = [i for i in range(n) if pred_lips[i] is not None and gt_lips[i] is not None]
    lmd = [float(np.linalg.norm(pred_lips[i] - gt_lips[i], axis=1).mean()) for i in both]
    po, go = np.array([pred_open[i] for i in both]), np.array([gt_open[i] for i in both])
    corr = float(np.corrcoef(po, go)[0, 1]) if len(both) > 2 and po.std() > 0 and go.std() > 0 else None
    return {"lmd": float(np.mean(lmd)) if lmd else None, "mouth_open_corr": corr, "frames": n,
            "frames_detected_both": len(both),
            "frames_no_face_pred": sum(l is None for l in pred_lips[:n]),
            "frames_no_face_gt": sum(l is None for l in gt_lips[:n])}


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

"""The training loop shared by the three stages: sampling, optimisation, densification hooks,
logging (tqdm, TensorBoard, metrics JSON), checkpoints, resume and interruption.

    result = train_stage("mouth", data, cfg)   # data: scene.data.dataset.SubjectData (train split)
    result = train_lips(data, val_data, cfg)   # the audio-to-mouth model (before mouth and face)

Checkpoints keep upstream's names (`chkpnt_<stage>_latest.pth`, `chkpnt_<stage>_<it>.pth`,
`point_cloud/iteration_<it>_<stage>/point_cloud.ply`) and hold a dict (config, stage, step, state
dicts, sampler RNG), written atomically. A run that finds `chkpnt_<stage>_latest.pth` continues from
its step; Ctrl-C or `--max_minutes` saves and stops cleanly, so long schedules can run in chunks.
"""
from __future__ import annotations

import dataclasses
from collections import deque
import logging
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from arguments import TrainConfig, settle_for_clip  # (scripts and tests import TrainConfig from here too)
from scene.models.audio_to_mouth import ARTIFACT, FitConfig, fit_audio_to_mouth, load_audio_to_mouth, predicted_for, \
    save_audio_to_mouth
from scene.models.gaussian_model import GaussianModel
from scene.models.motion_net import FaceMotionNet, MouthMotionNet
from scene.training.sampling import FrameSampler, face_stage_rule, mouth_stage_rule
from scene.training.schedule import face_schedule, fuse_schedule, mouth_schedule
from scene.training.stages import (Conditioning, GaussianBranch, damp_green_mouth_gaussians, face_step, fuse_step, mouth_step,
                          prune_green_face_gaussians)
from utils.io_utils import load_checkpoint, save_json, save_torch
from utils.loss_utils import psnr

log = logging.getLogger(__name__)
STAGES = ("lips", "mouth", "face", "fuse")


def conditioning(cfg: TrainConfig) -> Conditioning:
    """How a Gaussian stage feeds its field, from the run's settings."""
    o = cfg.opt
    return Conditioning(background=o.train_background, code_noise=o.code_noise,
                        predicted_code_share=o.predicted_code_share)


def checkpoint_path(model_path: Path, stage: str, tag: str = "latest") -> Path:
    return Path(model_path) / f"chkpnt_{stage}_{tag}.pth"


def build_branch(stage: str, data, cfg: TrainConfig, device: torch.device, mouth_dim: int = 0) -> GaussianBranch:
    """A fresh mouth or face branch for this subject (its nets read `mouth_dim` mouth codes)."""
    m = cfg.model
    if stage == "mouth":
        sched = mouth_schedule(cfg.mouth_iterations, None)
        gaussians = GaussianModel.random_init(m.init_num, m.sh_degree, seed=cfg.seed).to(device)
        net = MouthMotionNet(audio_in_dim=data.audio_channels, use_jaw=data.has_jaw, mouth_dim=mouth_dim,
                             direct_audio=m.direct_audio == "on").to(device)
        threshold = cfg.opt.densify_grad_threshold
        max_points = 0
    else:
        sched = face_schedule(cfg.face_iterations)
        gaussians = GaussianModel.random_init(cfg.face_init_num, m.sh_degree, seed=cfg.seed + 1).to(device)
        net = FaceMotionNet(audio_in_dim=data.audio_channels, exp_method=m.exp_method, mouth_dim=mouth_dim,
                            direct_audio=m.direct_audio == "on").to(device)
        threshold = cfg.face_grad_threshold
        max_points = cfg.face_max_points
    if not cfg.opt.raw_audio_features:
        net.audio_net.set_input_stats(data.audio.to(device))
    # 3DGS measures the scene by how far the cameras spread; a talking head barely moves, so that
    # spread (a few cm) would shrink the position learning rate and prune every Gaussian wider than a
    # few millimetres. The floor keeps the scale of a head (the init cube is +-0.1 m).
    extent = max(data.extent, cfg.min_extent)
    return GaussianBranch(gaussians, net, cfg.opt, sched, extent, threshold, max_points=max_points)


def load_branch(stage: str, data, cfg: TrainConfig, device: torch.device, mouth_dim: int = 0) -> GaussianBranch:
    """The finished mouth or face branch, from its latest checkpoint (for the fuse stage and synthesis)."""
    path = checkpoint_path(Path(cfg.model.model_path), stage)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: train the {stage} stage first (train.py --stage {stage}).")
    ckpt = load_checkpoint(path)
    planned = ckpt["config"].get(f"{stage}_iterations", 0)
    if ckpt["step"] < planned:
        raise FileNotFoundError(f"the {stage} stage stopped at iteration {ckpt['step']} of {planned} ({path}): "
                                f"finish it first (train.py --stage {stage} resumes it)")
    branch = build_branch(stage, data, cfg, device, mouth_dim)
    branch.load_state_dict(ckpt["branches"][stage], device)
    return branch


def attach_mouth_codes(data, model_path: Path):
    """Serve the audio-to-mouth model's standardised codes in `data`'s batches; returns the model."""
    model, blob = load_audio_to_mouth(Path(model_path) / ARTIFACT)
    data.attach_mouth_model(model, predicted_for(blob, data.aud_ids))
    return model


def train_lips(data, val_data, cfg: TrainConfig) -> dict:
    """The audio-to-mouth model of the subject (seconds on a CPU); skipped when it exists.

    data, val_data: the train and val splits, read with mouth features (load_subject(mouth_features=...)).
    """
    model_path = Path(cfg.model.model_path)
    path = model_path / ARTIFACT
    if path.is_file():
        log.info("[lips] already trained (%s)", path)
        return {"stage": "lips", "status": "done", "path": str(path)}
    if data.mouth_features is None:
        raise ValueError("the subject was read without mouth features: pass load_subject(mouth_features=...)")
    t0 = time.time()
    feats = data.mouth_features
    codes = np.zeros((len(feats), len(data.mouth_code_names)), np.float32)
    codes[data.aud_ids] = data.per_frame["mouth_code_raw"]
    codes[val_data.aud_ids] = val_data.per_frame["mouth_code_raw"]
    model, report = fit_audio_to_mouth(feats, codes, data.mouth_code_names, data.aud_ids, val_data.aud_ids,
                                       FitConfig(seed=cfg.seed, steps=cfg.lips_steps), device=cfg.device,
                                       activity=data.mouth_activity)
    oof = report.pop("oof_codes")
    report["seconds"] = round(time.time() - t0, 2)
    model_path.mkdir(parents=True, exist_ok=True)
    save_audio_to_mouth(path, model, list(cfg.model.mouth_feature_kinds), report, data.aud_ids, oof)
    save_json(model_path / "metrics" / "audio_to_mouth.json", report)
    log.info("[lips] audio-to-mouth model: val opening r %.3f (%d train / %d val frames, %.0f s) -> %s",
             report["val_opening_r"] or float("nan"), report["train_frames"], report["val_frames"],
             report["seconds"], path)
    return {"stage": "lips", "status": "done", "path": str(path), **report}


class StageRun:
    """State of one stage's run: its branches, schedule and sampler."""

    def __init__(self, stage: str, data, cfg: TrainConfig, device: torch.device):
        cfg = settle_for_clip(cfg, data.num_frames)  # "auto" choices left open (train.py settles them first)
        self.stage, self.data, self.cfg, self.device = stage, data, cfg, device
        a2m = attach_mouth_codes(data, Path(cfg.model.model_path)) if cfg.mouth_codes else None
        mouth_dim = a2m.num_codes if a2m is not None else 0
        self.cond = dataclasses.replace(conditioning(cfg),
                                        code_noise_std=None if a2m is None else a2m.residual_std.to(device))
        if stage == "fuse":
            self.sched = fuse_schedule(cfg.fuse_iterations)
            self.branches = {"face": load_branch("face", data, cfg, device, mouth_dim),
                             "mouth": load_branch("mouth", data, cfg, device, mouth_dim)}
            self._freeze_for_fuse()
        else:
            branch = build_branch(stage, data, cfg, device, mouth_dim)
            self.sched = branch.sched
            self.branches = {stage: branch}
        self.sampler = FrameSampler(data.num_frames, seed=cfg.seed)
        self.step = 0
        from utils.lpips import load_lpips

        self.lpips = load_lpips(cfg.lpips_weights or None, device)

    def _freeze_for_fuse(self) -> None:
        """Fuse trains colours of both fields and the face's opacity; nothing else moves."""
        trainable = {"face": {"sh0", "shN", "logit_opacities"}, "mouth": {"sh0", "shN"}}
        for name, branch in self.branches.items():
            branch.train_motion = False
            branch.densify.densify_until = 0
            for p in branch.net.parameters():
                p.requires_grad_(False)
            for key, p in branch.gaussians.params.items():
                p.requires_grad_(key in trainable[name])
            for g in branch.optimizer.param_groups:
                if g["name"] == "logit_opacities":
                    g["lr"] = self.cfg.fuse_opacity_lr
                if g["name"] not in trainable[name]:
                    g["lr"] = 0.0

    # ---- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"config": self.cfg.to_dict(), "stage": self.stage, "step": self.step,
                "branches": {k: b.state_dict() for k, b in self.branches.items()},
                "sampler": self.sampler.state_dict(), "torch_rng": torch.get_rng_state()}

    def load_state_dict(self, state: dict) -> None:
        for name, b in self.branches.items():
            b.load_state_dict(state["branches"][name], self.device)
        if self.stage == "fuse":
            self._freeze_for_fuse()
        self.sampler.load_state_dict(state["sampler"])
        torch.set_rng_state(state["torch_rng"])
        self.step = int(state["step"])

    def save(self, final: bool = False) -> Path:
        model_path = Path(self.cfg.model.model_path)
        state = self.state_dict()
        latest = save_torch(checkpoint_path(model_path, self.stage), state)
        if final or self.step % self.sched.checkpoint_every == 0:
            save_torch(checkpoint_path(model_path, self.stage, str(self.step)), state)
            for name, b in self.branches.items():
                if self.stage != "fuse":
                    b.gaussians.save_ply(model_path / "point_cloud" / f"iteration_{self.step}_{name}" / "point_cloud.ply")
        return latest

    # ---- one iteration ----------------------------------------------------------------------------
    def sampling_rule(self, it: int):
        stats, s = self.data.stats, self.sched
        if self.stage == "mouth":
            return mouth_stage_rule(stats, it, s.warm_step, s.select_iter, s.select_interval)
        if self.stage == "face":
            return face_stage_rule(stats, it, s.warm_step, s.select_iter, s.select_interval)
        return None

    def iteration(self, it: int) -> tuple[Tensor, dict, dict]:
        """One optimisation step; returned loss and logs are detached tensors (no GPU sync here)."""
        rule = self.sampling_rule(it)
        idx = [self.sampler.draw(rule) for _ in range(self.cfg.batch_size)]
        batch = self.data.batch(idx, self.device)
        W, H, backend, dssim = self.data.width, self.data.height, self.cfg.backend, self.cfg.opt.lambda_dssim
        for b in self.branches.values():
            b.update_lr(it)
        cond = self.cond
        if self.stage == "mouth":
            loss, logs, aux = mouth_step(self.branches["mouth"], it, batch, W, H, backend, dssim, lpips=self.lpips,
                                         cond=cond)
        elif self.stage == "face":
            loss, logs, aux = face_step(self.branches["face"], it, batch, W, H, backend, dssim, lpips=self.lpips,
                                        cond=cond)
        else:
            loss, logs, aux = fuse_step(self.branches["face"], self.branches["mouth"], it, batch, W, H, backend, dssim,
                                        lpips=self.lpips, lpips_start=self.sched.lpips_start)
        loss.backward()
        for name, b in self.branches.items():
            raster = aux["raster"]
            if self.stage != "fuse" and it <= b.densify.densify_until:
                b.densify.accumulate(b.densify_state, raster.means2d, raster.radii, W, H)
            b.step_optimizers(aux["motion_used"], aux.get("freeze_geometry", False))
            if self.stage != "fuse":
                changed = b.densify.step(b.gaussians, b.optimizer, b.densify_state, it, b.extent)
                green_bg = cond.background == "green"  # upstream's heuristics against the green background
                if green_bg and changed and self.stage == "mouth":
                    logs["green_damped"] = damp_green_mouth_gaussians(b)
                if green_bg and self.stage == "face" and it > b.densify.densify_from and it % b.densify.interval == 0:
                    logs["green_pruned"] = prune_green_face_gaussians(b)
                logs.update({f"densify_{k}": v for k, v in changed.items()})
        with torch.no_grad():
            logs["psnr"] = psnr(aux["image"], aux["target"])
        return loss.detach(), logs, aux


def train_stage(stage: str, data, cfg: TrainConfig) -> dict:
    """Train one stage to its last iteration (or until interrupted / out of time); returns a summary."""
    if stage not in STAGES[1:]:
        raise ValueError(f"unknown field stage {stage!r}; choose one of {STAGES[1:]} (lips: train_lips)")
    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    model_path = Path(cfg.model.model_path)
    model_path.mkdir(parents=True, exist_ok=True)
    run = StageRun(stage, data, cfg, device)
    latest = checkpoint_path(model_path, stage)
    if latest.is_file():
        run.load_state_dict(load_checkpoint(latest))
        log.info("[%s] resuming from iteration %d (%s)", stage, run.step, latest)
    total = run.sched.iterations
    summary = {"stage": stage, "iterations": total, "start": run.step}
    if run.step >= total:
        log.info("[%s] already finished (%d iterations)", stage, total)
        return {**summary, "status": "done", "end": run.step}

    writer = _tensorboard(model_path)
    t0 = time.time()
    ema_loss = ema_psnr = None
    first_psnr: list[Tensor] = []
    last_psnr: deque[Tensor] = deque(maxlen=20)
    status = "done"
    bar = tqdm(range(run.step + 1, total + 1), desc=f"{stage}", initial=run.step, total=total, dynamic_ncols=True)
    try:
        for it in bar:
            loss, logs, aux = run.iteration(it)
            run.step = it
            ema_loss = loss if ema_loss is None else 0.6 * loss + 0.4 * ema_loss
            ema_psnr = logs["psnr"] if ema_psnr is None else 0.6 * logs["psnr"] + 0.4 * ema_psnr
            (first_psnr if len(first_psnr) < 20 else last_psnr).append(logs["psnr"])
            if it % cfg.log_every == 0 or it == total:
                ema_loss, ema_psnr = float(ema_loss), float(ema_psnr)  # the only GPU sync of the step
                logs = {k: float(v) for k, v in logs.items()}
                n = sum(b.gaussians.num_points for b in run.branches.values())
                bar.set_postfix(loss=f"{ema_loss:.4f}", psnr=f"{ema_psnr:.2f}", pts=n)
                if writer is not None:
                    for k, v in logs.items():
                        writer.add_scalar(f"train_{stage}/{k}", v, it)
                    writer.add_scalar(f"train_{stage}/loss", float(loss), it)
                    writer.add_scalar(f"train_{stage}/num_points", n, it)
                    writer.add_scalar(f"train_{stage}/it_per_s", (it - summary["start"]) / max(time.time() - t0, 1e-6), it)
            if writer is not None and (it % cfg.image_every == 0 or it == total):
                grid = torch.cat([aux["image"][0], aux["target"][0]], dim=1).clamp(0, 1)
                writer.add_image(f"train_{stage}/render_vs_target", grid.permute(2, 0, 1), it)
            if it % run.sched.checkpoint_every == 0 and it != total:
                run.save()
            out_of_time = cfg.max_minutes > 0 and (time.time() - t0) / 60 >= cfg.max_minutes
            out_of_steps = cfg.stop_after > 0 and it - summary["start"] >= cfg.stop_after
            if (out_of_time or out_of_steps) and it != total:
                status = "paused"
                break
    except KeyboardInterrupt:
        run.save()
        bar.close()
        log.warning("[%s] interrupted at iteration %d; checkpoint saved, rerun to resume", stage, run.step)
        raise
    run.save(final=status == "done")
    bar.close()
    elapsed = time.time() - t0
    summary.update(status=status, end=run.step, seconds=round(elapsed, 2),
                   it_per_s=round((run.step - summary["start"]) / max(elapsed, 1e-6), 2),
                   ema_loss=None if ema_loss is None else float(ema_loss),
                   ema_psnr=None if ema_psnr is None else float(ema_psnr),
                   first_psnr=float(torch.stack(first_psnr).mean()) if first_psnr else None,
                   last_psnr=float(torch.stack(list(last_psnr) or first_psnr).mean()) if first_psnr else None,
                   num_points={k: b.gaussians.num_points for k, b in run.branches.items()},
                   peak_gpu_mb=round(torch.cuda.max_memory_allocated() / 2**20) if device.type == "cuda" else None)
    metrics_dir = model_path / "metrics"
    save_json(metrics_dir / f"train_{stage}.json", summary)
    if writer is not None:
        writer.close()
    return summary


def _tensorboard(model_path: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional on a GPU box
        log.warning("tensorboard is not installed: no TensorBoard logs")
        return None
    return SummaryWriter(str(model_path))

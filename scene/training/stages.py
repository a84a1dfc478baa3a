"""The three training stages of DEGSTalk: inside-mouth field, face field, then their fusion.

A stage owns its models and optimisers and defines one training step on a batch of frames:
`step(it, batch) -> (loss, logs)`; the loop in `scene/training/trainer.py` does the rest (sampling,
densification hooks, checkpoints, logging). Constants are upstream's (upstream-facts section 5).

A batch is a dict of tensors with a leading frame axis B:
    image [B,H,W,3], background [B,H,W,3], masks {name: [B,H,W,1]} (face, face_only, mouth, hair,
    neck, cloth, teeth, lips_box), viewmats [B,4,4], Ks [B,3,3], audio_windows [B,8,C,W],
    expression [B,E], jaw [B,3], index [B] (frame ids), and with mouth codes mouth_code and
    mouth_code_pred [B,M] (standardised own and out-of-fold predicted codes).

Ours (docs/lip_sync.md): the fields read mouth codes, the frame's own (with noise) and, more and more
towards the end of a stage, the codes the audio-to-mouth model predicts for it, so that predicted
codes drive them well at inference. The mouth and face fields are trained over a random background
colour per frame ("random"): over upstream's fixed green they learned its complementary colour where
alpha < 1 (magenta jaw lines, green mouths once fused over a real background).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from gaussian_renderer.render import Views, composite, render_face, render_mouth
from scene.training.densify import DensifyStrategy
from scene.models.gaussian_model import GaussianModel, make_gaussian_optimizer
from scene.training.schedule import Schedule, hair_is_dont_care
from utils.general_utils import expon_lr
from utils.loss_utils import l1_loss, patchify, ssim
from utils.sh_utils import sh_to_rgb

log = logging.getLogger(__name__)
GREEN = (0.0, 1.0, 0.0)


def _colour(rgb: tuple[float, float, float], like: Tensor) -> Tensor:
    """A constant colour on `like`'s device, built there (no host-to-device copy in the step)."""
    return torch.stack([torch.full((), c, device=like.device, dtype=like.dtype) for c in rgb])


def photometric(pred: Tensor, target: Tensor, lambda_dssim: float) -> Tensor:
    """L1 + lambda (1 - SSIM) on channel-last [B,H,W,3] images."""
    return l1_loss(pred, target) + lambda_dssim * (1.0 - ssim(pred.permute(0, 3, 1, 2), target.permute(0, 3, 1, 2)))


def lpips_patches(lpips, image: Tensor, target: Tensor, low: int, high: int) -> Tensor:
    """LPIPS over non-overlapping square patches of side 2*U{low..high} (upstream's patch LPIPS)."""
    size = min(2 * int(torch.randint(low, high + 1, ())), image.shape[1], image.shape[2])  # small test images
    to_patches = lambda x: torch.cat([patchify(im, size) for im in x.permute(0, 3, 1, 2)])
    return lpips(to_patches(image), to_patches(target)).mean()


def lpips_lips(lpips, image: Tensor, target: Tensor, lips_rect: Tensor) -> Tensor:
    """LPIPS on the lips box of each frame (crops of different sizes, one call each)."""
    losses = []
    for im, tg, (r0, r1, c0, c1) in zip(image, target, lips_rect.tolist()):
        if r1 - r0 >= 16 and c1 - c0 >= 16:  # AlexNet needs a few pixels
            crop = lambda x: x[r0:r1, c0:c1].permute(2, 0, 1)[None]
            losses.append(lpips(crop(im), crop(tg)).mean())
    return torch.stack(losses).mean() if losses else image.new_zeros(())


def alpha_prior(alpha: Tensor, inside: Tensor) -> Tensor:
    """Opaque inside the region, transparent outside: mean((1-a) in) + mean(a out)."""
    return ((1.0 - alpha) * inside).mean() + (alpha * (1.0 - inside)).mean()


def fill(image: Tensor, region: Tensor, bg: Tensor) -> Tensor:
    """`bg` on the region ([B,H,W,1] in [0, 1]), `image` elsewhere: how a pixel is made "don't care"."""
    return image * (1.0 - region) + bg * region


def mouth_dont_care(mouth: Tensor, lips_box: Tensor) -> Tensor:
    """[B,H,W,1] lips box XOR mouth mask: pixels that carry no mouth signal (upstream-facts 5, stage 1).

    In the box but off the mouth mask (lips, teeth edges) the face field decides; the render is
    painted over there, so outside the box it must show the background and inside only the mouth counts.
    """
    return lips_box + mouth - 2 * lips_box * mouth


def mouth_supervision(image: Tensor, frame: Tensor, mouth: Tensor, lips_box: Tensor, bg: Tensor) -> tuple[Tensor, Tensor]:
    """(image, target) the mouth field's loss compares, [B,H,W,3] each.

    Args:
        image: the mouth render composited over `bg` [B,H,W,3].
        frame: the ground-truth frame [B,H,W,3].
        mouth, lips_box: masks [B,H,W,1].
        bg: the background colour [B or 1,1,1,3] (upstream: green, black in the mouth stage's tail).

    Returns:
        the render with `bg` on `mouth_dont_care`, and the target: the frame on the mouth mask, `bg` elsewhere.
    """
    target = frame * mouth + bg * (1.0 - mouth)
    return fill(image, mouth_dont_care(mouth, lips_box), bg), target


def face_supervision(image: Tensor, frame: Tensor, masks: dict, bg: Tensor, hair_dont_care: bool) -> tuple[Tensor, Tensor]:
    """(image, target) the face field's loss compares, [B,H,W,3] each (DEGSTalk's hair-preserving targets).

    The target is the frame on the face_only mask (no hair, neck or mouth), `bg` elsewhere and on the
    mouth mask (the mouth field's job). On `hair_dont_care` steps the hair is painted `bg` in both, so
    it costs nothing; on the others the face field must show `bg` there.
    """
    head, mouth, hair = masks["face_only"], masks["mouth"], masks["hair"]
    target = frame * head + bg * (1.0 - head)
    target = fill(target, mouth, bg)
    if hair_dont_care:
        image, target = fill(image, hair, bg), fill(target, hair, bg)
    return image, target


def attention_prior(attention: Tensor, lips_box: Tensor, hair: Tensor, hair_dont_care: bool) -> Tensor:
    """Face: 1e-4 mean expression attention on the lips box, and on steps that supervise the hair
    1e-4 mean attention of each kind on the hair (nothing drives the hair, the mouth code neither).

    attention [B,H,W,2 or 3] (audio, expression(, mouth code)); masks [B,H,W,1].
    """
    loss = 1e-4 * (attention[..., 1:2] * lips_box).mean()
    if not hair_dont_care:
        loss = loss + 1e-4 * (attention * hair).mean(dim=(0, 1, 2)).sum()
    return loss


def colour_is_green(model: GaussianModel, low: float, high: float) -> Tensor:
    """[N] Gaussians whose base colour is nearly the green training background."""
    rgb = sh_to_rgb(model.params["sh0"][:, 0, :]).detach()
    return (rgb[:, 0] < low) & (rgb[:, 1] > high) & (rgb[:, 2] < low)


def motion_optimizer(net: torch.nn.Module, lr_scale: float = 1.0, eps: float = 1e-8) -> torch.optim.Optimizer:
    """AdamW over the net's upstream parameter groups (each remembers its base lr in `initial_lr`)."""
    opt = torch.optim.AdamW(net.param_groups(lr=5e-3 * lr_scale, lr_net=5e-4 * lr_scale), betas=(0.9, 0.99), eps=eps)
    for g in opt.param_groups:
        g["initial_lr"] = g["lr"]
    return opt


def position_lr(it: int, opt_params, extent: float, iterations: int) -> float:
    """3DGS's log-linear position lr (x extent), its decay length scaled from upstream's 50k steps."""
    o = opt_params
    return expon_lr(it, o.position_lr_init * extent, o.position_lr_final * extent, delay_mult=o.position_lr_delay_mult,
                    max_steps=round(o.position_lr_max_steps * iterations / 50000))


def motion_lr_factor(it: int, sched: Schedule) -> float:
    """Upstream's two-phase decay: 0.5^(it/select_iter) during sampling, then 0.1^(it/bg_iter)."""
    select, bg = max(sched.select_iter, 1), max(sched.bg_iter, 1)
    return 0.5 ** (it / select) if it < select else 0.1 ** (it / bg)


class GaussianBranch:
    """One Gaussian field + its motion net + optimisers + densification (mouth or face)."""

    def __init__(self, gaussians: GaussianModel, net: torch.nn.Module, opt_params, sched: Schedule, extent: float,
                 grad_threshold: float, train_motion: bool = True, max_points: int = 0):
        self.gaussians, self.net, self.sched, self.extent = gaussians, net, sched, extent
        self.opt_params = opt_params
        self.optimizer = make_gaussian_optimizer(gaussians, opt_params, extent)
        self.net_optimizer = motion_optimizer(net, opt_params.motion_lr_scale, opt_params.motion_eps)
        self.densify = DensifyStrategy(grad_threshold=grad_threshold, percent_dense=opt_params.percent_dense,
                                       densify_from=sched.densify_from, densify_until=sched.densify_until,
                                       interval=sched.densify_interval,
                                       prune_big_after=round(3000 * sched.iterations / 50000), max_points=max_points)
        self.densify_state = self.densify.initialize_state(gaussians)
        self.train_motion = train_motion

    def motion(self, batch: dict, *conditions: Tensor | None) -> dict:
        """The net's offsets of the Gaussians for the batch's frames (conditions: as the net's forward)."""
        return self.net.predict(self.gaussians.means, self.gaussians.embeddings, batch["audio_windows"], *conditions)

    def update_lr(self, it: int) -> None:
        lr = position_lr(it, self.opt_params, self.extent, self.sched.iterations)
        for g in self.optimizer.param_groups:
            if g["name"] == "means":
                g["lr"] = lr
        factor = motion_lr_factor(it, self.sched)
        for g in self.net_optimizer.param_groups:
            g["lr"] = g["initial_lr"] * factor
        if it % self.sched.sh_up_interval == 0:
            self.gaussians.oneup_sh_degree()

    def step_optimizers(self, motion_used: bool, freeze_geometry: bool = False) -> None:
        if freeze_geometry:  # mouth tail: only colours keep learning
            for key in ("means", "quats", "log_scales", "logit_opacities", "embeddings"):
                self.gaussians.params[key].grad = None
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if motion_used and self.train_motion:
            self.net_optimizer.step()
        self.net_optimizer.zero_grad(set_to_none=True)

    def state_dict(self) -> dict:
        return {"gaussians": self.gaussians.capture(), "net": self.net.state_dict(),
                "optimizer": self.optimizer.state_dict(), "net_optimizer": self.net_optimizer.state_dict(),
                "densify_state": {k: v.cpu() for k, v in self.densify_state.items()}}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        g = GaussianModel.restore(state["gaussians"], device)
        self.gaussians.set_params(dict(g.params.items()))
        self.gaussians.active_sh_degree = g.active_sh_degree
        self.net.load_state_dict(state["net"])
        self.optimizer = make_gaussian_optimizer(self.gaussians, self.opt_params, self.extent)
        self.optimizer.load_state_dict(state["optimizer"])
        self.net_optimizer.load_state_dict(state["net_optimizer"])
        self.densify_state = {k: v.to(device) for k, v in state["densify_state"].items()}


def views_of(batch: dict, width: int, height: int) -> Views:
    return Views(batch["viewmats"], batch["Ks"], width, height)


@dataclass(frozen=True)
class Conditioning:
    """How a Gaussian stage feeds its field (TrainConfig's settings)."""

    background: str = "random"  # "random": a random colour per frame; "green": upstream's fixed green
    code_noise: float = 0.5  # noise on the own (standardised) mouth codes, in units of code_noise_std
    predicted_code_share: float = 0.5  # share of frames driven by predicted codes at the end of a stage
    code_noise_std: Tensor | None = None  # [M] per-code std of the audio model's errors (None: 1)


def training_background(batch: dict, cond: Conditioning) -> Tensor:
    """Background colour of each frame of the batch: [B, 1, 1, 3]."""
    like = batch["image"]
    if cond.background == "random":
        return torch.rand(like.shape[0], 1, 1, 3, device=like.device, dtype=like.dtype)
    if cond.background == "green":
        return _colour(GREEN, like).view(1, 1, 1, 3)
    raise ValueError(f"background must be random or green, got {cond.background!r}")


def mouth_background(batch: dict, cond: Conditioning, tail: bool) -> Tensor:
    """The mouth stage's background: `training_background`, but black in the tail over upstream's green."""
    if tail and cond.background == "green":
        return _colour((0.0, 0.0, 0.0), batch["image"]).view(1, 1, 1, 3)
    return training_background(batch, cond)


def step_mouth_code(net: torch.nn.Module, batch: dict, it: int, sched: Schedule, cond: Conditioning) -> Tensor | None:
    """The mouth codes a training step feeds `net` ([B, M]), or None for a net without them.

    Each frame takes its own code, or with probability share * progress (progress: 0 at the end of
    the warm-up, 1 at the last step) its out-of-fold predicted code; then Gaussian noise as large as
    the audio model's error on each code, so the field learns to lean on the codes audio predicts
    well (the opening) and not on those it cannot (a smile).
    """
    if not getattr(net, "mouth_dim", 0):
        return None
    own, pred = batch["mouth_code"], batch["mouth_code_pred"]
    progress = min(max((it - sched.warm_step) / max(sched.iterations - sched.warm_step, 1), 0.0), 1.0)
    use_pred = torch.rand(own.shape[0], 1, device=own.device) < cond.predicted_code_share * progress
    code = torch.where(use_pred, pred, own)
    std = 1.0 if cond.code_noise_std is None else cond.code_noise_std.to(code.device)
    return code + cond.code_noise * std * torch.randn_like(code)


def mouth_step(branch: GaussianBranch, it: int, batch: dict, width: int, height: int, backend: str,
               lambda_dssim: float = 0.2, use_jaw: bool = True, lpips=None,
               cond: Conditioning = Conditioning()) -> tuple[Tensor, dict, dict]:
    """Inside-mouth field: fit the mouth interior inside the lips box, the background everywhere else."""
    sched = branch.sched
    g, net = branch.gaussians, branch.net
    static = it < sched.warm_step
    tail = it > sched.bg_iter  # frozen geometry and motion (upstream: and a black background)
    motion = None
    if not static:
        with torch.set_grad_enabled(not tail):
            motion = branch.motion(batch, step_mouth_code(net, batch, it, sched, cond))
    out = render_mouth(g, motion, views_of(batch, width, height), backend)
    bg = mouth_background(batch, cond, tail)
    box = batch["masks"]["lips_box"]
    image, target = mouth_supervision(out["image"] + bg * (1.0 - out["alpha"]), batch["image"],
                                      batch["masks"]["mouth"], box, bg)
    loss = photometric(image, target, lambda_dssim)
    logs = {"photo": loss.detach()}
    if not static and not tail:
        prior = 1e-3 * alpha_prior(out["alpha"], box)
        loss = loss + prior
        if use_jaw and "jaw" in motion and "jaw" in batch:
            jaw = 1e-3 * l1_loss(motion["jaw"], batch["jaw"])
            loss = loss + jaw
            logs["jaw"] = jaw.detach()
    if tail and lpips is not None:
        perceptual = 0.5 * lpips_patches(lpips, image, target, 16, 21)
        loss = loss + perceptual
        logs["lpips"] = perceptual.detach()
    return loss, logs, {"image": image, "target": target, "raster": out["raster"],
                        "motion_used": motion is not None and not tail, "freeze_geometry": tail}


def face_step(branch: GaussianBranch, it: int, batch: dict, width: int, height: int, backend: str,
              lambda_dssim: float = 0.2, lpips=None, cond: Conditioning = Conditioning()) -> tuple[Tensor, dict, dict]:
    """Face field, DEGSTalk's hair-preserving supervision: only the face (without hair and mouth) counts."""
    sched = branch.sched
    g, net = branch.gaussians, branch.net
    static = it < sched.warm_step
    views = views_of(batch, width, height)
    bg = training_background(batch, cond)  # the colour that stands for "nothing here" (upstream: green)
    motion = None
    if static:
        out = render_mouth(g, None, views, backend)  # same static render of canonical Gaussians
    else:
        motion = branch.motion(batch, batch["expression"], step_mouth_code(net, batch, it, sched, cond))
        out = render_face(g, motion, views, backend, with_attention=True)
    m = batch["masks"]
    head, hair, box = m["face_only"], m["hair"], m["lips_box"]
    hair_dont_care = hair_is_dont_care(it, sched)
    image, target = face_supervision(out["image"] + bg * (1.0 - out["alpha"]), batch["image"], m, bg, hair_dont_care)
    loss = photometric(image, target, lambda_dssim)
    logs = {"photo": loss.detach()}
    if motion is not None:
        reg = 1e-5 * sum(motion[k].abs().mean() for k in ("d_xyz", "d_rot", "d_opa", "d_scale"))
        prior = 1e-3 * alpha_prior(out["alpha"], head)
        att_loss = attention_prior(out["attention"], box, hair, hair_dont_care)
        loss = loss + reg + prior + att_loss
        logs.update(reg=reg.detach(), attention=att_loss.detach())
    if lpips is not None and it > sched.lpips_start:
        perceptual = 0.01 * lpips_lips(lpips, image, target, batch["lips_rect"])
        # then the rest of the face, lips blanked
        perceptual = perceptual + 0.2 * lpips_patches(lpips, fill(image, box, bg), fill(target, box, bg), 32, 48)
        loss = loss + perceptual
        logs["lpips"] = perceptual.detach()
    return loss, logs, {"image": image, "target": target, "raster": out["raster"], "motion_used": motion is not None}


@torch.no_grad()
def damp_green_mouth_gaussians(branch: GaussianBranch) -> int:
    """After densification (mouth): green Gaussians get half their grad stats, opacity 0.1, scale /10."""
    green = colour_is_green(branch.gaussians, 20 / 255, 235 / 255)
    p = branch.gaussians.params
    branch.densify_state["grad2d"][green] /= 2
    p["logit_opacities"][green] = math.log(0.1 / 0.9)
    p["log_scales"][green] -= math.log(10.0)
    return int(green.sum())


def prune_green_face_gaussians(branch: GaussianBranch) -> int:
    """Face: drop Gaussians that learned the green background colour."""
    from scene.training.densify import remove

    green = colour_is_green(branch.gaussians, 30 / 255, 225 / 255)
    remove(branch.gaussians, branch.optimizer, branch.densify_state, green)
    return int(green.sum())


def fuse_step(face: GaussianBranch, mouth: GaussianBranch, it: int, batch: dict, width: int, height: int,
              backend: str, lambda_dssim: float = 0.2, lpips=None, lpips_start: int = 0) -> tuple[Tensor, dict, dict]:
    """Fusion: face over mouth over the frame's own background, against the full frame."""
    views = views_of(batch, width, height)
    code = batch.get("mouth_code")  # the frame's own: fusion learns colours, not motion
    with torch.no_grad():
        fm = face.motion(batch, batch["expression"], code)
        mm = mouth.motion(batch, code)
    face_out = render_face(face.gaussians, fm, views, backend)
    mouth_out = render_mouth(mouth.gaussians, mm, views, backend)
    image = composite(face_out, mouth_out, batch["background"])
    loss = photometric(image, batch["image"], lambda_dssim)
    logs = {"photo": loss.detach()}
    if lpips is not None and it > lpips_start:
        perceptual = 0.5 * lpips_patches(lpips, image, batch["image"], 16, 21)
        loss = loss + perceptual
        logs["lpips"] = perceptual.detach()
    return loss, logs, {"image": image, "target": batch["image"], "raster": face_out["raster"], "motion_used": False}

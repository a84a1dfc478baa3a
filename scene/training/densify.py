"""Adaptive density control of 3DGS (clone small, split large, prune transparent / huge Gaussians).

gsplat's shape: thresholds in a dataclass, an explicit state dict, and pure tensor surgery that keeps
the Adam moments of every parameter in sync with the Gaussians they belong to.

    strategy = DensifyStrategy(grad_threshold=2e-4, densify_until=45000)
    state = strategy.initialize_state(model)
    ...render..., loss.backward()
    strategy.accumulate(state, out, width, height)          # every iteration
    stats = strategy.step(model, optimizer, state, it, extent)  # densify/prune on schedule
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from scene.models.gaussian_model import PARAM_KEYS, GaussianModel


@dataclass
class DensifyStrategy:
    grad_threshold: float = 0.0002  # densify Gaussians whose mean view-space (NDC) gradient norm reaches this
    percent_dense: float = 0.005  # clone when the largest scale <= percent_dense * extent, else split
    densify_from: int = 500
    densify_until: int = 45000
    interval: int = 100
    min_opacity: float = 0.05  # prune below this opacity, plus opacity_ramp * it / densify_until (upstream's ramp)
    opacity_ramp: float = 0.25
    # from prune_big_after on, also prune Gaussians whose screen radius > max_screen_size or world scale > 0.1 extent
    prune_big_after: int = 3000
    max_screen_size: float = 20.0
    max_world_scale: float = 0.1
    split_count: int = 2
    max_points: int = 0  # > 0: no clone or split beyond this many Gaussians (the largest gradients go first)

    def initialize_state(self, model: GaussianModel) -> dict[str, Tensor]:
        n, dev = model.num_points, model.means.device
        return {"grad2d": torch.zeros(n, device=dev), "count": torch.zeros(n, device=dev),
                "max_radii": torch.zeros(n, device=dev)}

    @torch.no_grad()
    def accumulate(self, state: dict[str, Tensor], means2d: Tensor, radii: Tensor, width: int, height: int) -> None:
        """Add this iteration's screen-space gradients (scaled to NDC like 3DGS) of the visible Gaussians.

        means2d: [B, N, 2] with .grad after backward; radii: [B, N] or [N].
        """
        if means2d.grad is None or means2d.numel() == 0:
            return
        grad = means2d.grad.reshape(-1, *means2d.shape[-2:])  # [B, N, 2]
        radii = radii.reshape(-1, radii.shape[-1]).float()  # [B, N]
        visible = (radii > 0).float()
        # The loss averages over the B views, which shrinks each view's gradient by 1/B: undo that
        # so thresholds mean the same at any batch size (gsplat's strategy does the same).
        B = grad.shape[0]
        # Masked arithmetic instead of boolean indexing: no host-device sync in the training step.
        ndc = torch.stack([grad[..., 0] * (B * width / 2.0), grad[..., 1] * (B * height / 2.0)], -1).norm(dim=-1)
        state["grad2d"] += (ndc * visible).sum(0)
        state["count"] += visible.sum(0)
        state["max_radii"] = torch.maximum(state["max_radii"], (radii * visible).max(0).values)

    def is_step(self, it: int) -> bool:
        return self.densify_from < it <= self.densify_until and it % self.interval == 0

    @torch.no_grad()
    def step(self, model: GaussianModel, optimizer: torch.optim.Optimizer, state: dict[str, Tensor], it: int,
             extent: float) -> dict[str, int]:
        """Densify and prune if `it` is on the schedule; returns counts of what changed."""
        if not self.is_step(it):
            return {}
        grads = state["grad2d"] / state["count"].clamp_min(1)
        big_grad = grads >= self.grad_threshold
        if self.max_points > 0:
            big_grad = _largest(grads, big_grad, self.max_points - model.num_points)
        max_scale = model.scales.max(dim=-1).values
        small = max_scale <= self.percent_dense * extent
        clone_mask = big_grad & small
        split_mask = big_grad & ~small
        n_clone, n_split = int(clone_mask.sum()), int(split_mask.sum())

        duplicate(model, optimizer, state, clone_mask)
        split_mask = torch.cat([split_mask, torch.zeros(n_clone, dtype=torch.bool, device=split_mask.device)])
        split(model, optimizer, state, split_mask, self.split_count)

        min_opacity = self.min_opacity + self.opacity_ramp * it / max(self.densify_until, 1)
        prune_mask = model.opacities < min_opacity
        if it > self.prune_big_after:
            prune_mask |= state["max_radii"] > self.max_screen_size
            prune_mask |= model.scales.max(dim=-1).values > self.max_world_scale * extent
        if bool(prune_mask.all()):  # never prune a field away entirely; keep the most opaque half
            prune_mask = model.opacities < model.opacities.median()
        n_prune = int(prune_mask.sum())
        remove(model, optimizer, state, prune_mask)
        for v in state.values():
            v.zero_()
        return {"clone": n_clone, "split": n_split, "prune": n_prune}


def _largest(values: Tensor, mask: Tensor, budget: int) -> Tensor:
    """`mask` reduced to its `budget` entries with the largest `values` (clone and split add one each)."""
    if budget <= 0:
        return torch.zeros_like(mask)
    if int(mask.sum()) <= budget:
        return mask
    keep = torch.zeros_like(mask)
    keep[torch.topk(torch.where(mask, values, torch.full_like(values, -1.0)), budget).indices] = True
    return keep


# ---- tensor surgery that keeps optimiser state in sync -------------------------------------------
def _update_params(model: GaussianModel, optimizer: torch.optim.Optimizer,
                   param_fn: Callable[[str, Tensor], Tensor], state_fn: Callable[[str, Tensor], Tensor]) -> None:
    """Replace every parameter by param_fn(key, old) and every optimiser moment by state_fn(key, old)."""
    new_params = {k: param_fn(k, model.params[k].detach()) for k in PARAM_KEYS}
    old = {k: model.params[k] for k in PARAM_KEYS}
    model.set_params(new_params)
    for group in optimizer.param_groups:
        key = group.get("name")
        if key not in old:
            continue
        p_old, p_new = old[key], model.params[key]
        group["params"] = [p_new]
        st = optimizer.state.pop(p_old, None)
        if st:
            for name, value in st.items():
                if isinstance(value, Tensor) and value.dim() > 0 and value.shape[0] == p_old.shape[0]:
                    st[name] = state_fn(key, value)
            optimizer.state[p_new] = st


def remove(model: GaussianModel, optimizer: torch.optim.Optimizer, state: dict[str, Tensor], mask: Tensor) -> None:
    """Drop the Gaussians where mask [N] is True."""
    if not mask.any():
        return
    keep = ~mask
    _update_params(model, optimizer, lambda k, x: x[keep], lambda k, x: x[keep])
    for name in state:
        state[name] = state[name][keep]


def append(model: GaussianModel, optimizer: torch.optim.Optimizer, state: dict[str, Tensor],
           new_values: dict[str, Tensor]) -> None:
    """Add Gaussians with raw parameters `new_values` (zero optimiser moments and densify stats)."""
    n_new = new_values["means"].shape[0]
    if n_new == 0:
        return
    _update_params(model, optimizer, lambda k, x: torch.cat([x, new_values[k].to(x)]),
                   lambda k, x: torch.cat([x, torch.zeros(n_new, *x.shape[1:], dtype=x.dtype, device=x.device)]))
    for name in state:
        state[name] = torch.cat([state[name], torch.zeros(n_new, device=state[name].device)])


def duplicate(model: GaussianModel, optimizer: torch.optim.Optimizer, state: dict[str, Tensor], mask: Tensor) -> None:
    """Clone: an identical copy of each selected Gaussian (the gradient then pulls the two apart)."""
    append(model, optimizer, state, {k: model.params[k].detach()[mask] for k in PARAM_KEYS})


def quat_to_rotmat(quats: Tensor) -> Tensor:
    """[..., 4] wxyz (any norm) -> [..., 3, 3]."""
    w, x, y, z = torch.nn.functional.normalize(quats, dim=-1).unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(*quats.shape[:-1], 3, 3)


def split(model: GaussianModel, optimizer: torch.optim.Optimizer, state: dict[str, Tensor], mask: Tensor,
          n: int = 2) -> None:
    """Replace each selected Gaussian by `n` samples of it, scales shrunk by 1/(0.8 n) (3DGS's rule)."""
    if not mask.any():
        return
    p = {k: model.params[k].detach()[mask] for k in PARAM_KEYS}
    scales = torch.exp(p["log_scales"]).repeat(n, 1)
    samples = torch.randn_like(scales) * scales
    rot = quat_to_rotmat(p["quats"]).repeat(n, 1, 1)
    new = {k: v.repeat(n, *([1] * (v.dim() - 1))) for k, v in p.items()}
    new["means"] = (rot @ samples[..., None])[..., 0] + new["means"]
    new["log_scales"] = torch.log(scales / (0.8 * n))
    append(model, optimizer, state, new)
    n_new = n * int(mask.sum())
    remove(model, optimizer, state, torch.cat([mask, torch.zeros(n_new, dtype=torch.bool, device=mask.device)]))

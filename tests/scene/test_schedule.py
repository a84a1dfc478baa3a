"""Stage schedules and learning rates (scene/training/schedule.py, scene/training/stages.py): upstream's numbers exactly.

Mutations tried (each made a test here fail, then was restored):

| mutation                                                       | tests that failed                          |
|----------------------------------------------------------------|--------------------------------------------|
| mouth_schedule: select_iter = bg_iter - 10000 -> - 9000        | test_upstream_schedules, test_short_schedules_keep_the_shape, test_update_lr_sets_every_group |
| face_schedule: lpips_start 47000 -> 46000                      | test_upstream_schedules, test_short_schedules_keep_the_shape |
| face_schedule: hair_mask_until 46000 -> 47000                  | test_upstream_schedules, test_short_schedules_keep_the_shape (and test_hair_dont_care_steps) |
| hair_mask_interval 7 -> 8                                      | test_upstream_schedules (and test_stage_logic) |
| _scaled: round -> int (floor)                                  | test_short_schedules_keep_the_shape        |
| motion_lr_factor: it < select -> it <= select                  | test_motion_lr_factor                      |
| motion_lr_factor: 0.1 ** (it / bg) -> 0.1 ** (it / select)     | test_motion_lr_factor                      |
| position_lr: decay over 45000 steps, not scaled to the stage   | test_position_lr, test_update_lr_sets_every_group |
"""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from arguments import OptimizationParams
from scene.models.gaussian_model import GaussianModel
from scene.models.motion_net import MouthMotionNet
from scene.training.schedule import face_schedule, fuse_schedule, mouth_schedule
from scene.training.stages import GaussianBranch, motion_lr_factor, position_lr

FIELDS = ("iterations", "warm_step", "select_iter", "bg_iter", "lpips_start", "densify_from", "densify_until",
          "densify_interval", "sh_up_interval", "checkpoint_every", "hair_mask_until", "select_interval")


def values(sched) -> tuple:
    return tuple(getattr(sched, f) for f in FIELDS)


def test_upstream_schedules():
    """upstream-facts section 5 at the default lengths."""
    assert values(mouth_schedule()) == (50000, 3000, 39000, 49000, 49000, 500, 45000, 100, 1000, 10000, 0, 7)
    assert mouth_schedule(densify_until=30000).densify_until == 30000
    assert values(face_schedule()) == (50000, 3000, 40000, 50000, 47000, 500, 49000, 100, 1000, 10000, 46000, 15)
    assert face_schedule().hair_mask_interval == 7
    assert values(fuse_schedule()) == (10000, 0, 0, 10000, 5000, 0, 0, 100, 1000, 5000, 0, 7)


def test_short_schedules_keep_the_shape():
    """Constants scale with the stage length (x 2000/50000 = / 25), with floors for the intervals."""
    assert values(mouth_schedule(2000)) == (2000, 120, 1560, 1960, 1960, 100, 1800, 20, 40, 400, 0, 7)
    assert values(face_schedule(2000)) == (2000, 120, 1600, 2000, 1880, 100, 1960, 20, 40, 400, 1840, 15)
    assert values(face_schedule(90)) == (90, 5, 72, 90, 85, 22, 88, 20, 10, 50, 83, 15)
    assert values(fuse_schedule(600)) == (600, 0, 0, 600, 300, 0, 0, 20, 60, 300, 0, 7)


def test_motion_lr_factor():
    """0.5^(it/select_iter) while sampling, then 0.1^(it/bg_iter)."""
    sched = dataclasses.replace(mouth_schedule(), select_iter=100, bg_iter=200)
    assert motion_lr_factor(0, sched) == 1.0
    assert motion_lr_factor(50, sched) == pytest.approx(0.5 ** 0.5, rel=1e-12)
    assert motion_lr_factor(99, sched) == pytest.approx(0.5 ** 0.99, rel=1e-12)
    assert motion_lr_factor(100, sched) == pytest.approx(0.1 ** 0.5, rel=1e-12)  # the switch: a jump down
    assert motion_lr_factor(200, sched) == pytest.approx(0.1, rel=1e-12)


def test_position_lr():
    """1.6e-4 x extent -> 1.6e-6 x extent, log-linear over 45000 of 50000 steps (scaled to the stage)."""
    o = OptimizationParams()
    assert position_lr(0, o, 2.0, 50000) == pytest.approx(3.2e-4, rel=1e-12)
    assert position_lr(45000, o, 2.0, 50000) == pytest.approx(3.2e-6, rel=1e-12)
    assert position_lr(49000, o, 2.0, 50000) == pytest.approx(3.2e-6, rel=1e-12)  # held at the end
    assert position_lr(900, o, 1.0, 2000) == pytest.approx(1.6e-5, rel=1e-9)  # halfway of 1800 steps
    assert position_lr(1800, o, 1.0, 2000) == pytest.approx(1.6e-6, rel=1e-12)


def test_update_lr_sets_every_group():
    sched = mouth_schedule(2000)
    torch.manual_seed(0)
    branch = GaussianBranch(GaussianModel.random_init(10, 1, seed=0), MouthMotionNet(audio_in_dim=4),
                            OptimizationParams(), sched, extent=0.5, grad_threshold=2e-4)
    branch.update_lr(900)
    lrs = {g["name"]: g["lr"] for g in branch.optimizer.param_groups}
    assert lrs["means"] == pytest.approx(1.6e-5 * 0.5, rel=1e-9)
    factor = 0.5 ** (900 / 1560)
    for g in branch.net_optimizer.param_groups:
        assert g["lr"] == pytest.approx(g["initial_lr"] * factor, rel=1e-12), g["name"]
    assert math.isclose(branch.net_optimizer.param_groups[0]["initial_lr"], 5e-3 * OptimizationParams().motion_lr_scale)

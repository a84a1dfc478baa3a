"""Iteration schedules of the three stages, scaled from upstream's 50k / 50k / 10k iterations.

Every constant of a stage is a fraction of its default length, so `--iterations 2000` keeps the
shape of the curriculum (warm-up, sampling windows, densification, LPIPS tail) in 2000 steps.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    iterations: int
    warm_step: int  # static (motion-free) render before this
    select_iter: int  # end of incremental sampling (mouth_select_iter)
    bg_iter: int  # mouth: switch to black bg, freeze motion + geometry; face: = iterations
    lpips_start: int
    densify_from: int
    densify_until: int
    densify_interval: int
    sh_up_interval: int
    checkpoint_every: int
    hair_mask_until: int = 0  # face: hair-as-don't-care iterations end here
    select_interval: int = 7
    hair_mask_interval: int = 7  # face: every this many steps the hair is supervised after all


def hair_is_dont_care(it: int, sched: Schedule) -> bool:
    """Face step `it` treats the hair as don't care: after the warm-up, before hair_mask_until, and
    not on every hair_mask_interval-th step (those keep the face field from growing hair)."""
    return sched.warm_step < it < sched.hair_mask_until and it % sched.hair_mask_interval != 0


def _scaled(n: int, iterations: int, default: int, minimum: int = 1) -> int:
    return max(minimum, round(n * iterations / default))


def _densify_from(iterations: int, default: int) -> int:
    # Short schedules still need some iterations before the first prune: freshly initialised
    # Gaussians sit at opacity 0.1, right at the pruning threshold.
    return _scaled(500, iterations, default, min(100, iterations // 4))


def mouth_schedule(iterations: int = 50000, densify_until: int | None = None) -> Schedule:
    s = lambda n, m=1: _scaled(n, iterations, 50000, m)
    bg_iter = iterations - s(1000)
    return Schedule(iterations=iterations, warm_step=s(3000), select_iter=bg_iter - s(10000), bg_iter=bg_iter,
                    lpips_start=bg_iter, densify_from=_densify_from(iterations, 50000), densify_until=densify_until or s(45000),
                    densify_interval=s(100, 20), sh_up_interval=s(1000, 10), checkpoint_every=s(10000, 50),
                    select_interval=7)


def face_schedule(iterations: int = 50000) -> Schedule:
    s = lambda n, m=1: _scaled(n, iterations, 50000, m)
    return Schedule(iterations=iterations, warm_step=s(3000), select_iter=s(40000), bg_iter=iterations,
                    lpips_start=s(47000), densify_from=_densify_from(iterations, 50000), densify_until=iterations - s(1000),
                    densify_interval=s(100, 20), sh_up_interval=s(1000, 10), checkpoint_every=s(10000, 50),
                    hair_mask_until=s(46000), select_interval=15)


def fuse_schedule(iterations: int = 10000) -> Schedule:
    s = lambda n, m=1: _scaled(n, iterations, 10000, m)
    return Schedule(iterations=iterations, warm_step=0, select_iter=0, bg_iter=iterations, lpips_start=s(5000),
                    densify_from=0, densify_until=0, densify_interval=s(100, 20), sh_up_interval=s(1000, 10),
                    checkpoint_every=s(5000, 50))

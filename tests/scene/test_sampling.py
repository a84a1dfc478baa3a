"""The incremental-sampling curricula (scene/training/sampling.py): exact frame masks on six hand-made frames.

Mutations tried (each made a test here fail, then was restored):

| mutation (scene/training/sampling.py)                                  | tests that failed                            |
|---------------------------------------------------------------|----------------------------------------------|
| mouth rule: it < warm_step -> it <= warm_step                 | test_mouth_rule_steps                        |
| mouth rule: it % select_interval == 0 -> == 1                 | test_mouth_rule_steps                        |
| mouth rule: lower bound reaches p25 -> p50                    | test_mouth_rule_steps                        |
| mouth rule: mouth_pixels >= 20 -> > 20                        | test_mouth_rule_steps                        |
| face rule: warm_step < it -> warm_step <= it                  | test_face_rule_steps                         |
| face rule: blink at it % 15 == 7 -> == 8                      | test_face_rule_steps                         |
| face rule: lb0 = lb + 0.2 (ub - lb) -> 0.25                   | test_face_mouth_window_bounds                |
| face rule: blink window [p - 0.15, ..] -> [p - 0.3, ..]       | test_face_rule_steps                         |
| sampler: search the stack from the front, not the top         | test_sampler_takes_the_topmost_allowed_frame |
| sampler: a rule that allows nothing is not ignored            | test_sampler_takes_the_topmost_allowed_frame |
"""
from __future__ import annotations

import numpy as np

from scene.data.frame_features import FrameStats
from scene.training.sampling import FrameSampler, face_stage_rule, mouth_stage_rule

STATS = FrameStats(
    au25=np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.0]),  # p25 0.625, max 2
    blink=np.array([0.0, 0.1, 0.3, 0.5, 0.6, 1.0]),
    mouth_open=np.array([0.0, 2.0, 4.0, 6.0, 8.0, 10.0]),  # lb 0, ub 10
    mouth_pixels=np.array([20, 30, 30, 30, 30, 19]),  # the last mouth is too small to learn from
)


def frames(rule) -> list[int] | None:
    return None if rule is None else np.flatnonzero(rule).tolist()


def test_percentiles():
    assert STATS.au25_percentiles == (0.625, 1.25, 1.875, 2.0)
    assert STATS.mouth_bounds == (0.0, 10.0)


def test_mouth_rule_steps():
    """warm_step 10, select_iter 100, every 7th step: au25 in [2 - it/100 (2 - 0.625), 2]."""
    rule = lambda it: frames(mouth_stage_rule(STATS, it, warm_step=10, select_iter=100, select_interval=7))
    assert rule(0) == rule(9) == [4]  # warm-up: only wide-open mouths (au25 at its max)
    assert rule(10) == rule(71) == [0, 1, 2, 3, 4]  # otherwise: any mouth with 20 pixels or more
    assert rule(14) == [4]  # lb 1.8075
    assert rule(70) == [3, 4]  # lb 1.0375
    assert rule(98) == [2, 3, 4]  # lb 0.6525: not yet down to p25
    assert rule(105) == [0, 1, 2, 3, 4]  # past select_iter


def test_face_rule_steps():
    """warm 10, select 100: mouth window every 30 steps, blink window at it % 15 == 7, else any frame."""
    rule = lambda it: frames(face_stage_rule(STATS, it, warm_step=10, select_iter=100, select_interval=15))
    assert rule(10) is None and rule(100) is None and rule(0) is None  # outside (warm_step, select_iter)
    assert face_stage_rule(STATS, 22, warm_step=22, select_iter=100) is None  # a blink step, but not after warm-up
    assert rule(45) is None and rule(31) is None  # neither window's step
    # mouth opening: lb0 = 2, half width 1.6, centre 2 + it/100 * 8
    assert rule(60) == [3, 4]  # [5.2, 8.4]
    assert rule(90) == [4, 5]  # [7.6, 10.8]
    # blink: [it/100 - 0.15, it/100 + 0.3]
    assert rule(22) == [1, 2, 3]  # [0.07, 0.52]
    assert rule(37) == [2, 3, 4]  # [0.22, 0.67]
    assert rule(82) == [5]  # [0.67, 1.12]


def test_face_mouth_window_bounds():
    """On openings 0, 0.25, .., 10 the window is [lb0 + p (ub - lb0) -+ 0.2 (ub - lb0)], lb0 = 0.2 ub."""
    fine = np.arange(41) * 0.25
    stats = FrameStats(au25=np.zeros(41), blink=np.zeros(41), mouth_open=fine, mouth_pixels=np.full(41, 99))
    window = lambda it: (lambda f: (f.min(), f.max()))(fine[face_stage_rule(stats, it, 10, 100)])
    assert window(60) == (5.25, 8.25)  # [5.2, 8.4]
    assert window(90) == (7.75, 10.0)  # [7.6, 10.8]


def test_sampler_takes_the_topmost_allowed_frame():
    s = FrameSampler(5, seed=0)
    s.stack = [0, 1, 2, 3, 4]  # the top is the end
    assert s.draw() == 4
    assert s.draw(np.array([True, True, False, False, False])) == 1  # rejected 3, 2 stay in place
    assert s.stack == [0, 2, 3]
    assert s.draw(np.zeros(5, bool)) == 3  # no frame allowed at all: the rule is ignored
    s.stack = [2]
    allowed = np.array([False, True, False, False, True])
    assert s.draw(allowed) in (1, 4) and s.stack == [2]  # none left qualifies: any allowed frame
    s.stack = []
    assert s.draw() in range(5) and len(s.stack) == 4  # refilled


def test_sampler_resumes_the_same_sequence():
    a = FrameSampler(7, seed=3)
    first = [a.draw() for _ in range(4)]
    b = FrameSampler(7, seed=99)
    b.load_state_dict(a.state_dict())
    assert [a.draw() for _ in range(10)] == [b.draw() for _ in range(10)]
    assert len(set(first)) == 4  # without replacement within a pass

"""Which frame to train on next: upstream's incremental-sampling curricula as pure functions.

Each stage draws frames from a shuffled stack (without replacement, refilled when empty) and, on
some iterations, rejects frames whose mouth opening or blink lies outside a window that widens as
training goes on. Here a rule is a boolean mask over frames built from per-frame scalars, so a draw
is one vector operation instead of a loop over files.
"""
from __future__ import annotations

import numpy as np

from scene.data.frame_features import FrameStats


class FrameSampler:
    """Draws frame indices from a shuffled stack; `draw(allowed)` prefers frames where allowed is True."""

    def __init__(self, num_frames: int, seed: int = 0):
        self.num_frames = num_frames
        self.rng = np.random.default_rng(seed)
        self.stack: list[int] = []

    def _refill(self) -> None:
        self.stack = list(self.rng.permutation(self.num_frames))

    def draw(self, allowed: np.ndarray | None = None) -> int:
        """Next frame from the stack that `allowed` accepts (upstream's rejection loop).

        Rejected frames are put back. If no frame at all is allowed, the rule is ignored (a
        curriculum must never stall training).
        """
        if not self.stack:
            self._refill()
        if allowed is None or not allowed.any():
            return int(self.stack.pop())
        for pos in range(len(self.stack) - 1, -1, -1):
            if allowed[self.stack[pos]]:
                return int(self.stack.pop(pos))
        # none of the remaining stack qualifies: pick any allowed frame
        return int(self.rng.choice(np.flatnonzero(allowed)))

    def state_dict(self) -> dict:
        """Plain Python data (ints, strings, dicts), so a checkpoint loads with weights_only=True."""
        return {"stack": [int(i) for i in self.stack], "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.stack = [int(i) for i in state["stack"]]
        self.rng.bit_generator.state = state["rng"]


def mouth_stage_rule(stats: FrameStats, it: int, warm_step: int, select_iter: int, select_interval: int) -> np.ndarray | None:
    """Mouth branch: first only wide-open mouths, then a window on au25 that widens towards closed mouths."""
    enough_mouth = stats.mouth_pixels >= 20
    p25, _, _, ub = stats.au25_percentiles
    if it < warm_step:
        return enough_mouth & (stats.au25 >= ub)
    if it < select_iter and it % select_interval == 0:
        lb = ub - it / select_iter * (ub - p25)
        return enough_mouth & (stats.au25 >= lb) & (stats.au25 <= ub)
    return enough_mouth


def face_stage_rule(stats: FrameStats, it: int, warm_step: int, select_iter: int, select_interval: int = 15,
                    mouth_interval: int = 30) -> np.ndarray | None:
    """Face branch (DEGSTalk): a mouth-opening window and a blink window that move from small to large."""
    if not (warm_step < it < select_iter):
        return None
    progress = it / select_iter
    if it % mouth_interval == 0:
        lb, ub = stats.mouth_bounds
        lb0 = lb + 0.2 * (ub - lb)
        half = 0.2 * (ub - lb0)
        centre = lb0 + progress * (ub - lb0)
        return (stats.mouth_open >= centre - half) & (stats.mouth_open <= centre + half)
    if it % select_interval == 7:
        return (stats.blink >= progress - 0.15) & (stats.blink <= progress + 0.3)
    return None

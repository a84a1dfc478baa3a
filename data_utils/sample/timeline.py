"""Per-frame animation of the sample subject: mouth from the speech, blinks and head motion from a seed.

    tracks = make_tracks(speech, fps=25, seed=0)            # dict of [T] float32 arrays
    poses = poses_from_tracks(tracks)                      # [FacePose] * T

Mouth opening = 0.65 x the viseme target of the phoneme being spoken (eSpeak's own timings,
co-articulated) + 0.35 x the frame's loudness, gated to closed in silence; rounding from the
visemes. Blinks every 2-4 s (7-frame close/open profile). Head motion: slow sums of sinusoids with
seeded phases plus a small nod with loud syllables. Everything is deterministic for a given seed.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from data_utils.audio.loudness import loudness_track
from data_utils.sample.rig import FacePose
from data_utils.sample.speech import Speech, viseme_tracks

BLINK_PROFILE = np.float32([0.35, 0.8, 1.0, 0.85, 0.55, 0.25, 0.08])
BLINK_GAP_S = (2.0, 4.0)
# (amplitude, period s) per head channel; phases come from the seed
HEAD_MOTION = {
    "roll_deg": [(1.8, 4.1), (0.7, 1.7)],
    "shift_x": [(4.0, 5.3), (1.0, 2.3)],
    "shift_y": [(2.0, 3.7)],
    "turn_x": [(5.0, 6.1), (1.5, 2.9)],
    "turn_y": [(2.5, 4.7)],
    "scale": [(0.012, 7.3)],
}
NOD_PX = 2.5  # extra downward shift and pitch at full (smoothed) loudness


def frame_count(speech: Speech, fps: float = 25.0) -> int:
    return int(np.ceil(speech.seconds * fps))


def make_tracks(speech: Speech, fps: float = 25.0, seed: int = 0) -> dict[str, np.ndarray]:
    """Every animated quantity per frame, [T] float32 each (T = frames covering the speech)."""
    n = frame_count(speech, fps)
    t = np.arange(n, dtype=np.float64) / fps
    rng = np.random.default_rng(seed)
    vis_open, vis_round = viseme_tracks(speech.phonemes, n, fps)
    loud = loudness_track(speech.samples, speech.sample_rate, n, fps)
    gate = np.clip(loud / 0.35, 0.0, 1.0)
    gate = gate * gate * (3 - 2 * gate)
    opening = np.clip(0.65 * vis_open + 0.35 * loud, 0.0, 1.0) * gate
    rounding = np.clip(vis_round, 0.0, 1.0) * gate

    blink = np.zeros(n, np.float32)
    start = 0.8 + rng.uniform(0, 1.0)
    while True:
        i = int(start * fps)
        if i >= n:
            break
        k = min(len(BLINK_PROFILE), n - i)
        blink[i:i + k] = np.maximum(blink[i:i + k], BLINK_PROFILE[:k])
        start += rng.uniform(*BLINK_GAP_S)

    tracks = {"opening": opening.astype(np.float32), "rounding": rounding.astype(np.float32),
              "loudness": loud, "blink": blink}
    for name, terms in HEAD_MOTION.items():
        value = np.zeros(n)
        for amplitude, period in terms:
            value += amplitude * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
        tracks[name] = value.astype(np.float32)
    nod = gaussian_filter1d(loud.astype(np.float64), 3.0)
    tracks["shift_y"] += (NOD_PX * nod).astype(np.float32)
    tracks["turn_y"] += (NOD_PX * nod).astype(np.float32)
    tracks["scale"] += 1.0
    return tracks


def poses_from_tracks(tracks: dict[str, np.ndarray]) -> list[FacePose]:
    """One FacePose per frame (both eyes blink together)."""
    return [FacePose(opening=float(tracks["opening"][i]), rounding=float(tracks["rounding"][i]),
                     blink_right=float(tracks["blink"][i]), blink_left=float(tracks["blink"][i]),
                     roll_deg=float(tracks["roll_deg"][i]),
                     shift=(float(tracks["shift_x"][i]), float(tracks["shift_y"][i])),
                     scale=float(tracks["scale"][i]),
                     turn=(float(tracks["turn_x"][i]), float(tracks["turn_y"][i])))
            for i in range(len(tracks["opening"]))]

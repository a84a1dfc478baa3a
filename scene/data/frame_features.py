"""Per-frame quantities the trainer needs, as pure functions on arrays (upstream-facts section 2).

Region masks are packed into one uint8 label map per frame, one bit per region, so a frame's masks
cost H*W bytes and decode with a few bit operations on any device (numpy or torch):

    bit 0  FACE_ONLY   parsing blue (0, 0, 255)
    bit 1  MOUTH_GRAY  parsing gray (100, 100, 100): mouth interior
    bit 2  NECK        parsing green (0, 255, 0)
    bit 3  CLOTH       parsing red (255, 0, 0)
    bit 4  HAIR        parsing black (0, 0, 0)
    bit 5  TEETH       teeth_mask
    bit 6  BACKGROUND  parsing white (255, 255, 255)

Masks the trainer uses (upstream names): face = blue XOR teeth, face_only = blue, mouth = gray OR
teeth, hair, neck, cloth, teeth, bg.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

FACE_ONLY, MOUTH_GRAY, NECK, CLOTH, HAIR, TEETH, BACKGROUND = (1 << k for k in range(7))
PARSING_COLORS = {  # bit -> RGB as stored in parsing/<i>.png
    FACE_ONLY: (0, 0, 255),
    MOUTH_GRAY: (100, 100, 100),
    NECK: (0, 255, 0),
    CLOTH: (255, 0, 0),
    HAIR: (0, 0, 0),
    BACKGROUND: (255, 255, 255),
}
MASK_NAMES = ("face_mask", "face_only_mask", "mouth_mask", "hair_mask", "neck_mask", "cloth_mask",
              "teeth_mask", "bg_mask")
LIPS = slice(48, 60)  # outer lip landmarks (iBUG 68)
INNER_LIPS = slice(60, 68)


# ----------------------------------------------------------------------------- masks
def parsing_bits(parsing: np.ndarray, teeth: np.ndarray | None = None, tol: int = 10) -> np.ndarray:
    """Pack a parsing image and a teeth mask into the label map.

    Args:
        parsing: [H, W, 3] uint8 RGB in the upstream colour code.
        teeth: [H, W] bool teeth mask, or None.
        tol: per-channel tolerance around each colour (0 = exact, as upstream; a little slack keeps a
            re-encoded PNG readable). Pixels of any other colour get no region bit.

    Returns:
        [H, W] uint8 label map (bits above).
    """
    assert parsing.ndim == 3 and parsing.shape[2] == 3, parsing.shape
    assert 0 <= tol < 50, tol  # levels 0, 100, 255 must stay apart
    lv = cv2.LUT(np.ascontiguousarray(parsing, dtype=np.uint8), _level_lut(tol))  # [H, W, 3] level per channel
    bits = cv2.LUT((lv[..., 0] << 4) | (lv[..., 1] << 2) | lv[..., 2], _colour_lut())  # [H, W]
    if teeth is not None:
        assert teeth.shape == parsing.shape[:2], (teeth.shape, parsing.shape)
        bits[teeth] |= TEETH
    return bits


_LEVELS = (0, 100, 255)  # the only channel values of the colour code


@functools.lru_cache(maxsize=8)
def _level_lut(tol: int) -> np.ndarray:
    """Channel value -> index of the level within `tol` (0, 1, 2), or 3 for none: uint8 [256]."""
    v = np.arange(256)
    lut = np.full(256, 3, np.uint8)
    for k, level in enumerate(_LEVELS):
        lut[np.abs(v - level) <= tol] = k
    return lut


@functools.lru_cache(maxsize=1)
def _colour_lut() -> np.ndarray:
    """(r, g, b) level indices packed as 16 r + 4 g + b -> region bit: uint8 [256] (entries >= 64 unused)."""
    lut = np.zeros(256, np.uint8)
    for bit, color in PARSING_COLORS.items():
        r, g, b = (_LEVELS.index(c) for c in color)
        lut[16 * r + 4 * g + b] = bit
    return lut


def masks_from_bits(bits: Any) -> dict[str, Any]:
    """Label map(s) [..., H, W] (numpy or torch uint8) -> bool masks of the same shape by upstream name."""
    def has(bit: int):
        return (bits & bit) != 0

    blue, gray, teeth = has(FACE_ONLY), has(MOUTH_GRAY), has(TEETH)
    return {
        "face_mask": blue ^ teeth,
        "face_only_mask": blue,
        "mouth_mask": gray | teeth,
        "hair_mask": has(HAIR),
        "neck_mask": has(NECK),
        "cloth_mask": has(CLOTH),
        "teeth_mask": teeth,
        "bg_mask": has(BACKGROUND),
    }


@functools.lru_cache(maxsize=1)
def mask_table() -> np.ndarray:
    """Label value -> all masks at once: float32 [256, len(MASK_NAMES)] (one gather decodes a batch)."""
    masks = masks_from_bits(np.arange(256, dtype=np.uint8))
    return np.stack([masks[name] for name in MASK_NAMES], axis=1).astype(np.float32)


def resize_bits(bits: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label map (bits never mix)."""
    if (bits.shape[1], bits.shape[0]) == tuple(size_wh):
        return bits
    return cv2.resize(bits, size_wh, interpolation=cv2.INTER_NEAREST)


def resize_rgb(img: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """Area resize of an RGB frame (no-op at native size)."""
    if (img.shape[1], img.shape[0]) == tuple(size_wh):
        return img
    return cv2.resize(img, size_wh, interpolation=cv2.INTER_AREA)


# ----------------------------------------------------------------------------- landmarks
def lips_rect(lms: np.ndarray, height: int, width: int) -> np.ndarray:
    """Square box around the outer lips, in (row, col) order as upstream: [rmin, rmax, cmin, cmax].

    Args:
        lms: [68, 2] landmarks (x, y) in the pixels of an image of (height, width).
    Returns:
        int64 [4]; the box side is the larger extent of landmarks 48-59, clamped to the image.
    """
    lips = lms[LIPS]
    rmin, rmax = int(lips[:, 1].min()), int(lips[:, 1].max())
    cmin, cmax = int(lips[:, 0].min()), int(lips[:, 0].max())
    rc, cc = (rmin + rmax) // 2, (cmin + cmax) // 2
    half = max(rmax - rmin, cmax - cmin) // 2
    return np.array([max(0, rc - half), min(height, rc + half), max(0, cc - half), min(width, cc + half)],
                    dtype=np.int64)


def mouth_opening(lms: np.ndarray) -> np.ndarray:
    """Vertical extent (pixels) of the inner-lip landmarks 60-67: [..., 68, 2] -> [...]."""
    inner_y = lms[..., INNER_LIPS, 1]
    return inner_y.max(-1) - inner_y.min(-1)


def mouth_bounds(openings: np.ndarray) -> np.ndarray:
    """Per-frame [lb, ub, cur] from the openings [N] of a split (lb/ub = the split's min/max) -> [N, 3]."""
    openings = np.asarray(openings, dtype=np.float32)
    lb, ub = float(openings.min()), float(openings.max())
    return np.stack([np.full_like(openings, lb), np.full_like(openings, ub), openings], axis=1)


# ----------------------------------------------------------------------------- action units, 3DMM
def au_features(au: dict[str, np.ndarray]) -> dict[str, Any]:
    """AU columns (read_au_csv) -> what the samplers and the T-style face branch use.

    Returns:
        au25 [N] clipped to its 95th percentile; au25_stats {p25, p50, p75, max} of the clipped
        values (max = the clipped 95th percentile); blink [N] = clip(AU45, 0, 2) / 2;
        au_exp [N, 6] = [AU01, AU04, AU05, AU06, AU07, clip(AU45, 0, 2)].
    """
    au25 = np.asarray(au["AU25_r"], dtype=np.float32)
    au25 = np.clip(au25, 0.0, np.percentile(au25, 95)).astype(np.float32)
    eye = np.clip(au["AU45_r"], 0.0, 2.0).astype(np.float32)
    stats = {"p25": float(np.percentile(au25, 25)), "p50": float(np.percentile(au25, 50)),
             "p75": float(np.percentile(au25, 75)), "max": float(au25.max())}
    au_exp = np.stack([au["AU01_r"], au["AU04_r"], au["AU05_r"], au["AU06_r"], au["AU07_r"], eye], axis=1)
    return {"au25": au25, "au25_stats": stats, "blink": eye / 2.0, "au_exp": au_exp.astype(np.float32)}


EXPRESSION_INPUTS = ("upper_face", "eyelids", "all")


def check_expression_input(keep: str) -> None:
    if keep not in EXPRESSION_INPUTS:
        raise ValueError(f"expression input must be one of {', '.join(EXPRESSION_INPUTS)}, got {keep!r}")


def exp_3dmm(smirk: dict[str, np.ndarray], source: str | None = None,
             keep: str = "upper_face") -> tuple[np.ndarray, np.ndarray]:
    """SMIRK codes -> (3dmm_exp [N, 52] = expression 50 + eyelid 2, 3dmm_jaw [N, 3]).

    `keep` says which expression channels the face net sees; the others are zeroed. Audio must drive
    the lips, and new audio replays the training video's expressions, whose mouth shapes would
    otherwise move the lips instead (the face net learns them first: they are an exact per-frame signal).
    - "upper_face": for codes made from MediaPipe blendshapes (`source` "blendshapes",
      data_utils/expression.py) the brow and eye shapes; for other sources (SMIRK/FLAME, landmark PCA)
      mouth and upper face mix in every coefficient, so none of the 50. The eyelids always stay.
    - "eyelids": the two eyelid values only.
    - "all": everything, the mouth included (upstream).
    """
    check_expression_input(keep)
    expression = smirk["expression_params"].astype(np.float32)
    if keep != "all":
        mask = np.zeros(expression.shape[1], bool)
        if keep == "upper_face" and source == "blendshapes":
            from data_utils.expression import EXPRESSION_SHAPES, UPPER_FACE_SHAPES

            mask[[EXPRESSION_SHAPES.index(k) for k in UPPER_FACE_SHAPES]] = True
        expression = expression * mask
    exp = np.concatenate([expression, smirk["eyelid_params"]], axis=1).astype(np.float32)
    return exp, smirk["jaw_params"].astype(np.float32)


# ----------------------------------------------------------------------------- mouth codes
# What the lips do in a frame, as the fields read it and the audio-to-mouth model predicts it
# (scene/models/audio_to_mouth.py). Code 0 is always the inner-lip opening; the rest come from the
# expression source. Left/right pairs are averaged: speech moves both sides together.
OPENING = "opening"
MOUTH_BLENDSHAPES = {  # code name -> MediaPipe blendshape names averaged into it
    "mouthClose": ("mouthClose",), "mouthFunnel": ("mouthFunnel",), "mouthPucker": ("mouthPucker",),
    "mouthRollLower": ("mouthRollLower",), "mouthRollUpper": ("mouthRollUpper",),
    "mouthShrugLower": ("mouthShrugLower",),
    "mouthLowerDown": ("mouthLowerDownLeft", "mouthLowerDownRight"),
    "mouthSmile": ("mouthSmileLeft", "mouthSmileRight"), "mouthStretch": ("mouthStretchLeft", "mouthStretchRight"),
    "mouthPress": ("mouthPressLeft", "mouthPressRight"),
}
INNER_LIP_MID = (62, 66)  # iBUG 68: upper and lower inner-lip midpoints
OUTER_EYE_CORNERS = (36, 45)


def lip_opening(lms: np.ndarray) -> np.ndarray:
    """Inner-lip gap over the outer eye-corner distance: [..., 68, 2] -> [...] (scale-free)."""
    gap = np.linalg.norm(lms[..., INNER_LIP_MID[0], :] - lms[..., INNER_LIP_MID[1], :], axis=-1)
    eyes = np.linalg.norm(lms[..., OUTER_EYE_CORNERS[0], :] - lms[..., OUTER_EYE_CORNERS[1], :], axis=-1)
    return gap / np.maximum(eyes, 1e-6)


def mouth_codes(lms: np.ndarray, smirk: dict[str, np.ndarray] | None, source: str | None,
                keep: tuple[str, ...] = ()) -> tuple[np.ndarray, list[str]]:
    """Per-frame mouth codes and their names.

    Args:
        lms: [N, 68, 2] landmarks (any pixel scale).
        smirk: 3dmm.pt arrays (read_3dmm) or None.
        source: what made 3dmm.pt (expression.json's "source").
        keep: only these codes, in this order (empty: every code the sources give).
    Returns:
        float32 [N, M] and M names: the opening; with 3dmm.pt also jawOpen (jaw_params[:, 0] / 0.5 rad);
        from MediaPipe blendshapes also the mouth shapes of MOUTH_BLENDSHAPES (SMIRK/PCA coefficients
        mix mouth and upper face, so they are left out).
    """
    cols, names = [lip_opening(lms)], [OPENING]
    if smirk is not None:
        from data_utils.expression import EXPRESSION_SHAPES, JAW_OPEN_RAD

        cols.append(smirk["jaw_params"][:, 0] / JAW_OPEN_RAD)
        names.append("jawOpen")
        if source == "blendshapes":
            exp = smirk["expression_params"]
            for name, shapes in MOUTH_BLENDSHAPES.items():
                cols.append(exp[:, [EXPRESSION_SHAPES.index(s) for s in shapes]].mean(1))
                names.append(name)
    if keep:  # codes a source cannot give (jawOpen without 3dmm.pt) are left out; none at all is an error
        unknown = [k for k in keep if k != OPENING and k != "jawOpen" and k not in MOUTH_BLENDSHAPES]
        if unknown or not any(k in names for k in keep):
            raise ValueError(f"mouth codes {keep} are not available here (available: {', '.join(names)})")
        keep = [k for k in keep if k in names]
        cols, names = [cols[names.index(k)] for k in keep], list(keep)
    return np.stack(cols, axis=1).astype(np.float32), names


@dataclass
class FrameStats:
    """Per-frame scalars of the training split (length F arrays)."""

    au25: np.ndarray  # lips-part action unit, clipped at its 95th percentile
    blink: np.ndarray  # clip(AU45, 0, 2) / 2, in [0, 1]
    mouth_open: np.ndarray  # vertical extent of the inner lips (landmarks 60-67), pixels
    mouth_pixels: np.ndarray  # pixels of the mouth mask

    @property
    def au25_percentiles(self) -> tuple[float, float, float, float]:
        """(p25, p50, p75, max) of the clipped au25 (upstream stores these with the data)."""
        a = self.au25
        return float(np.percentile(a, 25)), float(np.percentile(a, 50)), float(np.percentile(a, 75)), float(a.max())

    @property
    def mouth_bounds(self) -> tuple[float, float]:
        return float(self.mouth_open.min()), float(self.mouth_open.max())

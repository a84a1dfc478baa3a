"""A 2-D face rig on one photograph: jaw/lip opening, lip rounding, eye blinks, and head motion.

Built once from the portrait's 478 face-mesh landmarks as unit thin-plate-spline fields (one per
control, linear in its amount), then posed per frame:

    rig = build_rig(portrait)
    frame = pose_frame(rig, FacePose(opening=0.6, rounding=0.2, blink_right=0.0, blink_left=0.0,
                                     roll_deg=1.5, shift=(3.0, -1.0), scale=1.0, turn=(2.0, 0.0)))

The mouth tears open along the lip line: above it the image follows the upper-lip field, below it
the jaw field (lower lip and chin move down together, the lower lip keeping its thickness); the gap
between the inner lip contours is painted as a dark mouth interior with upper and lower teeth.
Head motion moves the head (weight 1) and leaves the shoulders (weight 0), with a bump centred on
the nose that fakes the parallax of a small turn; the person is composited over the clean plate.
All amounts are relative: opening 1 = `MAX_OPEN` mouth widths, blinks 1 = closed, turn in pixels
per 512 px of frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from data_utils.mesh_topology import CHIN, FACE_OVAL, FOREHEAD_TOP, N_MESH_POINTS, NOSE_TIP
from data_utils.sample.portrait import Portrait
from data_utils.sample.warp import backward_map, border_points, pixel_grid, remap, sample_field, tps_field

MAX_OPEN = 0.34          # lower-lip drop at opening 1, in mouth widths
UPPER_LIP_RISE = 0.18    # the upper lip rises this share of the lower lip's drop
CORNER_DROP = 0.35       # mouth corners drop this share
ROUND_SHRINK = 0.14      # mouth corners move in by this share of the mouth width at rounding 1

UPPER_INNER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]   # corner to corner, image left -> right
LOWER_INNER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]
UPPER_OUTER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
LOWER_OUTER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291]
CORNERS = [61, 291, 78, 308]
# per eye: upper lid and the lower-lid point under each, then the skin fold above the lid
EYES = {
    "right": ([246, 161, 160, 159, 158, 157, 173], [7, 163, 144, 145, 153, 154, 155],
              [247, 30, 29, 27, 28, 56, 190]),
    "left": ([466, 388, 387, 386, 385, 384, 398], [249, 390, 373, 374, 380, 381, 382],
             [467, 260, 259, 257, 258, 286, 414]),
}
MOUTH_INTERIOR = np.float32([58, 22, 28])     # RGB
TONGUE = np.float32([150, 62, 70])
TEETH = np.float32([212, 204, 188])


@dataclass
class FacePose:
    opening: float = 0.0       # 0 closed .. 1 wide open
    rounding: float = 0.0      # 0 spread .. 1 rounded (corners pulled in)
    blink_right: float = 0.0   # 0 open .. 1 closed (subject's right eye, image left)
    blink_left: float = 0.0
    roll_deg: float = 0.0      # in-plane head rotation
    shift: tuple[float, float] = (0.0, 0.0)   # head translation, pixels per 512 px of frame
    scale: float = 1.0         # head scale (toward / away from the camera)
    turn: tuple[float, float] = (0.0, 0.0)    # nose-centred parallax (yaw, pitch), pixels per 512 px


@dataclass
class FaceRig:
    portrait: Portrait
    grid: np.ndarray            # [H, W, 2] pixel coordinates
    upper: np.ndarray           # [H, W, 2] upper-face field per unit lower-lip drop (pixels)
    lower: np.ndarray           # [H, W, 2] jaw field per unit lower-lip drop
    rounding: np.ndarray        # [H, W, 2] field per unit corner shift
    blinks: dict                # eye -> [H, W, 2] field at blink 1
    upper_inner: np.ndarray     # [11, 2] inner upper lip, and its displacement per unit drop [11, 2]
    upper_inner_d: np.ndarray
    lower_inner: np.ndarray     # [11, 2] inner lower lip, and its displacement per unit drop
    lower_inner_d: np.ndarray
    inner_round_u: np.ndarray   # [11, 2] inner-lip displacements per unit corner shift (upper, lower)
    inner_round_l: np.ndarray
    mouth_width: float
    head_weight: np.ndarray     # [H, W] 1 on the head, 0 on the shoulders
    nose_bump: np.ndarray       # [H, W] parallax weight, 1 at the nose
    pivot: np.ndarray           # [2] head rotation centre (upper neck)


def _lip_line_below(points: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Signed vertical distance of xy [K, 2] below the closed lip line (midline of the inner lips)."""
    mid = (points[UPPER_INNER] + points[LOWER_INNER]) / 2
    order = np.argsort(mid[:, 0])
    line_y = np.interp(xy[:, 0], mid[order, 0], mid[order, 1])
    return xy[:, 1] - line_y


def lip_taper(points: np.ndarray, idx: list[int], centre_dy: float) -> np.ndarray:
    """Vertical move of lip points [K]: `centre_dy` mid-mouth, easing to the corners' CORNER_DROP."""
    cx = points[[61, 291], 0].mean()
    half = max(abs(points[291, 0] - points[61, 0]) / 2, 1.0)
    r = np.clip(np.abs(points[idx, 0] - cx) / half, 0.0, 1.0)
    return (CORNER_DROP + (centre_dy - CORNER_DROP) * (1.0 - r ** 2)).astype(np.float32)


def _mouth_controls(points: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Control points and unit displacements (1 px lower-lip drop) of the upper and jaw fields."""
    mesh = points[:N_MESH_POINTS]
    face_h = float(np.linalg.norm(points[CHIN] - points[FOREHEAD_TOP]))
    face_w = float(np.ptp(points[FACE_OVAL, 0]))
    cx = float(points[[61, 291], 0].mean())
    chin_y = float(points[CHIN, 1])
    below = _lip_line_below(points, mesh)
    lips = set(UPPER_INNER + LOWER_INNER + UPPER_OUTER + LOWER_OUTER)
    upper_lip = [i for i in set(UPPER_INNER + UPPER_OUTER) if i not in CORNERS]
    lower_lip = [i for i in set(LOWER_INNER + LOWER_OUTER) if i not in CORNERS]
    # jaw rule for the other mesh points: full drop at the chin and lower lip, none at the lip line
    # or near the ears; the upper face stays
    depth = np.clip(below / (0.12 * face_h), 0.0, 1.0)
    side = np.clip(1.0 - np.abs(mesh[:, 0] - cx) / (0.62 * face_w), 0.0, 1.0) ** 0.5
    toward_chin = np.clip(below / max(chin_y - (points[61, 1] + points[291, 1]) / 2, 1.0), 0.0, 1.0)
    jaw = np.where(below > 0, np.maximum(depth * side, toward_chin * 0.9) * 0.95, 0.0)
    others = [i for i in range(N_MESH_POINTS) if i not in lips]
    anchors = np.concatenate([border_points(size, size), [points[CHIN] + [0, 0.55 * face_h]],
                              [points[CHIN] + [-0.45 * face_w, 0.4 * face_h]],
                              [points[CHIN] + [0.45 * face_w, 0.4 * face_h]]]).astype(np.float32)
    zeros_a = np.zeros_like(anchors)

    def field_controls(moving: list[int], moving_dy: float) -> tuple[np.ndarray, np.ndarray]:
        idx = others + CORNERS + moving
        disp = np.zeros((len(idx), 2), np.float32)
        disp[:len(others), 1] = jaw[others]
        disp[len(others):len(others) + len(CORNERS), 1] = CORNER_DROP
        disp[len(others) + len(CORNERS):, 1] = lip_taper(points, moving, moving_dy)
        return np.concatenate([points[idx], anchors]), np.concatenate([disp, zeros_a])

    up_pts, up_d = field_controls(upper_lip, -UPPER_LIP_RISE)
    low_pts, low_d = field_controls(lower_lip, 1.0)
    return up_pts, up_d, low_pts, low_d


def _round_controls(points: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Mesh points pulled toward the mouth centre line (1 px at the corners), fading out over the cheeks."""
    mesh = points[:N_MESH_POINTS]
    centre = points[[61, 291]].mean(0)
    width = max(float(np.linalg.norm(points[291] - points[61])), 1.0)
    rel = np.clip((mesh[:, 0] - centre[0]) / (width / 2), -1.2, 1.2)
    falloff = np.exp(-(np.linalg.norm(mesh - centre, axis=1) / (0.9 * width)) ** 4)
    disp = np.zeros_like(mesh)
    disp[:, 0] = -rel * falloff
    pts = np.concatenate([mesh, border_points(size, size)])
    return pts, np.concatenate([disp, np.zeros((len(pts) - len(mesh), 2), np.float32)])


def _blink_controls(points: np.ndarray, size: int, eye: str) -> tuple[np.ndarray, np.ndarray]:
    upper, lower, fold = EYES[eye]
    gap = points[lower] - points[upper]                          # [7, 2]
    moving = upper + lower + fold
    disp = np.concatenate([0.9 * gap, -0.1 * gap, 0.5 * gap]).astype(np.float32)
    still = [i for i in range(N_MESH_POINTS) if i not in set(moving)]
    pts = np.concatenate([points[moving], points[still], border_points(size, size)])
    return pts, np.concatenate([disp, np.zeros((len(pts) - len(moving), 2), np.float32)])


def build_rig(portrait: Portrait) -> FaceRig:
    """Unit fields of every control, for one portrait (a few seconds at 512 px)."""
    points = portrait.points
    size = portrait.rgb.shape[0]
    shape = portrait.rgb.shape[:2]
    mouth_w = float(np.linalg.norm(points[291] - points[61]))
    up_pts, up_d, low_pts, low_d = _mouth_controls(points, size)
    upper, lower = tps_field(up_pts, up_d, shape), tps_field(low_pts, low_d, shape)
    r_pts, r_d = _round_controls(points, size)
    rounding = tps_field(r_pts, r_d, shape)
    blinks = {eye: tps_field(*_blink_controls(points, size, eye), shape) for eye in EYES}
    ui, li = points[UPPER_INNER], points[LOWER_INNER]
    # the inner contours are control points of their own side's field: they move exactly this much
    ui_d, li_d = np.zeros_like(ui), np.zeros_like(li)
    ui_d[:, 1], li_d[:, 1] = lip_taper(points, UPPER_INNER, -UPPER_LIP_RISE), lip_taper(points, LOWER_INNER, 1.0)
    ui_d[[0, -1], 1] = li_d[[0, -1], 1] = CORNER_DROP
    face_h = float(np.linalg.norm(points[CHIN] - points[FOREHEAD_TOP]))
    face_w = float(np.ptp(points[FACE_OVAL, 0]))
    grid = pixel_grid(*shape)
    cx = float(points[FACE_OVAL, 0].mean())
    chin = points[CHIN]
    # head weight: 1 above the chin, fading out over the neck; 1 within 0.75 face widths of the axis
    wy = np.clip((chin[1] + 0.3 * face_h - grid[..., 1]) / (0.35 * face_h), 0.0, 1.0)
    wx = np.clip((1.05 * face_w - np.abs(grid[..., 0] - cx)) / (0.35 * face_w), 0.0, 1.0)
    head_weight = _smoothstep(wy * wx)
    nose = points[NOSE_TIP]
    d2 = ((grid - nose) ** 2).sum(-1) / (0.38 * face_w) ** 2
    return FaceRig(portrait=portrait, grid=grid, upper=upper, lower=lower, rounding=rounding, blinks=blinks,
                   upper_inner=ui, upper_inner_d=ui_d, lower_inner=li, lower_inner_d=li_d,
                   inner_round_u=sample_field(rounding, ui), inner_round_l=sample_field(rounding, li),
                   mouth_width=mouth_w, head_weight=head_weight.astype(np.float32),
                   nose_bump=np.exp(-d2).astype(np.float32),
                   pivot=np.float32([chin[0], chin[1] + 0.15 * face_h]))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _face_fields(rig: FaceRig, pose: FacePose) -> tuple[np.ndarray, np.ndarray, float]:
    """Forward fields above and below the lip line for this pose, and the lower-lip drop in pixels."""
    drop = MAX_OPEN * rig.mouth_width * float(np.clip(pose.opening, 0.0, 1.0))
    shrink = ROUND_SHRINK * rig.mouth_width * float(np.clip(pose.rounding, 0.0, 1.0))
    common = shrink * rig.rounding
    for eye, amount in (("right", pose.blink_right), ("left", pose.blink_left)):
        if amount > 0:
            common = common + float(np.clip(amount, 0.0, 1.0)) * rig.blinks[eye]
    return common + drop * rig.upper, common + drop * rig.lower, drop


def _mouth_polygons(rig: FaceRig, pose: FacePose, drop: float) -> tuple[np.ndarray, np.ndarray]:
    shrink = ROUND_SHRINK * rig.mouth_width * float(np.clip(pose.rounding, 0.0, 1.0))
    upper = rig.upper_inner + drop * rig.upper_inner_d + shrink * rig.inner_round_u
    lower = rig.lower_inner + drop * rig.lower_inner_d + shrink * rig.inner_round_l
    return upper, lower


def _soft_polygon(shape: tuple[int, int], poly: np.ndarray, supersample: int = 4) -> np.ndarray:
    """[H, W] float32 anti-aliased coverage of a polygon (drawn at `supersample` x in its bounding box)."""
    h, w = shape
    mask = np.zeros((h, w), np.float32)
    x0, y0 = np.floor(poly.min(0)).astype(int) - 2
    x1, y1 = np.ceil(poly.max(0)).astype(int) + 3
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return mask
    s = supersample
    canvas = np.zeros(((y1 - y0) * s, (x1 - x0) * s), np.uint8)
    pts = np.round((poly - [x0, y0]) * s + (s - 1) / 2).astype(np.int32)
    cv2.fillPoly(canvas, [pts], 255, lineType=cv2.LINE_AA)
    mask[y0:y1, x0:x1] = cv2.resize(canvas, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA) / 255.0
    return mask


def _paint_mouth(image: np.ndarray, upper: np.ndarray, lower: np.ndarray, mouth_w: float) -> np.ndarray:
    """Dark interior, tongue and teeth between the inner lip contours [11, 2] (image left -> right)."""
    gap = lower[:, 1] - upper[:, 1]
    if gap.max() < 0.5:
        return image
    shape = image.shape[:2]
    mouth = _soft_polygon(shape, np.concatenate([upper, lower[::-1]]))
    out = image.astype(np.float32)
    colour = np.empty_like(out)
    colour[:] = MOUTH_INTERIOR
    # tongue low in the mouth, upper teeth under the upper lip, a thinner row of lower teeth
    tooth_up = np.minimum(0.075 * mouth_w, 0.36 * gap)
    tooth_low = np.minimum(0.045 * mouth_w, 0.2 * gap)
    inset = np.linspace(0, 1, len(upper))
    inset = np.clip(np.minimum(inset, 1 - inset) * 6, 0, 1)[:, None]   # teeth fade out at the corners
    down = np.float32([0, 1])
    upper_teeth = np.concatenate([upper, (upper + down * tooth_up[:, None] * inset)[::-1]])
    lower_teeth = np.concatenate([lower - down * tooth_low[:, None] * inset, lower[::-1]])
    tongue = np.concatenate([lower - down * 0.45 * gap[:, None] * inset, lower[::-1]])
    for poly, rgb in ((tongue, TONGUE), (lower_teeth, TEETH * 0.92), (upper_teeth, TEETH)):
        m = _soft_polygon(shape, poly)[..., None]
        colour = colour * (1 - m) + rgb * m
    m = mouth[..., None]
    return np.clip(out * (1 - m) + colour * m, 0, 255).astype(np.uint8)


def _lower_side(rig: FaceRig, upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """[H, W] weight of the jaw field at each output pixel: 1 below the opened lip line, 0 above."""
    x, y = rig.grid[..., 0], rig.grid[..., 1]
    mid = (upper + lower) / 2
    order = np.argsort(mid[:, 0])
    line = np.interp(x, mid[order, 0], mid[order, 1])
    left, right = mid[:, 0].min(), mid[:, 0].max()
    outside = np.maximum(left - x, x - right).clip(0)        # distance beyond the corners
    width = 0.5 + 0.6 * outside                              # sharp between the corners, soft beyond
    return (1.0 / (1.0 + np.exp(-(y - line) / width))).astype(np.float32)


def _head_field(rig: FaceRig, pose: FacePose) -> np.ndarray:
    """Forward field of the head motion [H, W, 2]: rigid about the neck, nose parallax, faded on the body."""
    size = rig.grid.shape[0]
    unit = size / 512.0
    a = np.deg2rad(pose.roll_deg)
    rot = pose.scale * np.float32([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    rel = rig.grid - rig.pivot
    rigid = rel @ rot.T - rel + np.float32(pose.shift) * unit
    parallax = rig.nose_bump[..., None] * np.float32(pose.turn) * unit
    return (rigid + parallax) * rig.head_weight[..., None]


def pose_frame(rig: FaceRig, pose: FacePose) -> np.ndarray:
    """One RGB uint8 frame [H, W, 3] of the portrait in `pose`."""
    portrait = rig.portrait
    f_up, f_low, drop = _face_fields(rig, pose)
    upper, lower = _mouth_polygons(rig, pose, drop)
    side = _lower_side(rig, upper, lower)[..., None]
    src = backward_map(f_up, grid=rig.grid) * (1 - side) + backward_map(f_low, grid=rig.grid) * side
    face = remap(portrait.rgb, src)
    face = _paint_mouth(face, upper, lower, rig.mouth_width)
    person = remap(portrait.person, src)
    head_src = backward_map(_head_field(rig, pose), grid=rig.grid)
    face, person = remap(face, head_src), remap(person, head_src)[..., None]
    out = face.astype(np.float32) * person + portrait.plate.astype(np.float32) * (1 - person)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def mouth_opening_px(rig: FaceRig, pose: FacePose) -> float:
    """Inner-lip gap at the mouth centre in pixels for this pose (the ground truth of the animation)."""
    drop = MAX_OPEN * rig.mouth_width * float(np.clip(pose.opening, 0.0, 1.0))
    upper, lower = _mouth_polygons(rig, pose, drop)
    mid = len(upper) // 2
    return float(lower[mid, 1] - upper[mid, 1])


"""Face parsing: per-frame region maps in the upstream colour code (``parsing/<i>.png``).

Colours (RGB as stored in the PNG): face blue (0,0,255), mouth interior gray (100,100,100),
neck green (0,255,0), cloth red (255,0,0), hair black (0,0,0; ears count as hair, as in DEGSTalk),
background white. The trainer derives its masks from these colours.

Default backend (offline, nothing downloaded): MediaPipe selfie segmentation (its model ships in the
wheel) gives the person; the 478-point face mesh gives the face oval and the inner lips; a skin colour
model estimated per frame from the cheeks, forehead and nose grows the face up to the hairline and
finds the neck skin under the jaw. Person pixels above the jaw line that are not face are hair (they
follow the segmentation's own outline); person pixels below it are neck (skin connected to the jaw)
or cloth. ``backend="bisenet"`` runs the paper's BiSeNet (data_utils/parsing_bisenet.py) instead.

Usage:
    python data_utils/parsing.py data/<ID> [--force] [--backend mediapipe|bisenet] [--weights PATH]
    python data_utils/parsing.py data/<ID> --sheet /tmp/sheet.png     # overlay contact sheet
"""
from __future__ import annotations

import argparse
import functools
import logging
import multiprocessing as mp
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_utils.mesh_topology import CHIN, EYE_CORNERS, FACE_OVAL, FOREHEAD_TOP, LIPS_INNER  # noqa: E402
from utils.io_utils import atomic_path  # noqa: E402

log = logging.getLogger(__name__)

# Region labels and their upstream colours (RGB), indexed by label.
BACKGROUND, FACE, MOUTH, NECK, CLOTH, HAIR = range(6)
REGION_NAMES = ("background", "face", "mouth", "neck", "cloth", "hair")
PALETTE = np.array([(255, 255, 255), (0, 0, 255), (100, 100, 100),
                    (0, 255, 0), (255, 0, 0), (0, 0, 0)], dtype=np.uint8)  # [6, 3]

SIDE_ENDS = (58, 288)  # oval points under the ear lobes: beside the face, the head zone ends there
SKIN_SAMPLES = [50, 280, 101, 330, 118, 347, 205, 425, 36, 266, 151, 9, 108, 337, 6, 197]  # cheeks, forehead, nose

# Tunables (fractions of the face height unless noted).
FOREHEAD_STRETCH = 2.0    # upper oval pushed away from the eye centre along the face's up axis
SKIN_THRESHOLD = 3.0      # Lab distance in robust standard deviations that still counts as skin
NECK_MAX_LENGTH = 0.8     # neck ends at most this far below the chin
PERSON_THRESHOLD = 0.5
NECK_RB_MIN = 0.35        # neck skin keeps at least this share of the face's (r - b) chromaticity
NECK_G_TOL = 0.035        # and its g chromaticity within this of the face's


# ----------------------------------------------------------------------------- colour code
_PALETTE_LUT = np.zeros((256, 1, 3), np.uint8)
_PALETTE_LUT[:len(PALETTE), 0] = PALETTE


def labels_to_parsing(labels: np.ndarray) -> np.ndarray:
    """Label map [H, W] (0..5) -> parsing image [H, W, 3] uint8 RGB in the upstream colours."""
    return cv2.LUT(cv2.merge([labels, labels, labels]), _PALETTE_LUT)


_CODE_TO_LABEL = np.full(64, 255, np.uint8)  # colour quantised to 2 bits a channel -> label
for _k, (_r, _g, _b) in enumerate(PALETTE >> 6):
    _CODE_TO_LABEL[(_r << 4) | (_g << 2) | _b] = _k


def parsing_to_labels(parsing: np.ndarray) -> np.ndarray:
    """Parsing image [H, W, 3] RGB -> label map [H, W] uint8. Palette colours and small deviations
    from them (lossy saving) map through 2-bit-per-channel bins; anything else goes to the nearest
    palette colour."""
    assert parsing.ndim == 3 and parsing.shape[2] == 3, parsing.shape
    q = parsing >> 6
    labels = _CODE_TO_LABEL[(q[..., 0] << 4) | (q[..., 1] << 2) | q[..., 2]]
    odd = labels == 255
    if odd.any():
        d = np.abs(parsing[odd][:, None, :].astype(np.int16) - PALETTE[None].astype(np.int16)).sum(-1)
        labels[odd] = d.argmin(-1)
    return labels


def region_masks(parsing: np.ndarray) -> dict[str, np.ndarray]:
    """Bool masks [H, W] by region name from a parsing image (RGB, upstream colour code)."""
    labels = parsing_to_labels(parsing)
    return {name: labels == k for k, name in enumerate(REGION_NAMES)}


def overlay_parsing(rgb: np.ndarray, parsing: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend a parsing image over a frame for viewing; region borders drawn in yellow."""
    labels = parsing_to_labels(parsing)
    shown = PALETTE[labels].astype(np.float32)
    shown[labels == HAIR] = (255, 0, 255)  # black hair is invisible on dark hair: show it magenta
    out = (1 - alpha) * rgb.astype(np.float32) + alpha * shown
    edges = cv2.morphologyEx(labels, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    out[edges] = (255, 255, 0)
    return out.astype(np.uint8)


# ----------------------------------------------------------------------------- person segmentation
@functools.lru_cache(maxsize=1)
def _selfie_segmenter():
    import mediapipe as mp

    return mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)


def segment_person(rgb: np.ndarray) -> np.ndarray:
    """MediaPipe selfie segmentation: person probability [H, W] float32 in [0, 1]."""
    return _selfie_segmenter().process(np.ascontiguousarray(rgb)).segmentation_mask


# ----------------------------------------------------------------------------- geometry helpers
def _fill(shape: tuple[int, int], pts: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    return mask.astype(bool)


def face_axes(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Eye centre [2], up and right unit vectors [2] of the face in image coords, face height (px)."""
    centre = xy[EYE_CORNERS].mean(0)
    up = xy[FOREHEAD_TOP] - xy[CHIN]
    height = float(np.linalg.norm(up)) + 1e-6
    up = up / height
    right = np.array([-up[1], up[0]])
    return centre, up, right, height


def forehead_polygon(xy: np.ndarray, stretch: float = FOREHEAD_STRETCH) -> np.ndarray:
    """Face oval with its part above the eyes stretched upward: where forehead skin may continue. [36, 2]"""
    centre, up, right, _ = face_axes(xy)
    oval = xy[FACE_OVAL].astype(np.float64)
    rel = oval - centre
    u, r = rel @ up, rel @ right
    top = max(float(u.max()), 1e-6)
    r = np.where(u > 0, r * (1.0 + 0.15 * u / top), r)  # temples widen toward the top, ears stay out
    u = np.where(u > 0, u * stretch, u)
    return centre + u[:, None] * up + r[:, None] * right


# ----------------------------------------------------------------------------- skin model
def _skin_patches(img: np.ndarray, xy: np.ndarray, height: float) -> np.ndarray:
    """Pixels [P, C] of small squares around the SKIN_SAMPLES landmarks (cheeks, forehead, nose)."""
    H, W = img.shape[:2]
    r = max(2, int(round(height / 40)))
    patches = [np.zeros((0, img.shape[2]), img.dtype)]
    for x, y in np.round(xy[SKIN_SAMPLES]).astype(int):
        y0, y1, x0, x1 = max(y - r, 0), min(y + r + 1, H), max(x - r, 0), min(x + r + 1, W)
        if y1 > y0 and x1 > x0:
            patches.append(img[y0:y1, x0:x1].reshape(-1, img.shape[2]))
    return np.concatenate(patches)


def skin_model(lab: np.ndarray, xy: np.ndarray, height: float) -> tuple[np.ndarray, np.ndarray]:
    """Robust Lab mean [3] and spread [3] of the face skin (median / scaled MAD of the skin patches)."""
    px = _skin_patches(lab, xy, height).astype(np.float32)
    mean = np.median(px, 0)
    spread = 1.4826 * np.median(np.abs(px - mean), 0)
    return mean, np.maximum(spread, (10.0, 3.0, 3.0)).astype(np.float32)


def skin_distance2(lab: np.ndarray, mean: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """Per-pixel squared normalised Lab distance to the skin model [H, W]."""
    out = np.zeros(lab.shape[:2], np.float32)
    for c in range(3):
        z = (lab[..., c].astype(np.float32) - mean[c]) * np.float32(1.0 / spread[c])
        out += z * z
    return out


def chroma_model(rgb: np.ndarray, xy: np.ndarray, height: float) -> np.ndarray:
    """Median skin chromaticity [r - b, g] (R, G, B divided by their sum) of the skin patches.

    Shadowed skin keeps a clearly positive r - b while white or blue clothes and most backgrounds sit
    at or below zero: that is what separates neck skin in shadow from the shirt under it."""
    rb, g = _chromaticity(_skin_patches(rgb, xy, height))
    return np.array([np.median(rb), np.median(g)], np.float32)


def _chromaticity(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[..., 3] uint8 -> (r - b, g) chromaticities, each [...] float32."""
    f = rgb.astype(np.float32)
    inv_total = 1.0 / (f[..., 0] + f[..., 1] + f[..., 2] + 1.0)
    return (f[..., 0] - f[..., 2]) * inv_total, f[..., 1] * inv_total


def shaded_skin(rgb: np.ndarray, chroma: np.ndarray) -> np.ndarray:
    """Skin under any shading [H, W] bool: r - b between a third of the skin's and a bit above it,
    g close to the skin's (saturated reds such as ties have low g)."""
    rb, g = _chromaticity(rgb)
    rb_skin, g_skin = float(chroma[0]), float(chroma[1])
    return (rb > NECK_RB_MIN * rb_skin) & (rb < rb_skin + 0.1) & (np.abs(g - g_skin) < NECK_G_TOL)


def _keep_touching(mask: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Connected components of `mask` that touch `seed` (8-connectivity)."""
    n, comp = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return mask & False
    hit = np.unique(comp[seed & mask])
    return np.isin(comp, hit[hit > 0])


def _column_run(started: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """Per column, the unbroken run of `cand` from the first `started` row downward."""
    H = started.shape[0]
    breaks = started & ~cand
    first_break = np.where(breaks.any(0), breaks.argmax(0), H)
    return started & (np.arange(H)[:, None] < first_break[None, :])


# ----------------------------------------------------------------------------- the parser
def _roi(xy: np.ndarray, fpoly: np.ndarray, neck_end: float, margin: float,
         H: int, W: int) -> tuple[int, int, int, int]:
    """Box (y0, y1, x0, x1) holding the stretched forehead polygon and the neck zone."""
    (lx, _), (rx, _) = xy[SIDE_ENDS[0]], xy[SIDE_ENDS[1]]
    x0 = int(np.floor(min(fpoly[:, 0].min(), lx - margin))) - 2
    x1 = int(np.ceil(max(fpoly[:, 0].max(), rx + margin))) + 3
    y0 = int(np.floor(fpoly[:, 1].min())) - 2
    y1 = int(np.ceil(max(fpoly[:, 1].max(), neck_end))) + 3
    return max(y0, 0), min(max(y1, 1), H), max(x0, 0), min(max(x1, 1), W)


def parse_labels(rgb: np.ndarray, lms: np.ndarray, person: np.ndarray | None = None) -> np.ndarray:
    """Region labels [H, W] uint8 (BACKGROUND..HAIR) of one frame.

    Args:
        rgb: [H, W, 3] uint8 frame.
        lms: [478, 3] MediaPipe refined face mesh, x and y in pixels.
        person: optional [H, W] person probability (default: MediaPipe selfie segmentation).
    """
    H, W = rgb.shape[:2]
    assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8, (rgb.shape, rgb.dtype)
    assert lms.ndim == 2 and lms.shape[0] >= 468 and lms.shape[1] >= 2, lms.shape
    xy = lms[:, :2].astype(np.float64)
    if person is None:
        person = segment_person(rgb)
    person = person > PERSON_THRESHOLD
    _, _, _, height = face_axes(xy)
    (lx, ly), (rx, ry) = xy[SIDE_ENDS[0]], xy[SIDE_ENDS[1]]
    margin = 0.1 * (rx - lx)
    neck_end = xy[CHIN, 1] + NECK_MAX_LENGTH * height

    # everything face- and neck-specific happens in a box around the head: [h, w] arrays below
    samples = xy[SKIN_SAMPLES]
    if not ((samples >= 0).all(1) & (samples[:, 0] < W) & (samples[:, 1] < H)).any():
        # the face is out of the frame: no skin to learn from; person above the chin is hair
        labels = np.where(person, HAIR, BACKGROUND).astype(np.uint8)
        labels[person & (np.arange(H)[:, None] > xy[CHIN, 1])] = CLOTH
        labels[_fill((H, W), xy[FACE_OVAL])] = FACE
        return labels
    fpoly = forehead_polygon(xy)
    y0, y1, x0, x1 = _roi(xy, fpoly, neck_end, margin, H, W)
    shift = np.array([x0, y0], np.float64)
    rgb_c, person_c = rgb[y0:y1, x0:x1], person[y0:y1, x0:x1]
    h, w = rgb_c.shape[:2]
    lab = cv2.cvtColor(rgb_c, cv2.COLOR_RGB2LAB)
    xy_c = xy - shift
    mean, spread = skin_model(lab, xy_c, height)

    # face: the oval, grown through skin-coloured person pixels up to the hairline
    oval = _fill((h, w), xy_c[FACE_OVAL])
    ext = _fill((h, w), fpoly - shift) & ~oval
    skin = skin_distance2(lab, mean, spread) < SKIN_THRESHOLD ** 2
    grow = cv2.morphologyEx((ext & skin & person_c).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
    face = oval | _keep_touching(grow | oval, oval)
    face = cv2.morphologyEx(face.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)) > 0
    face &= oval | (ext & person_c)

    # head zone: above the oval's lower edge under the face, above the jaw angles beside it
    lower = np.full(W, -1, np.int64)
    has = oval.any(0)
    lower[x0:x1] = np.where(has, y0 + h - 1 - oval[::-1].argmax(0), -1)
    cols = np.arange(W)
    side = np.where(cols < lx, ly, np.where(cols > rx, ry, -1)).astype(np.int64)
    boundary = np.maximum(lower, side)  # [W] last head-zone row per column
    below = np.arange(H)[:, None] > boundary[None, :]

    # neck: chromaticity-skin pixels in an unbroken run from the jaw line downward
    below_c = below[y0:y1, x0:x1] & ~face
    bright = lab[..., 0] > 0.35 * mean[0]  # chromaticity of near-black pixels is noise
    chroma_skin = shaded_skin(rgb_c, chroma_model(rgb_c, xy_c, height)) & bright & person_c
    neck_cand = cv2.morphologyEx(chroma_skin.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)) > 0
    cols_c = np.arange(x0, x1)[None, :]
    neck_zone = (below_c & (cols_c >= lx - margin) & (cols_c <= rx + margin)
                 & (np.arange(y0, y1)[:, None] <= neck_end))
    neck = _column_run(neck_zone, neck_cand & neck_zone)
    neck = cv2.morphologyEx(neck.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)) > 0
    neck = cv2.morphologyEx((neck & neck_zone).astype(np.uint8), cv2.MORPH_OPEN, np.ones((5, 5), np.uint8)) > 0

    labels = np.full((H, W), BACKGROUND, np.uint8)
    labels[person] = HAIR
    labels[person & below] = CLOTH
    crop = labels[y0:y1, x0:x1]  # a view: writes land in `labels`
    crop[neck] = NECK
    crop[face] = FACE
    crop[_fill((h, w), xy_c[LIPS_INNER])] = MOUTH
    return labels


def parse_frame(rgb: np.ndarray, lms: np.ndarray, person: np.ndarray | None = None) -> np.ndarray:
    """Parsing image [H, W, 3] uint8 RGB in the upstream colour code for one frame (see parse_labels)."""
    return labels_to_parsing(parse_labels(rgb, lms, person))


# ----------------------------------------------------------------------------- files
def frame_count(data_dir: str | Path) -> int:
    """Number of frames ori_imgs/0.jpg, 1.jpg, ... (the contiguous run from 0)."""
    img_dir = Path(data_dir) / "ori_imgs"
    n = 0
    while (img_dir / f"{n}.jpg").is_file():
        n += 1
    if n == 0:
        raise FileNotFoundError(f"No frames in {img_dir} (expected 0.jpg, 1.jpg, ...): run the frames step first")
    return n


def read_rgb(path: str | Path) -> np.ndarray:
    """An image file as RGB uint8 [H, W, 3]; a one-line error naming the file when unreadable."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"Cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def write_image(path: str | Path, img: np.ndarray, params: list[int] | None = None) -> Path:
    """Atomically write RGB [H, W, 3] or RGBA [H, W, 4] uint8 (cv2 stores BGR/BGRA, as upstream reads it)."""
    code = cv2.COLOR_RGBA2BGRA if img.ndim == 3 and img.shape[2] == 4 else cv2.COLOR_RGB2BGR
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(img, code), params or []):
            raise OSError(f"Cannot write image {path}")
    return Path(path)


class FrameLandmarks:
    """Per-frame [478, 3] landmarks from landmarks.npy (memory-mapped) or ori_imgs/<i>.npy."""

    def __init__(self, data_dir: str | Path):
        self.data_dir = Path(data_dir)
        stacked = self.data_dir / "landmarks.npy"
        self._stacked = np.load(stacked, mmap_mode="r") if stacked.is_file() else None

    def __getitem__(self, i: int) -> np.ndarray:
        if self._stacked is not None and i < len(self._stacked):
            return np.asarray(self._stacked[i], np.float32)
        path = self.data_dir / "ori_imgs" / f"{i}.npy"
        if not path.is_file():
            raise FileNotFoundError(f"No landmarks for frame {i}: {path} is missing; run the landmarks step first")
        return np.load(path).astype(np.float32)


def parsing_path(data_dir: str | Path, i: int) -> Path:
    return Path(data_dir) / "parsing" / f"{i}.png"


def load_parsing(data_dir: str | Path, i: int) -> np.ndarray:
    """parsing/<i>.png as RGB uint8 [H, W, 3]."""
    return read_rgb(parsing_path(data_dir, i))


# ----------------------------------------------------------------------------- drivers
def run_chunked(fn, data_dir: Path, ids: list[int], workers: int | None = None, desc: str = "",
                progress: bool = True, chunk: int = 32, **kwargs) -> list:
    """Call fn(data_dir, ids_chunk, **kwargs) over chunks of frame ids, in `workers` processes
    (default: up to 2 cores) when there is more than one chunk; returns fn's results in chunk order."""
    chunks = [ids[k:k + chunk] for k in range(0, len(ids), chunk)]
    workers = min(2, os.cpu_count() or 1) if workers is None else workers
    results = []
    with tqdm(total=len(ids), desc=desc, unit="frame", disable=not progress) as bar:
        if workers <= 1 or len(chunks) <= 1:
            for c in chunks:
                results.append(fn(data_dir, c, **kwargs))
                bar.update(len(c))
            return results
        # spawn: the parent may hold torch / mediapipe threads that a fork would copy half-alive
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(fn, data_dir, c, **kwargs) for c in chunks]
            for c, f in zip(chunks, futures):
                results.append(f.result())
                bar.update(len(c))
    return results


def _parse_chunk(data_dir: Path, ids: list[int]) -> int:
    lms = FrameLandmarks(data_dir)
    for i in ids:
        write_image(parsing_path(data_dir, i), parse_frame(read_rgb(data_dir / "ori_imgs" / f"{i}.jpg"), lms[i]))
    return len(ids)


def run_parsing(data_dir: str | Path, force: bool = False, backend: str = "mediapipe",
                weights: str | Path | None = None, progress: bool = True, workers: int | None = None) -> str:
    """Write parsing/<i>.png for every frame in ori_imgs/ (resumable: existing files are kept
    unless `force`). backend: "mediapipe" (offline default, `workers` processes) or "bisenet"
    (user-supplied weights, one process, CUDA when available). Returns a one-line summary."""
    data_dir = Path(data_dir)
    n = frame_count(data_dir)
    todo = [i for i in range(n) if force or not parsing_path(data_dir, i).is_file()]
    if not todo:
        return f"parsing: {n} frames already done (skipped)"
    if backend == "mediapipe":
        FrameLandmarks(data_dir)[todo[-1]]  # fail early, in this process, when landmarks are missing
        run_chunked(_parse_chunk, data_dir, todo, workers, desc="parsing", progress=progress)
    elif backend == "bisenet":
        import torch

        from data_utils.parsing_bisenet import BiSeNetParser

        parser = BiSeNetParser.from_weights(weights, "cuda" if torch.cuda.is_available() else "cpu")
        for i in tqdm(todo, desc="parsing (bisenet)", unit="frame", disable=not progress):
            write_image(parsing_path(data_dir, i), parser(read_rgb(data_dir / "ori_imgs" / f"{i}.jpg")))
    else:
        raise ValueError(f"Unknown parsing backend {backend!r}: use 'mediapipe' or 'bisenet'")
    return f"parsing: {len(todo)} of {n} frames written to {data_dir / 'parsing'} ({backend})"


def contact_sheet(data_dir: str | Path, n: int = 8, cols: int = 4, tile: int = 256) -> np.ndarray:
    """Evenly sampled frames with their parsing overlaid (tiles `tile` px wide), RGB uint8."""
    data_dir = Path(data_dir)
    total = frame_count(data_dir)
    tiles = []
    for i in np.linspace(0, total - 1, min(n, total)).round().astype(int):
        rgb = read_rgb(data_dir / "ori_imgs" / f"{i}.jpg")
        over = overlay_parsing(rgb, load_parsing(data_dir, i))
        scale = tile / rgb.shape[1]
        over = cv2.resize(over, (tile, int(round(rgb.shape[0] * scale))), interpolation=cv2.INTER_AREA)
        cv2.putText(over, str(i), (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(over)
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    return np.vstack([np.hstack(tiles[r:r + cols]) for r in range(0, len(tiles), cols)])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir", type=Path, help="data/<ID> with ori_imgs/ (frames and landmarks)")
    ap.add_argument("--force", action="store_true", help="redo frames whose parsing exists")
    ap.add_argument("--backend", default="mediapipe", choices=["mediapipe", "bisenet"])
    ap.add_argument("--weights", type=Path, default=None, help="BiSeNet 79999_iter.pth (bisenet backend)")
    ap.add_argument("--sheet", type=Path, default=None, help="also write an overlay contact sheet PNG here")
    args = ap.parse_args(argv)
    try:
        print(run_parsing(args.data_dir, force=args.force, backend=args.backend, weights=args.weights))
        if args.sheet is not None:
            write_image(args.sheet, contact_sheet(args.data_dir))
            print(f"contact sheet: {args.sheet}")
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()

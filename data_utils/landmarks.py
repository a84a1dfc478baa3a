"""Task 3: 478 MediaPipe face landmarks per frame (+ 52 blendshapes and a head transform when available).

Detectors, one pass over `ori_imgs/` (streamed, one frame in memory):
- "tasks": MediaPipe Tasks FaceLandmarker in VIDEO mode with `face_landmarker.task` (fetched into
  `.cache/models/` by scripts/fetch_models.py): landmarks, blendshapes and the facial transformation
  matrix in one pass (~11 ms a frame here).
- "legacy": `mediapipe.solutions.face_mesh` with refine_landmarks=True (its model ships in the wheel;
  ~5 ms a frame). Used when the .task file is absent.
- "face_alignment": optional 68-point FAN (data_utils/optional/face_alignment_lms.py; .lms only).

Outputs (others read them):
- `ori_imgs/<i>.npy`  float32 [478, 3]: x, y in pixels of the frame, z = MediaPipe z * frame width.
- `ori_imgs/<i>.lms`  68 rows "x y" (%f): iBUG layout through mesh_topology.MP_TO_IBUG68.
- `landmarks.npy`     float32 [N, 478, 3] (stacked, written last: it marks the step complete).
- `blendshapes.npy`   float32 [N, 52] and `face_transforms.npy` float32 [N, 4, 4] (tasks only).
- `landmarks.json`    detector, frames interpolated, frames that had several faces.
Frames without a face: gaps of at most `max_gap` frames are interpolated (warning naming them);
longer gaps raise an error that names the frames. With several faces the largest is kept.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data_utils.frames import PreprocessError, frame_count, frame_path, read_frame
from data_utils.mesh_topology import MP_TO_IBUG68, N_POINTS
from utils.io_utils import load_json, save_json, save_npy, save_text

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
TASK_ENV = "DEGSTALK_FACE_LANDMARKER"
N_BLENDSHAPES = 52
MAX_GAP = 5  # frames (0.2 s at 25 fps) that may be interpolated


def face_landmarker_path() -> Path:
    """Where the FaceLandmarker .task file is looked for: $DEGSTALK_FACE_LANDMARKER, else .cache/models/."""
    env = os.environ.get(TASK_ENV)
    return Path(env) if env else REPO / ".cache" / "models" / "face_landmarker.task"


@dataclass
class FaceResult:
    points: np.ndarray                   # [478, 3] pixels (z scaled by width)
    blendshapes: np.ndarray | None       # [52]
    transform: np.ndarray | None         # [4, 4] MediaPipe facial transformation matrix (cm)
    n_faces: int


def _largest(faces: list[np.ndarray]) -> int:
    """Index of the face with the largest landmark bounding box."""
    areas = [np.ptp(f[:, 0]) * np.ptp(f[:, 1]) for f in faces]
    return int(np.argmax(areas))


def _to_pixels(norm_landmarks, width: int, height: int) -> np.ndarray:
    pts = np.array([(p.x, p.y, p.z) for p in norm_landmarks], dtype=np.float32)  # [478, 3]
    return pts * np.array([width, height, width], dtype=np.float32)


class TasksDetector:
    """MediaPipe Tasks FaceLandmarker (VIDEO mode): landmarks + blendshapes + transform."""

    name = "tasks"

    def __init__(self, model_path: Path, max_faces: int = 2):
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        if not Path(model_path).is_file():
            raise PreprocessError(f"FaceLandmarker model not found: {model_path} (run scripts/fetch_models.py "
                                  f"or set {TASK_ENV})")
        self._mp = mp
        opts = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(model_path)), running_mode=vision.RunningMode.VIDEO,
            num_faces=max_faces, output_face_blendshapes=True, output_facial_transformation_matrixes=True)
        self._lm = vision.FaceLandmarker.create_from_options(opts)

    def __call__(self, rgb: np.ndarray, i: int) -> FaceResult | None:
        h, w = rgb.shape[:2]
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        res = self._lm.detect_for_video(image, int(i * 40))  # 25 fps -> 40 ms, strictly increasing
        if not res.face_landmarks:
            return None
        faces = [_to_pixels(f, w, h) for f in res.face_landmarks]
        k = _largest(faces)
        bs = np.array([c.score for c in res.face_blendshapes[k]], np.float32) if res.face_blendshapes else None
        tf = np.array(res.facial_transformation_matrixes[k], np.float32) if res.facial_transformation_matrixes else None
        return FaceResult(faces[k], bs, tf, len(faces))

    def close(self) -> None:
        self._lm.close()


DETECT_MIN_SIDE = 512  # MediaPipe tracks faces in smaller frames less reliably


def upscaled_for_detection(frame: np.ndarray, min_side: int = DETECT_MIN_SIDE) -> tuple[np.ndarray, float]:
    """`frame` enlarged (bicubic) so its height is at least `min_side`, and the factor used (1 = unchanged).

    Divide detected pixel coordinates by the factor to get back to `frame`'s pixels.
    """
    import cv2

    scale = max(1.0, min_side / frame.shape[0])
    if scale == 1.0:
        return frame, scale
    return cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC), scale


class LegacyDetector:
    """mediapipe.solutions.face_mesh with refined lips/irises (478 points), tracking between frames."""

    name = "legacy"

    def __init__(self, max_faces: int = 2):
        import mediapipe as mp

        self._fm = mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=max_faces,
                                                   refine_landmarks=True, min_detection_confidence=0.5,
                                                   min_tracking_confidence=0.5)

    def __call__(self, rgb: np.ndarray, i: int) -> FaceResult | None:
        h, w = rgb.shape[:2]
        res = self._fm.process(rgb)
        if not res.multi_face_landmarks:
            return None
        faces = [_to_pixels(f.landmark, w, h) for f in res.multi_face_landmarks]
        k = _largest(faces)
        return FaceResult(faces[k], None, None, len(faces))

    def close(self) -> None:
        self._fm.close()


@contextlib.contextmanager
def quiet_native_stderr():
    """Silence MediaPipe's C++ start-up lines (absl/glog write straight to file descriptor 2)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(fd), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    try:
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def make_detector(kind: str = "auto"):
    """'auto' (tasks when the .task file exists, else legacy), 'tasks' or 'legacy'."""
    path = face_landmarker_path()
    if kind == "auto":
        kind = "tasks" if path.is_file() else "legacy"
        if kind == "legacy":
            log.warning("%s not found: using the legacy face mesh (no blendshapes; expression falls back to a "
                        "landmark PCA). Run scripts/fetch_models.py to get it.", path)
    if kind not in ("tasks", "legacy"):
        raise ValueError(f"unknown landmark detector {kind!r} (auto, tasks, legacy)")
    with quiet_native_stderr():
        return TasksDetector(path) if kind == "tasks" else LegacyDetector()


# ----------------------------------------------------------------------------- gaps
def find_runs(missing: np.ndarray) -> list[tuple[int, int]]:
    """[(start, end_inclusive)] runs of True in a bool vector."""
    runs, start = [], None
    for i, m in enumerate(missing):
        if m and start is None:
            start = i
        if not m and start is not None:
            runs.append((start, i - 1))
            start = None
    if start is not None:
        runs.append((start, len(missing) - 1))
    return runs


def _fmt_runs(runs: list[tuple[int, int]], limit: int = 8) -> str:
    parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:limit]]
    return ", ".join(parts) + (f" and {len(runs) - limit} more gaps" if len(runs) > limit else "")


def fill_gaps(values: np.ndarray, missing: np.ndarray, max_gap: int = MAX_GAP) -> np.ndarray:
    """Linearly interpolate rows flagged `missing` (edges copy the nearest valid row).

    Args:
        values: [N, ...] per-frame arrays (rows under `missing` are ignored).
        missing: [N] bool.
    Raises:
        PreprocessError naming the frames when a gap is longer than `max_gap` or no row is valid.
    """
    assert values.shape[0] == missing.shape[0], (values.shape, missing.shape)
    runs = find_runs(missing)
    if not runs:
        return values
    if missing.all():
        raise PreprocessError("no face found in any frame")
    long = [r for r in runs if r[1] - r[0] + 1 > max_gap]
    if long:
        n = sum(b - a + 1 for a, b in long)
        raise PreprocessError(f"no face found in frames {_fmt_runs(long)} ({n} frames; at most {max_gap} in a row "
                              f"can be interpolated): cut them from the video")
    out = values.copy()
    valid = np.flatnonzero(~missing)
    flat = out.reshape(len(out), -1)
    for j in range(flat.shape[1]):
        flat[missing, j] = np.interp(np.flatnonzero(missing), valid, flat[valid, j])
    return out


# ----------------------------------------------------------------------------- files
def format_lms(points68: np.ndarray) -> str:
    """68 rows 'x y' with %f, as upstream's .lms files."""
    assert points68.shape == (68, 2), points68.shape
    return "".join(f"{x:f} {y:f}\n" for x, y in points68)


def load_lms(path: Path) -> np.ndarray:
    """[68, 2] float32 from an .lms file."""
    return np.loadtxt(path, dtype=np.float32).reshape(-1, 2)


def load_landmarks(data_dir: Path) -> np.ndarray:
    """[N, 478, 3] float32 from landmarks.npy (else the per-frame .npy files)."""
    data_dir = Path(data_dir)
    path = data_dir / "landmarks.npy"
    if path.is_file():
        return np.load(path)
    n = frame_count(data_dir)
    return np.stack([np.load(frame_path(data_dir, i, "npy")) for i in range(n)])


def landmarks_complete(data_dir: Path, n: int) -> bool:
    path = Path(data_dir) / "landmarks.npy"
    if not path.is_file() or not (Path(data_dir) / "landmarks.json").is_file():
        return False
    shape = np.load(path, mmap_mode="r").shape
    return shape == (n, N_POINTS, 3) and frame_path(data_dir, n - 1, "lms").is_file() \
        and frame_path(data_dir, n - 1, "npy").is_file()


def write_landmarks(data_dir: Path, points: np.ndarray) -> None:
    """Per-frame .npy and .lms files, then the stacked landmarks.npy."""
    assert points.ndim == 3 and points.shape[1:] == (N_POINTS, 3), points.shape
    for i, p in enumerate(points):
        save_npy(frame_path(data_dir, i, "npy"), p.astype(np.float32))
        save_text(frame_path(data_dir, i, "lms"), format_lms(p[MP_TO_IBUG68, :2]))
    save_npy(Path(data_dir) / "landmarks.npy", points.astype(np.float32))


def run_landmarks(data_dir: Path, force: bool = False, detector: str = "auto", max_gap: int = MAX_GAP,
                  progress: bool = True) -> str:
    """Detect landmarks on every frame of ori_imgs/ and write the files listed in the module docstring."""
    data_dir = Path(data_dir)
    if detector == "face_alignment":  # MediaPipe 478 points, then FAN .lms on top
        from data_utils.optional.face_alignment_lms import run_face_alignment

        return run_face_alignment(data_dir, force=force, progress=progress)
    n = frame_count(data_dir)
    if not force and landmarks_complete(data_dir, n):
        meta = load_json(data_dir / "landmarks.json")
        return f"landmarks: {n} frames already done ({meta.get('detector')}; skipped)"
    det = make_detector(detector)
    points = np.zeros((n, N_POINTS, 3), np.float32)
    blend = np.zeros((n, N_BLENDSHAPES), np.float32) if det.name == "tasks" else None
    tforms = np.tile(np.eye(4, dtype=np.float32), (n, 1, 1)) if det.name == "tasks" else None
    missing = np.zeros(n, bool)
    multi = []
    try:
        for i in tqdm(range(n), desc=f"landmarks ({det.name})", unit="frame", disable=not progress):
            with quiet_native_stderr() if i == 0 else contextlib.nullcontext():
                res = det(read_frame(data_dir, i), i)
            if res is None:
                missing[i] = True
                continue
            points[i] = res.points
            if res.n_faces > 1:
                multi.append(i)
            if blend is not None and res.blendshapes is not None:
                blend[i] = res.blendshapes
            if tforms is not None and res.transform is not None:
                tforms[i] = res.transform
    finally:
        det.close()
    runs = find_runs(missing)
    points = fill_gaps(points, missing, max_gap)
    if runs:
        log.warning("no face in frames %s of %s: interpolated from the neighbouring frames",
                    _fmt_runs(runs), data_dir / "ori_imgs")
    if multi:
        log.warning("%d frames show more than one face (first: %d): kept the largest face", len(multi), multi[0])
    if blend is not None:
        save_npy(data_dir / "blendshapes.npy", fill_gaps(blend, missing, max_gap))
        save_npy(data_dir / "face_transforms.npy", fill_gaps(tforms, missing, max_gap))
    else:  # stale outputs of an earlier tasks run would no longer match these landmarks
        (data_dir / "blendshapes.npy").unlink(missing_ok=True)
        (data_dir / "face_transforms.npy").unlink(missing_ok=True)
    (data_dir / "landmarks.npy").unlink(missing_ok=True)
    save_json(data_dir / "landmarks.json", {"detector": det.name, "n_frames": n,
                                            "interpolated_frames": np.flatnonzero(missing).tolist(),
                                            "multi_face_frames": multi})
    write_landmarks(data_dir, points)
    extra = f", {int(missing.sum())} interpolated" if missing.any() else ""
    extra += f", {len(multi)} with several faces (largest kept)" if multi else ""
    return f"landmarks: {n} frames, 478 points ({det.name}{', + blendshapes' if blend is not None else ''}{extra})"

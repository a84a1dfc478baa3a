"""The compact frame cache: every frame of a subject at the training resolution, as uint8 arrays on disk.

Built once per (subject, resolution) under `data/<ID>/.cache/<H>x<W>/`, streaming (a few frames in
memory at a time) and atomically (a temporary folder renamed into place), then reused until a
source file changes (names, sizes and mtimes of the sources are hashed into `meta.json`):

    images.npy     [R, H, W, 3] uint8   the frames (ori_imgs/<i>.jpg, or decoded from <ID>.mp4)
    labels.npy     [R, H, W]    uint8   region bits (scene/data/frame_features.py) from parsing + teeth
    bg.npy         [R, H, W, 3] uint8   DEGSTalk background with hair (bg/<i>.png or rebuilt)
    landmarks.npy  [R, 68, 2]   float32 the .lms landmarks, native pixels
    mouth_pixels.npy [R]        int64   mouth-mask pixel count at the training resolution
    meta.json                           img_ids (row r holds frame img_ids[r]), sizes, signature

Rows are read back with positional reads (`os.preadv`), not memory maps, so serving frames from disk
never grows the process's resident memory beyond the batch itself.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

from scene.data import frame_features as ff
from scene.data import subject_files as sf

log = logging.getLogger(__name__)

CACHE_VERSION = 1
FRAME_ARRAYS = ("images", "labels", "bg")  # the big [R, H, W, ...] arrays
SOURCE_DIRS = ("ori_imgs", "parsing", "teeth_mask", "bg", "torso_imgs")
CHUNK = 16  # frames in flight while building


# ----------------------------------------------------------------------------- sources
def frame_source(data_dir: Path, img_ids: np.ndarray) -> str:
    """'jpg' when ori_imgs/<i>.jpg exist for every frame, else 'mp4' (<ID>.mp4); raises when neither."""
    missing = [i for i in img_ids if not (data_dir / "ori_imgs" / f"{i}.jpg").is_file()]
    if not missing:
        return "jpg"
    if sf.subject_video(data_dir) is not None:
        return "mp4"
    raise sf.MissingSubjectFile(data_dir / "ori_imgs" / f"{missing[0]}.jpg", "frames")


def native_size(data_dir: Path, img_ids: np.ndarray, source: str) -> tuple[int, int]:
    """(W, H) of the native frames."""
    if source == "jpg":
        return sf.image_size(data_dir / "ori_imgs" / f"{img_ids[0]}.jpg")
    from utils.video_io import probe_video

    info = probe_video(sf.subject_video(data_dir))
    return info.width, info.height


def bg_method() -> str:
    """How missing bg/<i>.png are rebuilt; part of the signature so a new method rebuilds the cache."""
    from data_utils import background

    return f"data_utils.background:{getattr(background, 'VERSION', 1)}"


def _dir_digest(path: Path) -> str:
    if not path.is_dir():
        return "absent"
    h = hashlib.sha1()
    for entry in sorted(os.scandir(path), key=lambda e: e.name):
        if entry.is_file():
            st = entry.stat()
            h.update(f"{entry.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _file_digest(path: Path | None) -> str:
    if path is None or not path.is_file():
        return "absent"
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def source_signature(data_dir: Path, img_ids: np.ndarray, size_wh: tuple[int, int], source: str) -> str:
    """Hash of everything the cache content depends on (file names, sizes, mtimes; ids; size; methods)."""
    parts = {"version": CACHE_VERSION, "size": list(size_wh), "source": source, "bg_method": bg_method(),
             "img_ids": hashlib.sha1(np.asarray(img_ids, np.int64).tobytes()).hexdigest(),
             "bc": _file_digest(data_dir / "bc.jpg"),
             "video": _file_digest(sf.subject_video(data_dir)) if source == "mp4" else "unused",
             # how mp4 frames are laid out (utils.video_io.subject_frames): a new layout rebuilds the cache
             "decoder": "subject_frames:1" if source == "mp4" else "unused"}
    parts.update({d: _dir_digest(data_dir / d) for d in SOURCE_DIRS})
    return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _iter_video_frames(data_dir: Path, img_ids: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(img_id, RGB frame) for the wanted ids, decoding <ID>.mp4 once in order, exactly as preprocessing did
    (utils.video_io.subject_frames with the layout from frames.json)."""
    from data_utils.frames import frame_timing
    from utils.video_io import subject_frames

    video = sf.subject_video(data_dir)
    wanted = set(int(i) for i in img_ids)
    last = max(wanted)
    k = -1
    for k, frame in enumerate(subject_frames(video, frame_timing(data_dir))):  # to the end: it checks the count
        if k in wanted:
            yield k, frame
    if k < last:
        raise ValueError(f"{video} has only {k + 1} frames at 25 fps but the transforms need frame {last}")


# ----------------------------------------------------------------------------- one frame
@dataclass
class _FrameRow:
    image: np.ndarray  # [H, W, 3]
    labels: np.ndarray  # [H, W]
    bg: np.ndarray  # [H, W, 3]
    lms: np.ndarray  # [68, 2]
    mouth_pixels: int


def _rebuild_bg(frame: np.ndarray, parsing: np.ndarray, teeth: np.ndarray, bc: np.ndarray,
                torso: np.ndarray | None) -> np.ndarray:
    """bg/<i>.png rebuilt from the frame: torso (torso_imgs/<i>.png or in-painted anew), then DEGSTalk's bg."""
    from data_utils import background

    if torso is None:
        torso = background.make_torso(frame, parsing, bc)
    return background.make_bg_with_hair(frame, parsing, teeth, torso, bc)


def process_frame(data_dir: Path, img_id: int, frame: np.ndarray | None, size_wh: tuple[int, int],
                  bc: np.ndarray) -> _FrameRow:
    """Read/derive one frame's cache row at the native size, then resize to `size_wh`."""
    if frame is None:
        frame = sf.read_rgb(data_dir / "ori_imgs" / f"{img_id}.jpg")
    h, w = frame.shape[:2]
    parsing = sf.read_rgb(data_dir / "parsing" / f"{img_id}.png", "parsing")
    if parsing.shape != frame.shape:
        raise ValueError(f"{data_dir / 'parsing' / f'{img_id}.png'}: size {parsing.shape[1]}x{parsing.shape[0]} "
                         f"differs from the frame's {w}x{h}")
    teeth = sf.read_teeth(data_dir, img_id, (h, w))
    bits = ff.parsing_bits(parsing, teeth)
    bg_file = data_dir / "bg" / f"{img_id}.png"
    if bg_file.is_file():
        bg = sf.read_rgb(bg_file, "bc")
    else:
        torso_file = data_dir / "torso_imgs" / f"{img_id}.png"
        torso = sf.read_rgba(torso_file, "bc") if torso_file.is_file() else None
        bg = _rebuild_bg(frame, parsing, teeth, bc, torso)
    lms = sf.read_lms(data_dir / "ori_imgs" / f"{img_id}.lms")
    small_bits = ff.resize_bits(bits, size_wh)
    mouth = ff.masks_from_bits(small_bits)["mouth_mask"]
    return _FrameRow(ff.resize_rgb(frame, size_wh), small_bits, ff.resize_rgb(bg, size_wh), lms, int(mouth.sum()))


# ----------------------------------------------------------------------------- npy streaming
def _open_npy_writer(path: Path, shape: tuple[int, ...]):
    f = open(path, "wb")
    np.lib.format.write_array_header_2_0(f, {"descr": "|u1", "fortran_order": False, "shape": shape})
    return f


def _npy_data_offset(path: Path) -> tuple[int, tuple[int, ...], np.dtype]:
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        assert not fortran, path
        return f.tell(), tuple(shape), dtype


# ----------------------------------------------------------------------------- the cache
class FrameCache:
    """Read access to a built cache folder."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.meta = json.loads((self.root / "meta.json").read_text())
        self.img_ids = np.asarray(self.meta["img_ids"], dtype=np.int64)
        self.size_wh = tuple(self.meta["size_wh"])
        self.native_wh = tuple(self.meta["native_wh"])
        self.landmarks = np.load(self.root / "landmarks.npy")  # [R, 68, 2]
        self.mouth_pixels = np.load(self.root / "mouth_pixels.npy")  # [R]
        self._row_of = {int(i): r for r, i in enumerate(self.img_ids)}
        self._arrays = {}
        for name in FRAME_ARRAYS:
            offset, shape, dtype = _npy_data_offset(self.root / f"{name}.npy")
            fd = os.open(self.root / f"{name}.npy", os.O_RDONLY)
            self._arrays[name] = (fd, offset, shape)

    @property
    def width(self) -> int:
        return int(self.size_wh[0])

    @property
    def height(self) -> int:
        return int(self.size_wh[1])

    def rows(self, img_ids) -> np.ndarray:
        """Cache rows of frames `img_ids`."""
        try:
            return np.array([self._row_of[int(i)] for i in np.atleast_1d(img_ids)], dtype=np.int64)
        except KeyError as e:
            raise KeyError(f"frame {e.args[0]} is not in the cache {self.root}") from None

    def row_shape(self, name: str) -> tuple[int, ...]:
        return self._arrays[name][2][1:]

    def read(self, name: str, rows) -> np.ndarray:
        """Rows of one array (images, labels, bg) -> uint8 [B, ...], by positional reads."""
        fd, offset, shape = self._arrays[name]
        row_shape = shape[1:]
        row_bytes = int(np.prod(row_shape))
        rows = np.atleast_1d(np.asarray(rows, dtype=np.int64))
        out = np.empty((len(rows),) + row_shape, dtype=np.uint8)
        for k, r in enumerate(rows):
            if not 0 <= r < shape[0]:
                raise IndexError(f"row {r} out of range [0, {shape[0]}) in {self.root / name}.npy")
            got = os.preadv(fd, [memoryview(out[k]).cast("B")], offset + int(r) * row_bytes)
            if got != row_bytes:
                raise OSError(f"short read from {self.root / name}.npy (row {r}); delete {self.root} to rebuild")
        return out

    def close(self) -> None:
        for fd, _, _ in self._arrays.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._arrays = {}

    def __del__(self):
        self.close()


def cache_dir(data_dir: Path, size_wh: tuple[int, int], cache_root: Path | None = None) -> Path:
    root = Path(cache_root) if cache_root is not None else Path(data_dir) / ".cache"
    return root / f"{size_wh[1]}x{size_wh[0]}"


def _valid(root: Path, signature: str) -> bool:
    try:
        meta = json.loads((root / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    if meta.get("version") != CACHE_VERSION or meta.get("signature") != signature:
        return False
    r = len(meta["img_ids"])
    w, h = meta["size_wh"]
    sizes = {"images": r * h * w * 3, "labels": r * h * w, "bg": r * h * w * 3}
    for name, nbytes in sizes.items():
        path = root / f"{name}.npy"
        if not path.is_file() or path.stat().st_size < nbytes:
            return False
    return True


def build_cache(data_dir: Path, img_ids: np.ndarray, size_wh: tuple[int, int], native_wh: tuple[int, int],
                source: str, signature: str, out: Path, workers: int = 2, progress: bool = True) -> None:
    """Write the cache into folder `out` (which must not exist), streaming CHUNK frames at a time."""
    out.mkdir(parents=True)
    w, h = size_wh
    r = len(img_ids)
    bc = sf.read_rgb(sf.require(data_dir / "bc.jpg", "bc"), "bc")
    if bc.shape[:2] != (native_wh[1], native_wh[0]):
        raise ValueError(f"{data_dir / 'bc.jpg'}: size {bc.shape[1]}x{bc.shape[0]} differs from the frames' "
                         f"{native_wh[0]}x{native_wh[1]}")
    writers = {"images": _open_npy_writer(out / "images.npy", (r, h, w, 3)),
               "labels": _open_npy_writer(out / "labels.npy", (r, h, w)),
               "bg": _open_npy_writer(out / "bg.npy", (r, h, w, 3))}
    landmarks = np.zeros((r, 68, 2), np.float32)
    mouth_pixels = np.zeros(r, np.int64)
    if source == "mp4":
        frames: Iterator[tuple[int, np.ndarray | None]] = _iter_video_frames(data_dir, img_ids)
    else:
        frames = ((int(i), None) for i in img_ids)
    bar = tqdm(total=r, desc=f"frame cache {h}x{w}", unit="frame", disable=not progress, leave=False)
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            row = 0
            while row < r:
                chunk = []
                for item in frames:
                    chunk.append(item)
                    if len(chunk) == max(CHUNK, 2 * workers):
                        break
                if not chunk:
                    raise ValueError(f"frame source of {data_dir} ended after {row} of {r} frames")
                results = pool.map(lambda it: process_frame(data_dir, it[0], it[1], size_wh, bc), chunk)
                for (img_id, _), res in zip(chunk, results):
                    assert img_id == img_ids[row], (img_id, img_ids[row])
                    writers["images"].write(res.image.tobytes())
                    writers["labels"].write(res.labels.tobytes())
                    writers["bg"].write(res.bg.tobytes())
                    landmarks[row] = res.lms
                    mouth_pixels[row] = res.mouth_pixels
                    row += 1
                bar.update(len(chunk))
                del chunk, results
        for _ in frames:  # drain: the video decoder checks its frame count against frames.json at the end
            pass
    finally:
        bar.close()
        for f in writers.values():
            f.close()
        if hasattr(frames, "close"):
            frames.close()
    np.save(out / "landmarks.npy", landmarks)
    np.save(out / "mouth_pixels.npy", mouth_pixels)
    meta = {"version": CACHE_VERSION, "signature": signature, "source": source, "bg_method": bg_method(),
            "img_ids": [int(i) for i in img_ids], "size_wh": list(size_wh), "native_wh": list(native_wh)}
    (out / "meta.json").write_text(json.dumps(meta, indent=1))


def ensure_cache(data_dir: str | Path, img_ids, resolution: int = -1, cache_root: str | Path | None = None,
                 workers: int | None = None, progress: bool = True) -> FrameCache:
    """Open the subject's frame cache at `resolution`, building it first when absent or stale.

    Args:
        data_dir: processed subject folder.
        img_ids: frames the cache must hold (all splits: one cache serves train and val).
        resolution: -1 native, else the long side in pixels.
        cache_root: where cache folders go (default data_dir/.cache).
        workers: threads decoding/deriving frames while building (default: the CPU count, at most 8).
    """
    from scene.data.cameras import training_size

    data_dir = Path(data_dir)
    workers = workers or min(8, os.cpu_count() or 1)
    img_ids = np.unique(np.asarray(img_ids, dtype=np.int64))
    source = frame_source(data_dir, img_ids)
    native_wh = native_size(data_dir, img_ids, source)
    size_wh = training_size(native_wh, resolution)
    root = cache_dir(data_dir, size_wh, cache_root)
    signature = source_signature(data_dir, img_ids, size_wh, source)
    if _valid(root, signature):
        return FrameCache(root)
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        lock_file = open(root.parent / f"{root.name}.lock", "w")
    except OSError as e:
        raise OSError(f"Cannot write the frame cache under {root.parent} ({e.strerror}); "
                      f"pass a writable cache folder (cache_dir=...)") from e
    with lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # another process may be building the same cache
        if _valid(root, signature):
            return FrameCache(root)
        log.info("building the frame cache %s (%d frames from %s)", root, len(img_ids), source)
        tmp = root.parent / f".{root.name}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            build_cache(data_dir, img_ids, size_wh, native_wh, source, signature, tmp, workers, progress)
            if root.exists():
                shutil.rmtree(root)
            os.replace(tmp, root)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return FrameCache(root)

"""Video and audio IO through the ffmpeg binary that `imageio-ffmpeg` ships (no system ffmpeg needed).

Frames are streamed: readers yield one HxWx3 uint8 RGB frame at a time and writers take one at a
time, so no caller has to hold a whole video in memory. Where imageio-ffmpeg is not installed (a
bare GPU box), frames are read and written through OpenCV instead (mp4v, no audio muxing).
"""
from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

try:
    import imageio_ffmpeg
except ImportError:  # pragma: no cover - exercised on machines without the wheel
    imageio_ffmpeg = None

from utils.io_utils import atomic_path

log = logging.getLogger(__name__)


def ffmpeg_exe() -> str:
    if imageio_ffmpeg is None:
        raise RuntimeError("imageio-ffmpeg is not installed: pip install -r requirements.txt")
    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    width: int
    height: int
    duration: float  # seconds, from the container
    has_audio: bool


def probe_video(path: str | Path) -> VideoInfo:
    """Read fps, size, duration and whether an audio stream exists. Raises ValueError on non-video."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Video does not exist: {path}")
    if imageio_ffmpeg is None:
        return _probe_cv2(path)
    reader = imageio_ffmpeg.read_frames(str(path))
    try:
        meta = next(reader)
    except (RuntimeError, OSError, StopIteration) as e:
        raise ValueError(f"Not a readable video: {path} ({str(e).strip().splitlines()[-1] if str(e) else e})") from e
    finally:
        reader.close()
    w, h = meta["size"]
    return VideoInfo(fps=float(meta["fps"]), width=int(w), height=int(h),
                     duration=float(meta["duration"]), has_audio=bool(meta.get("audio_codec")))


def iter_frames(path: str | Path, fps: float | None = None, size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
    """Yield RGB uint8 frames [H, W, 3]; `fps` resamples in ffmpeg, `size` = (W, H) rescales."""
    if imageio_ffmpeg is None:
        yield from _iter_frames_cv2(path, fps, size)
        return
    input_params = []
    output_params = []
    filters = []
    if fps is not None:
        filters.append(f"fps={fps}")
    if size is not None:
        filters.append(f"scale={size[0]}:{size[1]}:flags=area")
    if filters:
        output_params += ["-vf", ",".join(filters)]
    reader = imageio_ffmpeg.read_frames(str(path), input_params=input_params, output_params=output_params,
                                        pix_fmt="rgb24")
    meta = next(reader)
    w, h = meta["size"] if size is None else size
    try:
        for buf in reader:
            yield np.frombuffer(buf, dtype=np.uint8).reshape(h, w, 3)
    finally:
        reader.close()


class VideoWriter:
    """Streaming H.264 mp4 writer; the file appears at `path` only when `close()` succeeds.

    >>> with VideoWriter("out.mp4", fps=25) as w:
    ...     for frame in frames: w.write(frame)
    """

    def __init__(self, path: str | Path, fps: float = 25.0, quality: int = 8, audio: str | Path | None = None):
        self.path = Path(path)
        self.fps = fps
        self.quality = quality
        self.audio = Path(audio) if audio is not None else None
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._gen = None
        self.n_frames = 0

    def write(self, frame: np.ndarray) -> None:
        frame = np.ascontiguousarray(frame)
        if frame.dtype != np.uint8:
            frame = (np.clip(frame, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        if self._gen is None and imageio_ffmpeg is None:
            self._gen = _Cv2Writer(self._tmp, self.fps, frame.shape[1], frame.shape[0])
        if self._gen is None:
            h, w = frame.shape[:2]
            self._gen = imageio_ffmpeg.write_frames(
                str(self._tmp), (w, h), fps=self.fps, quality=self.quality, codec="libx264",
                pix_fmt_out="yuv420p", macro_block_size=2, ffmpeg_log_level="error",
                audio_path=str(self.audio) if self.audio else None, audio_codec="aac" if self.audio else None,
                output_params=["-shortest"] if self.audio else None)
            self._gen.send(None)
        self._gen.send(frame)
        self.n_frames += 1

    def close(self) -> None:
        if self._gen is None:
            self._ctx.__exit__(ValueError, ValueError("no frames written"), None)
            raise ValueError(f"No frames were written to {self.path}")
        self._gen.close()
        self._ctx.__exit__(None, None, None)

    def abort(self) -> None:
        if self._gen is not None:
            self._gen.close()
        self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float = 25.0, audio: str | Path | None = None) -> int:
    """Write frames (uint8 or float in [0,1]) to an mp4, optionally muxed with `audio`. Returns the frame count."""
    with VideoWriter(path, fps=fps, audio=audio) as w:
        for frame in frames:
            w.write(frame)
    return w.n_frames


def mux_audio(video: str | Path, audio: str | Path, out: str | Path) -> Path:
    """Copy the video stream and add `audio` as AAC, cut to the shorter of the two (offset 0)."""
    with atomic_path(out) as tmp:
        cmd = [ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(video), "-i", str(audio),
               "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac", "-shortest", str(tmp)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"ffmpeg could not mux {audio} into {video}: {res.stderr.strip()}")
    return Path(out)


def extract_audio(video: str | Path, out_wav: str | Path, sample_rate: int = 16000) -> Path:
    """Decode the first audio stream of any media file to 16-bit mono PCM wav at `sample_rate`."""
    with atomic_path(out_wav) as tmp:
        cmd = [ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(video), "-vn", "-ac", "1",
               "-ar", str(sample_rate), "-c:a", "pcm_s16le", str(tmp)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise ValueError(f"Could not decode audio from {video}: {res.stderr.strip().splitlines()[-1:] }")
    return Path(out_wav)


# ---- OpenCV fallbacks (no imageio-ffmpeg) --------------------------------------------------------
def _probe_cv2(path: Path) -> VideoInfo:
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"Not a readable video: {path}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    n = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    info = VideoInfo(fps=float(fps), width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                     height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), duration=float(n / fps), has_audio=False)
    cap.release()
    return info


def _iter_frames_cv2(path, fps, size) -> Iterator[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"Not a readable video: {path}")
    src_fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    step = src_fps / fps if fps else 1.0  # nearest-frame resampling
    i, next_keep = 0, 0.0
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            if i >= next_keep - 1e-6:
                next_keep += step
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                yield cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if size else rgb
            i += 1
    finally:
        cap.release()


class _Cv2Writer:
    """Same send/close protocol as imageio-ffmpeg's writer generator, through cv2.VideoWriter."""

    def __init__(self, path: Path, fps: float, width: int, height: int):
        import cv2

        self._cv2 = cv2
        self._w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        if not self._w.isOpened():
            raise RuntimeError(f"OpenCV cannot write {path}")

    def send(self, frame):
        if frame is not None:
            self._w.write(self._cv2.cvtColor(frame, self._cv2.COLOR_RGB2BGR))

    def close(self):
        self._w.release()

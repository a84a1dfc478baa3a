"""Video and audio IO through the ffmpeg binary that `imageio-ffmpeg` ships (no system ffmpeg needed).

Frames are streamed: readers yield one HxWx3 uint8 RGB frame at a time and writers take one at a
time, so no caller has to hold a whole video in memory. Where imageio-ffmpeg is not installed (a
bare GPU box), frames are read and written through OpenCV instead (mp4v, no audio muxing).

A subject's frames are decoded by one function, `subject_frames` (preprocessing writes ori_imgs/ from
it; the trainer's frame cache decodes <ID>.mp4 with it), so they agree frame for frame at any input
rate. Frame k is the picture on screen at k/25 s on the file's timeline (time 0 = the file's start, as
for the audio): ffmpeg's `fps=25` filter. Without ffmpeg, OpenCV's frames are laid out by their
timestamps with the same rule (`resample_slots`), shifted by where the video starts in the file
(recorded by preprocessing, `FrameTiming`), and cut to the frame count preprocessing wrote.
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


SUBJECT_FPS = 25


@dataclass(frozen=True)
class FrameTiming:
    """How preprocessing laid out a subject's frames (frames.json): what another decoder must reproduce."""

    n_frames: int  # frames written at 25 fps
    video_start: float  # seconds from the file's start to its first video frame (0 for most files)


def subject_frames(path: str | Path, timing: FrameTiming | None = None,
                   size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
    """The frames of a subject's video at 25 fps, the same wherever they are decoded.

    Args:
        path: the subject's video.
        timing: preprocessing's layout (frames.json). Needed only where ffmpeg is missing: the OpenCV
            fallback cannot see where the video starts in the file; with it, the frames match ffmpeg's.
        size: (W, H) to rescale to.
    """
    return iter_frames(path, fps=SUBJECT_FPS, size=size, timing=timing)


def resample_slots(bounds: Iterable[float], fps: float) -> Iterator[int]:
    """For each output frame at `fps`, the index of the source frame it shows (ffmpeg's fps filter).

    `bounds`: the start time (s) of every source frame in order, then the end time of the last one.
    Source frame i is shown from its start, rounded to the nearest output tick, until the next frame's
    start rounded (a frame that rounds onto the same tick as the next one is dropped); the first frame
    is shown from 0 on (ffmpeg pads a constant-rate stream from the file's start). Lazy: slot k is
    yielded as soon as the bound after it has been read.
    """
    it = iter(bounds)
    if next(it, None) is None:
        return
    k = 0
    for i, t in enumerate(it):
        while k < _round_tick(t, fps):
            yield i
            k += 1


def _round_tick(t: float, fps: float) -> int:
    """Seconds -> output tick, halves rounded up as av_rescale_q_rnd(AV_ROUND_NEAR_INF) does for t >= 0."""
    return int(np.floor(t * fps + 0.5 + 1e-9))


def video_start(path: str | Path) -> float:
    """Seconds from the file's start to its first video frame, as ffmpeg places it (0.0 for most files).

    Non-zero e.g. when an encoder's B-frame delay is not undone by an edit list: the audio starts at 0
    and the picture 2 frames later; ffmpeg shows the first picture from 0, OpenCV cannot see the gap.
    """
    cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0", "-frames:v", "1",
           "-fps_mode", "passthrough", "-enc_time_base", "demux", "-f", "framecrc", "-"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    lines = res.stdout.splitlines()
    tb = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("#tb 0:")), None)
    rows = [ln for ln in lines if ln and not ln.startswith("#")]
    if res.returncode != 0 or tb is None or not rows:
        raise ValueError(f"Cannot read the first video frame of {path}: {res.stderr.strip()[-200:]}")
    num, den = (int(x) for x in tb.split("/"))
    return max(int(rows[0].split(",")[2]) * num / den, 0.0)


def iter_frames(path: str | Path, fps: float | None = None, size: tuple[int, int] | None = None,
                timing: FrameTiming | None = None) -> Iterator[np.ndarray]:
    """Yield RGB uint8 frames [H, W, 3]; `fps` resamples (ffmpeg's fps filter), `size` = (W, H) rescales.

    `timing` (with `fps`): preprocessing's layout of these frames, checked (ffmpeg) or followed (OpenCV).
    """
    if imageio_ffmpeg is None:
        yield from _iter_frames_cv2(path, fps, size, timing)
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
    n = 0
    try:
        for buf in reader:
            yield np.frombuffer(buf, dtype=np.uint8).reshape(h, w, 3)
            n += 1
    finally:
        reader.close()
    if timing is not None and n != timing.n_frames:
        raise ValueError(f"{path} now decodes to {n} frames at {fps:g} fps, but preprocessing wrote {timing.n_frames} "
                         f"(frames.json): the video changed since; rerun process.py --task 2 --force")


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


def _iter_frames_cv2(path, fps, size, timing=None) -> Iterator[np.ndarray]:
    """OpenCV's frames; with `fps`, laid out by their timestamps exactly as ffmpeg's fps filter does."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"Not a readable video: {path}")
    src_fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    start = timing.video_start if timing is not None else 0.0
    buffer: dict[int, np.ndarray] = {}  # decoded frames not yet shown (at most two)

    def bounds() -> Iterator[float]:
        """Start time of each frame on the file's timeline, then the end of the last (one frame interval on)."""
        i, t, dt = 0, None, 1.0 / src_fps
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            now = start + cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            dt = now - t if t is not None and now > t else dt
            buffer[i], t, i = bgr, now, i + 1
            yield now
        if t is not None:
            yield t + dt

    def rgb(bgr: np.ndarray) -> np.ndarray:
        out = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return cv2.resize(out, size, interpolation=cv2.INTER_AREA) if size else out

    try:
        if not fps:
            for i, _ in enumerate(bounds()):
                if i in buffer:
                    yield rgb(buffer.pop(i))
            return
        limit = timing.n_frames if timing is not None else None
        k, shown, image = 0, -1, None
        for i in resample_slots(bounds(), fps):
            if i != shown:
                image, shown = (rgb(buffer[i]) if limit is None or k < limit else None), i
                for j in [j for j in buffer if j <= i]:
                    del buffer[j]
            if limit is None or k < limit:
                yield image
            k += 1
        if limit is None:
            return
        if abs(k - limit) > 1:  # the layout differs by more than the last frame's rounding: refuse
            raise ValueError(f"{path}: OpenCV lays out {k} frames at {fps:g} fps where preprocessing (ffmpeg) wrote "
                             f"{limit}; install ffmpeg for Python (pip install imageio-ffmpeg==0.6.0) or pack the "
                             f"frames (scripts/pack_subject.py --with-frames)")
        while image is not None and k < limit:  # ffmpeg held the last frame one tick longer
            yield image
            k += 1
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

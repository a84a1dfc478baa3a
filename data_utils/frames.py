"""Decode the input video: frames to `ori_imgs/<i>.jpg` at 25 fps (task 2) and audio (task 1).

Audio: `aud.wav` (16 kHz mono), split into `aud_train.wav` / `aud_novel.wav` at the frame boundary of
the train/val split (frame int(N*10/11), i.e. 10/11 of the duration as upstream, rounded to a frame
so audio and cameras split at the same instant). Features (through `data_utils.audio_features`) are
extracted once from aud.wav with exactly one row per video frame; the train/novel feature files
are its rows cut at the same frame (upstream extracted each part separately).

Also the small helpers every step shares: the frame count, frame paths, the one-line user error.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from utils.io_utils import atomic_path, load_json, save_json
from utils.video_io import FrameTiming, extract_audio, probe_video, subject_frames, video_start

log = logging.getLogger(__name__)

FPS = 25
SAMPLE_RATE = 16000
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640
TRAIN_FRACTION = (10, 11)  # train = first int(N * 10 / 11) frames, as upstream
FRAMES_META = "frames.json"
JPEG_QUALITY = 95  # 43.9 dB PSNR to the decoded frame on cnn2 (ffmpeg -q:v 1, used before: 42.0 dB)


class PreprocessError(ValueError):
    """A user-facing error: one line that names the bad path and what to do."""


class NoAudioError(PreprocessError):
    """The input video has no audio track."""


# ----------------------------------------------------------------------------- shared helpers
def frame_path(data_dir: Path, i: int, ext: str = "jpg") -> Path:
    return Path(data_dir) / "ori_imgs" / f"{i}.{ext}"


def n_train_frames(n_frames: int) -> int:
    return int(n_frames * TRAIN_FRACTION[0] / TRAIN_FRACTION[1])


def frame_count(data_dir: Path) -> int:
    """Number of frames in `ori_imgs/`: from frames.json, else the contiguous 0.jpg, 1.jpg, ... run
    (folders made by the original pipeline have no frames.json)."""
    data_dir = Path(data_dir)
    meta = data_dir / FRAMES_META
    if meta.is_file():
        return int(load_json(meta)["n_frames"])
    n = 0
    while frame_path(data_dir, n).is_file():
        n += 1
    if n == 0:
        raise PreprocessError(f"No frames in {data_dir / 'ori_imgs'}: run `process.py <video> --task 2` first")
    return n


def read_frame(data_dir: Path, i: int) -> np.ndarray:
    """ori_imgs/<i>.jpg as RGB uint8 [H, W, 3]."""
    path = frame_path(data_dir, i)
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise PreprocessError(f"Cannot read frame {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def frame_size(data_dir: Path) -> tuple[int, int]:
    """(width, height) of the extracted frames."""
    meta = Path(data_dir) / FRAMES_META
    if meta.is_file():
        m = load_json(meta)
        return int(m["width"]), int(m["height"])
    h, w = read_frame(data_dir, 0).shape[:2]
    return w, h


def check_video(video: Path):
    """probe_video with one-line errors for a missing or unreadable file."""
    video = Path(video)
    if not video.exists():
        raise PreprocessError(f"Video does not exist: {video}")
    try:
        return probe_video(video)
    except ValueError as e:
        raise PreprocessError(f"{e}: the file is truncated or not a video; re-export it (e.g. ffmpeg -i in.mp4 "
                              f"-c:v libx264 -c:a aac out.mp4)") from e


# ----------------------------------------------------------------------------- task 2: frames
def frames_complete(data_dir: Path) -> bool:
    meta = Path(data_dir) / FRAMES_META
    if not meta.is_file():
        return False
    n = int(load_json(meta)["n_frames"])
    return n > 0 and frame_path(data_dir, 0).is_file() and frame_path(data_dir, n - 1).is_file()


def _write_jpgs(frames, out_dir: Path, expected: int, progress: bool, workers: int = 2) -> int:
    """Encode frames to out_dir/<i>.jpg (a few in flight at a time); returns how many were written."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    def write(i: int, rgb: np.ndarray) -> None:
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise PreprocessError(f"Cannot encode frame {i} as JPEG")
        (out_dir / f"{i}.jpg").write_bytes(buf.tobytes())

    n = 0
    with ThreadPoolExecutor(workers) as pool, tqdm(total=expected, desc="frames", unit="frame",
                                                   disable=not progress) as bar:
        pending: deque = deque()
        for n, rgb in enumerate(frames, start=1):
            pending.append(pool.submit(write, n - 1, rgb))
            while len(pending) > 2 * workers or (pending and pending[0].done()):
                pending.popleft().result()
                bar.update(1)
        while pending:
            pending.popleft().result()
            bar.update(1)
    return n


def frame_timing(data_dir: Path) -> FrameTiming | None:
    """How task 2 laid out the frames (frames.json), for decoding <ID>.mp4 the same way elsewhere."""
    meta = Path(data_dir) / FRAMES_META
    if not meta.is_file():
        return None
    m = load_json(meta)
    return FrameTiming(int(m["n_frames"]), float(m.get("video_start", 0.0)))


def run_frames(data_dir: Path, force: bool = False, video: Path | None = None, progress: bool = True) -> str:
    """Decode every frame at 25 fps to `ori_imgs/<i>.jpg` (0-based, unpadded, JPEG quality 95).

    Frames come from `utils.video_io.subject_frames`, the decoder the trainer's cache also uses on
    <ID>.mp4, so both agree frame for frame. A video at another rate is resampled (frames picked by
    timestamp, so the audio stays aligned) with a warning. A truncated file is decoded as far as it
    goes, with a warning. Frames go to a temporary folder first; `frames.json` is written last and
    marks the step complete (with where the video starts in the file: another decoder needs it).
    """
    data_dir = Path(data_dir)
    video = Path(video) if video is not None else data_dir / f"{data_dir.name}.mp4"
    if not force and frames_complete(data_dir):
        return f"frames: {frame_count(data_dir)} frames already in ori_imgs/ (skipped)"
    info = check_video(video)
    if abs(info.fps - FPS) > 0.01:
        log.warning("%s runs at %.3f fps: resampling to %d fps (frames picked by timestamp; audio stays aligned)",
                    video, info.fps, FPS)
    out_dir = data_dir / "ori_imgs"
    out_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / FRAMES_META).unlink(missing_ok=True)
    tmp_dir = out_dir / ".frames_tmp"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir()
    try:
        video_s = _video_seconds(video, info.duration)
        expected = int(round(video_s * FPS))
        try:
            n = _write_jpgs(subject_frames(video), tmp_dir, expected, progress)
        except (OSError, RuntimeError) as e:  # ffmpeg gave up on a damaged file before the first frame
            raise PreprocessError(f"Could not decode {video}: {str(e).strip().splitlines()[0]}; the file is "
                                  f"truncated or not a video; re-export it") from e
        if n == 0:
            raise PreprocessError(f"Could not decode any frame from {video}: the file is truncated or not a video")
        if n < expected - 2:
            log.warning("%s: decoded %d frames but its header says %.2f s of video = %d frames: the file looks "
                        "truncated; using the %d decoded frames", video, n, video_s, expected, n)
        for i in range(n):
            os.replace(tmp_dir / f"{i}.jpg", frame_path(data_dir, i))
        for stale in out_dir.glob("*.jpg"):  # frames left from an earlier, longer run
            if stale.stem.isdigit() and int(stale.stem) >= n:
                stale.unlink()
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    save_json(data_dir / FRAMES_META, {"n_frames": n, "fps": FPS, "width": info.width, "height": info.height,
                                       "source": str(video), "source_fps": info.fps,
                                       "source_duration": info.duration, "has_audio": info.has_audio,
                                       "video_start": _video_start(video)})
    note = f" (resampled from {info.fps:g} fps)" if abs(info.fps - FPS) > 0.01 else ""
    return f"frames: {n} frames {info.width}x{info.height} at {FPS} fps{note} -> ori_imgs/"


def _video_seconds(video: Path, container_s: float) -> float:
    """The video stream's length from the header (the container's may be longer: a longer audio track)."""
    cap = cv2.VideoCapture(str(video))
    try:
        count, fps = cap.get(cv2.CAP_PROP_FRAME_COUNT), cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()
    return count / fps if count > 0 and fps > 0 else container_s


def _video_start(video: Path) -> float:
    try:
        return video_start(video)
    except (RuntimeError, ValueError):  # no ffmpeg here (OpenCV decoded the frames: they start at 0 for it too)
        return 0.0


# ----------------------------------------------------------------------------- task 1: audio
def _wav_samples(path: Path) -> int:
    import soundfile as sf

    return sf.info(str(path)).frames


def split_audio(wav: Path, n_frames: int, train_out: Path, novel_out: Path) -> tuple[int, int]:
    """Cut a 16 kHz wav at frame int(N*10/11) (640 samples a frame). Returns the two frame counts."""
    import soundfile as sf

    audio, sr = sf.read(str(wav), dtype="int16")
    if sr != SAMPLE_RATE:
        raise PreprocessError(f"{wav} is {sr} Hz, expected {SAMPLE_RATE}: delete it and rerun --task 1")
    n_train = n_train_frames(n_frames)
    cut = min(n_train * SAMPLES_PER_FRAME, len(audio))
    for path, part in ((train_out, audio[:cut]), (novel_out, audio[cut:])):
        with atomic_path(path) as tmp:
            sf.write(str(tmp), part, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    return n_train, n_frames - n_train


def audio_complete(data_dir: Path, extractor: str) -> bool:
    """aud.wav, its split and the three feature files exist, match the frame count and are newer."""
    from data_utils.audio_features import feature_path, load_features

    data_dir = Path(data_dir)
    wavs = [data_dir / f for f in ("aud.wav", "aud_train.wav", "aud_novel.wav")]
    try:
        n = frame_count(data_dir)
    except PreprocessError:
        return False
    if not all(w.is_file() for w in wavs):
        return False
    n_train = n_train_frames(n)
    if _wav_samples(wavs[1]) != min(n_train * SAMPLES_PER_FRAME, _wav_samples(wavs[0])):
        return False
    for wav, rows in zip(wavs, (n, n_train, n - n_train)):
        feat = feature_path(wav, extractor)
        if not feat.is_file() or feat.stat().st_mtime < wav.stat().st_mtime:
            return False
        try:
            if load_features(feat, expected_extractor=extractor).array.shape[0] != rows:
                return False
        except (ValueError, OSError):
            return False
    return True


def run_audio(data_dir: Path, force: bool = False, video: Path | None = None, extractor: str = "phoneme",
              n_frames: int | None = None, also: tuple[str, ...] | None = None, **feature_opts) -> str:
    """aud.wav (16 kHz mono from any rate and channel count), the train/novel split, and features.

    Features of `extractor` (the motion nets') and of the kinds in `also` (default: the audio-to-mouth
    model's, phoneme and mel); `feature_opts` go to `extractor`'s. `n_frames` defaults to the extracted
    frame count (else round(duration * 25)); aud.wav features get exactly that many rows. Raises
    NoAudioError when the video has no audio track.
    """
    from data_utils.audio.registry import MOUTH_FEATURES

    data_dir = Path(data_dir)
    video = Path(video) if video is not None else data_dir / f"{data_dir.name}.mp4"
    aud = data_dir / "aud.wav"
    kinds = list(dict.fromkeys([extractor, *(MOUTH_FEATURES if also is None else also)]))
    if not force and n_frames is None and all(audio_complete(data_dir, k) for k in kinds):
        return f"audio: aud.wav, split and {', '.join(kinds)} features already done (skipped)"
    if force or not aud.is_file():
        info = check_video(video)
        if not info.has_audio:
            raise NoAudioError(f"{video} has no audio track: add one (ffmpeg -i {video.name} -i speech.wav -map 0:v "
                               f"-map 1:a -c:v copy out.mp4) or put a 16 kHz aud.wav in {data_dir}")
        try:
            extract_audio(video, aud, sample_rate=SAMPLE_RATE)
        except ValueError as e:
            raise PreprocessError(str(e)) from e
    if n_frames is None:
        try:
            n_frames = frame_count(data_dir)
        except PreprocessError:
            n_frames = int(round(check_video(video).duration * FPS))
    train, novel = data_dir / "aud_train.wav", data_dir / "aud_novel.wav"
    n_train = n_train_frames(n_frames)
    cut = min(n_train * SAMPLES_PER_FRAME, _wav_samples(aud))
    if force or not (train.is_file() and novel.is_file() and _wav_samples(train) == cut
                     and _wav_samples(novel) == _wav_samples(aud) - cut):
        split_audio(aud, n_frames, train, novel)
    from data_utils.audio_features import (AudioFeatures, feature_path, load_features, run_audio_features,
                                           save_features)  # lazy: heavy imports

    # One extraction over the whole track per kind; the train/novel features are its rows cut at the
    # split (the same numbers the trainer indexes by frame, and half the work of extracting each part).
    shapes = {}
    for kind in kinds:
        opts = feature_opts if kind == extractor else {}
        full = load_features(run_audio_features(aud, kind, n_frames=n_frames, force=force, **opts),
                             expected_extractor=kind)
        shapes[kind] = tuple(full.array.shape)
        for wav, rows in ((train, slice(0, n_train)), (novel, slice(n_train, n_frames))):
            part = AudioFeatures(np.ascontiguousarray(full.array[rows]), kind, full.fps, full.sample_rate,
                                 dict(full.meta, source=str(wav), cut_from=f"{aud.name} frames {rows.start}:{rows.stop}"))
            save_features(feature_path(wav, kind), part)
    secs = _wav_samples(aud) / SAMPLE_RATE
    return (f"audio: aud.wav {secs:.2f} s 16 kHz mono, split at frame {n_train}/{n_frames}; features "
            + ", ".join(f"{k} {s}" for k, s in shapes.items()))

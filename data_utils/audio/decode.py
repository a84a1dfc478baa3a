"""Decoding and resampling: any audio or video file -> float32 mono at 16 kHz in [-1, 1].

Every input goes through the ffmpeg binary that `imageio-ffmpeg` ships, so wav, flac, mp3, ogg,
aac/mp4, mkv ... all take one path: the first audio stream is resampled with libsoxr (very high
quality) and piped out as a float32 wav, whose channels are then averaged (ffmpeg's own mono
downmix scales stereo by 1/sqrt(2) instead of taking the mean).
"""
from __future__ import annotations

import io
import logging
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from utils.video_io import ffmpeg_exe

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000  # every extractor works on 16 kHz audio
FPS = 25  # video frame rate the features are aligned to
HOP = SAMPLE_RATE // 50  # 320 samples = one 50-fps feature step (two per video frame)


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode the first audio stream of any media file.

    Args:
        path: audio or video file (any format, sample rate and channel count ffmpeg reads).
        sample_rate: output rate in Hz.

    Returns:
        float32 array [S] (mono), clipped to [-1, 1].

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: empty file, not a media file, no audio stream, or no samples.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Audio file does not exist: {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"Audio file is empty (0 bytes): {path}")
    cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-vn",
           "-af", f"aresample=resampler=soxr:osr={int(sample_rate)}", "-c:a", "pcm_f32le", "-f", "wav", "pipe:1"]
    res = subprocess.run(cmd, capture_output=True)
    if res.returncode != 0:
        err = res.stderr.decode(errors="replace")
        if "matches no streams" in err:
            raise ValueError(f"File has no audio stream: {path}")
        last = [ln for ln in err.strip().splitlines() if ln.strip()][-1:] or ["unknown ffmpeg error"]
        raise ValueError(f"Not a readable audio file: {path} ({last[0].strip()})")
    try:
        audio, sr = sf.read(io.BytesIO(res.stdout), dtype="float32", always_2d=True)  # [S, channels]
    except (RuntimeError, sf.LibsndfileError) as e:  # a header with no data
        raise ValueError(f"Audio file contains no samples: {path}") from e
    assert sr == sample_rate, (sr, sample_rate)
    audio = audio.mean(axis=1)  # [S]
    if audio.size == 0:
        raise ValueError(f"Audio file contains no samples: {path}")
    if not np.all(np.isfinite(audio)):
        raise ValueError(f"Audio file decodes to non-finite samples: {path}")
    return np.clip(audio, -1.0, 1.0).astype(np.float32, copy=False)


def n_video_frames(n_samples: int, sample_rate: int = SAMPLE_RATE, fps: int = FPS) -> int:
    """Video frames covered by `n_samples` of audio: round(duration * fps), halves rounded up.

    Integer arithmetic, so 0.1 s at 25 fps gives exactly 3 (2.5 rounded up) on every platform.
    """
    return int((2 * n_samples * fps + sample_rate) // (2 * sample_rate))


def as_audio_array(audio: np.ndarray) -> np.ndarray:
    """Validate an in-memory waveform: [S] or [S, channels] float/int -> float32 mono [S]."""
    arr = np.asarray(audio)
    if np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.float32) / float(max(-np.iinfo(arr.dtype).min, np.iinfo(arr.dtype).max))
    if arr.ndim == 2:
        arr = arr.mean(axis=1)
    if arr.ndim != 1:
        raise ValueError(f"audio array must be [S] or [S, channels], got shape {arr.shape}")
    arr = arr.astype(np.float32, copy=False)
    if arr.size == 0:
        raise ValueError("audio array is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError("audio array has NaN or inf samples")
    return arr

"""From audio to `AudioFeatures`: decode, pad to the video length, run an extractor, lay out."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from data_utils.audio.decode import FPS, SAMPLE_RATE, as_audio_array, load_audio, n_video_frames
from data_utils.audio.features import AudioFeatures, feature_path, load_features, save_features
from data_utils.audio.registry import get_extractor
from data_utils.audio.windowing import pair_frames, window_frames

log = logging.getLogger(__name__)

SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640


def _labels(extractor: str) -> list[str] | None:
    if extractor == "phoneme":
        from data_utils.audio.phoneme import phoneme_labels

        return phoneme_labels()
    if extractor == "pocketsphinx":
        from data_utils.audio.sphinx import PHONES

        return list(PHONES)
    return None


def extract_features(audio: str | Path | np.ndarray, extractor: str = "phoneme", n_frames: int | None = None,
                     progress: bool = False, **opts) -> AudioFeatures:
    """Audio features aligned to 25 fps video frames.

    Args:
        audio: a media file (any format/rate/channels) or a float array [S] at 16 kHz.
        extractor: a name in `EXTRACTORS` (phoneme, pocketsphinx, mel, deepspeech, hubert).
        n_frames: the video's frame count N. Default round(duration * 25). When it differs from the
            audio by more than one frame a warning is logged; missing audio is padded with silence
            and extra audio is cut off.
        progress: tqdm bar over chunks of long audio.
        **opts: extractor options (see each module), e.g. model= for hubert, graph_path= for deepspeech.

    Returns:
        AudioFeatures with array [N, 16, C] (hubert: [N, 2, C]).
    """
    spec = get_extractor(extractor)
    unknown = sorted(set(opts) - set(spec.options))
    if unknown:
        raise ValueError(f"extractor '{extractor}' takes no option(s) {', '.join(unknown)} "
                         f"(it takes: {', '.join(spec.options) or 'none'})")
    if "progress" in spec.options:
        opts["progress"] = progress
    source = None
    if isinstance(audio, (str, Path)):
        source = str(audio)
        wav = load_audio(audio)
    else:
        wav = as_audio_array(audio)
    n_samples = wav.shape[0]
    n_audio = n_video_frames(n_samples)
    n = n_audio if n_frames is None else int(n_frames)
    what = source or "audio array"
    if n_frames is not None and abs(n - n_audio) > 1:
        log.warning("%s lasts %.2f s = %d frames at %d fps but %d frames are needed: %s", what,
                    wav.shape[0] / SAMPLE_RATE, n_audio, FPS, n,
                    "padding with silence" if n > n_audio else "cutting the end off")
    if n <= 0:
        raise ValueError(f"{what} is too short for one video frame ({wav.shape[0] / SAMPLE_RATE:.3f} s)")
    if wav.shape[0] < n * SAMPLES_PER_FRAME:  # silence for video frames without audio
        wav = np.pad(wav, (0, n * SAMPLES_PER_FRAME - wav.shape[0]))

    t0 = time.perf_counter()
    steps = np.asarray(spec.steps(wav, **opts), dtype=np.float32)  # [T, C] at 50 fps
    if steps.ndim != 2 or not np.all(np.isfinite(steps)):
        raise ValueError(f"extractor '{extractor}' returned a bad stream for {what} (shape {steps.shape}, NaN/inf?)")
    array = window_frames(steps, n) if spec.window == 16 else pair_frames(steps, n)
    elapsed = time.perf_counter() - t0

    meta = {"duration_s": round(n_samples / SAMPLE_RATE, 4),
            "n_frames_audio": n_audio, "step_fps": 50,
            "layout": "window i = 50-fps steps 2i-8..2i+7, zero-padded" if spec.window == 16
            else "pair i = 50-fps steps 2i, 2i+1",
            "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in opts.items()
                        if isinstance(v, (int, float, str, bool, Path)) and k != "progress"},
            "seconds": round(elapsed, 3)}
    if source:
        meta["source"] = source
    labels = _labels(extractor)
    if labels is not None:
        meta["labels"] = labels
    log.info("%s: %s features %s in %.2f s", what, extractor, array.shape, elapsed)
    return AudioFeatures(array=array, extractor=extractor, meta=meta)


def run_audio_features(wav_path: str | Path, extractor: str = "phoneme", out: str | Path | None = None,
                       n_frames: int | None = None, force: bool = False, **opts) -> Path:
    """Extract and save features of `wav_path` (default `<stem>_<postfix>.npy` beside it).

    Skips the work when `out` already holds features of this kind, newer than the audio and with
    the requested frame count (unless `force`). Returns the .npy path.
    """
    wav_path = Path(wav_path)
    out = Path(out) if out is not None else feature_path(wav_path, extractor)
    if not force and out.is_file() and wav_path.is_file() and out.stat().st_mtime >= wav_path.stat().st_mtime:
        try:
            old = load_features(out, expected_extractor=extractor)
            if n_frames is None or old.n_frames == n_frames:
                log.info("%s is up to date, skipping", out)
                return out
        except ValueError:
            pass
    return save_features(out, extract_features(wav_path, extractor, n_frames=n_frames, **opts))

"""The feature container and its files: `<stem>_<postfix>.npy` plus a sidecar `<stem>_<postfix>.json`.

The .npy holds the plain array, so upstream's trainer (np.load) reads it as before; the sidecar
records the kind, shape, frame rate and sample rate, so our loader refuses features of another
kind or a wrong shape instead of training on them silently.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from data_utils.audio.decode import FPS, SAMPLE_RATE
from data_utils.audio.registry import EXTRACTORS, get_extractor
from utils.io_utils import save_json, save_npy

log = logging.getLogger(__name__)

FORMAT = "degstalk-audio-features"
FORMAT_VERSION = 1


@dataclass
class AudioFeatures:
    """Audio features aligned to video frames.

    array: [N, 16, C] windows (phoneme, pocketsphinx, mel, deepspeech) or [N, 2, C] (hubert).
    """

    array: np.ndarray  # [N, W, C]
    extractor: str
    fps: float = FPS
    sample_rate: int = SAMPLE_RATE
    meta: dict[str, Any] = field(default_factory=dict)  # duration_s, labels, source, options ...

    @property
    def n_frames(self) -> int:
        return int(self.array.shape[0])

    def sidecar(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": FORMAT_VERSION, "extractor": self.extractor,
                "shape": list(self.array.shape), "dtype": str(self.array.dtype), "fps": self.fps,
                "sample_rate": self.sample_rate, "meta": self.meta}


def feature_path(wav_path: str | Path, extractor: str) -> Path:
    """`<stem>_<postfix>.npy` beside the audio file (ds, hu, ph, ps, mel)."""
    wav_path = Path(wav_path)
    return wav_path.with_name(f"{wav_path.stem}_{get_extractor(extractor).postfix}.npy")


def sidecar_path(npy_path: str | Path) -> Path:
    return Path(npy_path).with_suffix(".json")


def _npy_path(path_or_stem: str | Path) -> Path:
    path = Path(path_or_stem)
    return path if path.suffix == ".npy" else path.with_name(path.name + ".npy")


def check_layout(shape: tuple[int, ...], extractor: str, where: str | Path) -> None:
    """Raise ValueError unless `shape` is [N, W, C] with the extractor's window (and C when fixed)."""
    spec = get_extractor(extractor)
    c_text = spec.channels if spec.channels is not None else "C"
    if len(shape) != 3 or shape[1] != spec.window or (spec.channels is not None and shape[2] != spec.channels):
        raise ValueError(f"{where}: shape {tuple(shape)} is not {extractor} features [N, {spec.window}, {c_text}]")


def save_features(path_or_stem: str | Path, feats: AudioFeatures) -> Path:
    """Write `<stem>.npy` (float32 array) and `<stem>.json` (sidecar) atomically; return the .npy path."""
    npy = _npy_path(path_or_stem)
    check_layout(feats.array.shape, feats.extractor, npy)
    save_npy(npy, np.ascontiguousarray(feats.array, dtype=np.float32))
    save_json(sidecar_path(npy), feats.sidecar())
    return npy


def infer_extractor(shape: tuple[int, ...]) -> str | None:
    """Guess the kind of a sidecar-less array (e.g. made by the original pipeline) from its shape."""
    if len(shape) != 3:
        return None
    if shape[1] == 2:
        return "hubert"
    fixed = [n for n, e in EXTRACTORS.items() if e.window == shape[1] and e.channels == shape[2]]
    if fixed:
        return fixed[0]
    return "mel" if shape[1] == 16 else None


def load_features(path: str | Path, expected_extractor: str | None = None) -> AudioFeatures:
    """Read features written by `save_features` (or a plain upstream .npy).

    Raises:
        FileNotFoundError: no such .npy.
        ValueError: the kind differs from `expected_extractor`, the array's shape differs from the
            sidecar's, or the shape does not fit the kind.
    """
    npy = _npy_path(path)
    if not npy.is_file():
        raise FileNotFoundError(f"Audio features do not exist: {npy}")
    try:
        array = np.load(npy, allow_pickle=False)  # a feature file may come from elsewhere: data only
    except (ValueError, OSError, EOFError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ValueError(f"{npy} is damaged ({first}); re-extract the features: python data_utils/process.py "
                         f"<video> --task 1 --force") from e
    side = sidecar_path(npy)
    if side.is_file():
        info = json.loads(side.read_text())
        if info.get("format") != FORMAT:
            raise ValueError(f"{side} is not an audio-feature sidecar (format {info.get('format')!r})")
        if int(info.get("version", 0)) > FORMAT_VERSION:
            raise ValueError(f"{side} was written by a newer version (format {info['version']} > {FORMAT_VERSION})")
        extractor = info["extractor"]
        if list(array.shape) != list(info["shape"]):
            raise ValueError(f"{npy}: array shape {list(array.shape)} differs from its sidecar {info['shape']} "
                             f"({side.name}); re-extract the features")
        fps, sample_rate, meta = float(info["fps"]), int(info["sample_rate"]), dict(info.get("meta", {}))
    else:
        extractor = expected_extractor or infer_extractor(array.shape)
        if extractor is None:
            raise ValueError(f"{npy}: no sidecar {side.name} and shape {array.shape} fits no known extractor")
        log.warning("%s has no sidecar %s; taking it as %s features from its shape %s",
                    npy, side.name, extractor, array.shape)
        fps, sample_rate, meta = float(FPS), SAMPLE_RATE, {}
    if expected_extractor is not None and extractor != expected_extractor:
        raise ValueError(f"{npy} holds '{extractor}' features but '{expected_extractor}' features are expected "
                         f"(re-extract with --extractor {expected_extractor}, or train with --audio_extractor {extractor})")
    check_layout(array.shape, extractor, npy)
    return AudioFeatures(array=array.astype(np.float32, copy=False), extractor=extractor, fps=fps,
                         sample_rate=sample_rate, meta=meta)

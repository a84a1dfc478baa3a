"""The extractor registry: name -> how to compute a 50-fps stream and how to lay it out."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Extractor:
    name: str
    postfix: str  # file name postfix: <stem>_<postfix>.npy
    window: int  # 16: [N, 16, C] windows; 2: [N, 2, C] pairs
    channels: int | None  # C when fixed by the model, None when it depends on options
    description: str
    steps: Callable[..., np.ndarray]  # (audio [S] at 16 kHz, **opts) -> [T, C] at 50 fps
    options: tuple[str, ...] = ()  # keyword options `steps` accepts


def _phoneme(audio, **opts):
    from data_utils.audio.phoneme import phoneme_posteriors

    return phoneme_posteriors(audio, **opts)


def _pocketsphinx(audio, **opts):
    from data_utils.audio.sphinx import allphone_steps

    return allphone_steps(audio, **opts)


def _mel(audio, **opts):
    from data_utils.audio.mel import mel_steps

    return mel_steps(audio, **opts)


def _deepspeech(audio, **opts):
    from data_utils.audio.deepspeech import deepspeech_steps

    return deepspeech_steps(audio, **opts)


def _hubert(audio, **opts):
    from data_utils.audio.hubert import hubert_steps

    return hubert_steps(audio, **opts)


EXTRACTORS: dict[str, Extractor] = {e.name: e for e in [
    Extractor("phoneme", "ph", 16, 191,
              "hama IPA phone posteriors (model in the hama wheel, offline; the default)", _phoneme,
              ("chunk_s", "context_s", "lag_steps", "workers", "progress")),
    Extractor("pocketsphinx", "ps", 16, 42,
              "pocketsphinx allphone phone segments, one-hot over 42 phones (model in the wheel)",
              _pocketsphinx, ("chunk_s", "context_s", "progress")),
    Extractor("mel", "mel", 16, None, "weight-free log-mel, 80 bands, per-utterance normalised", _mel,
              ("n_mels", "chunk_s", "progress")),
    Extractor("deepspeech", "ds", 16, 29,
              "DeepSpeech v0.1.0 logits (needs deepspeech-0_1_0-b90017e8.pb and tensorflow)", _deepspeech,
              ("graph_path", "net_fn")),
    Extractor("hubert", "hu", 2, None,
              "HuBERT last hidden states (needs a local checkpoint and transformers)", _hubert,
              ("model", "device", "chunk_s", "context_s", "progress")),
]}

POSTFIXES = {name: e.postfix for name, e in EXTRACTORS.items()}
# What the audio-to-mouth model reads by default (scene/models/audio_to_mouth.py): both offline, both always
# written by preprocessing, whatever extractor the motion nets use.
MOUTH_FEATURES = ("phoneme", "mel")


def get_extractor(name: str) -> Extractor:
    try:
        return EXTRACTORS[name]
    except KeyError:
        raise ValueError(f"unknown audio extractor '{name}' (choose from {', '.join(EXTRACTORS)})") from None

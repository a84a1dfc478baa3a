"""`pocketsphinx` features and forced alignment (US-English acoustic model shipped in the wheel).

* features: allphone decoding (phone n-gram, no words) gives phone segments at 100 fps; they
  become one-hot vectors over the model's 42 context-independent phones (39 ARPAbet phones,
  SIL and the noise phones +NSN+ / +SPN+), averaged in pairs to the 50-fps grid -> [T, 42].
* `align_text`: forced alignment of a known transcript -> phone segments; the reference the
  `phoneme` features are checked against (docs/audio.md).
"""
from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass

import numpy as np

from data_utils.audio.chunking import run_chunked
from data_utils.audio.decode import HOP, SAMPLE_RATE

# Context-independent phones of pocketsphinx's en-us model (its mdef), in the model's order.
PHONES = ("+NSN+", "+SPN+", "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER",
          "EY", "F", "G", "HH", "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R",
          "S", "SH", "SIL", "T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH")
_INDEX = {p: i for i, p in enumerate(PHONES)}
SPHINX_FPS = 100  # pocketsphinx frame rate (10 ms)


@dataclass(frozen=True)
class PhoneSegment:
    phone: str  # ARPAbet symbol without stress, or SIL / +NSN+ / +SPN+
    start_s: float
    end_s: float


def _int16_bytes(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def _model_dir() -> str:
    import pocketsphinx

    return os.path.join(pocketsphinx.get_model_path(), "en-us")


@functools.lru_cache(maxsize=1)
def _allphone_decoder():
    import pocketsphinx

    # Settings recommended by the pocketsphinx docs for phone recognition.
    return pocketsphinx.Decoder(allphone=os.path.join(_model_dir(), "en-us-phone.lm.bin"), lw=2.0,
                                beam=1e-20, pbeam=1e-20, samprate=SAMPLE_RATE, loglevel="FATAL")


def _segments_to_frames(segments: list[tuple[str, int, int]], n_frames: int) -> np.ndarray:
    """[(phone, first, last)] at 100 fps -> indices [n_frames] into PHONES (SIL where uncovered)."""
    idx = np.full(n_frames, _INDEX["SIL"], dtype=np.int64)
    for phone, first, last in segments:
        idx[max(0, first):min(n_frames, last + 1)] = _INDEX.get(phone, _INDEX["SIL"])
    return idx


def _allphone_steps(audio: np.ndarray) -> np.ndarray:
    """samples [s] -> phone occupancy [s // 320 + 1, 42] on the 50-fps grid."""
    dec = _allphone_decoder()
    dec.start_utt()
    dec.process_raw(_int16_bytes(audio), full_utt=True)
    dec.end_utt()
    segs = [(s.word, s.start_frame, s.end_frame) for s in dec.seg()]
    t50 = audio.shape[0] // HOP + 1
    idx = _segments_to_frames(segs, 2 * t50)  # [2 t50] at 100 fps
    onehot = np.zeros((2 * t50, len(PHONES)), dtype=np.float32)
    onehot[np.arange(2 * t50), idx] = 1.0
    return onehot.reshape(t50, 2, len(PHONES)).mean(axis=1)  # [t50, 42]


def allphone_steps(audio: np.ndarray, *, chunk_s: float = 30.0, context_s: float = 2.0,
                   progress: bool = False) -> np.ndarray:
    """Phone occupancy of 16 kHz audio [S] on the 50-fps grid: [S // 320 + 1, 42], rows sum to 1."""
    return run_chunked(audio, _allphone_steps, chunk_s=chunk_s, context_s=context_s,
                       progress=progress, desc="pocketsphinx")


def normalize_transcript(text: str) -> list[str]:
    """Lower-case words, punctuation removed (apostrophes kept), for dictionary lookup."""
    return re.sub(r"[^a-z' ]+", " ", text.lower().replace("-", " ")).split()


def align_text(audio: np.ndarray, text: str) -> list[PhoneSegment]:
    """Forced alignment of `text` (English words of CMUdict) to 16 kHz audio [S].

    Returns:
        phone segments covering the utterance, SIL included.

    Raises:
        ValueError: a word is not in the dictionary, or the alignment fails.
    """
    import pocketsphinx

    words = normalize_transcript(text)
    if not words:
        raise ValueError("empty transcript")
    dec = pocketsphinx.Decoder(lm=None, samprate=SAMPLE_RATE, loglevel="FATAL")  # no n-gram: alignment only
    missing = [w for w in words if dec.lookup_word(w) is None]
    if missing:
        raise ValueError(f"words not in the pocketsphinx dictionary: {', '.join(missing)}")
    raw = _int16_bytes(audio)
    dec.set_align_text(" ".join(words))
    dec.start_utt()
    dec.process_raw(raw, full_utt=True)
    dec.end_utt()
    dec.set_alignment()  # a second pass gives phone-level timings
    dec.start_utt()
    dec.process_raw(raw, full_utt=True)
    dec.end_utt()
    alignment = dec.get_alignment()
    if alignment is None:
        raise ValueError("pocketsphinx could not align the transcript to the audio")
    return [PhoneSegment(p.name, p.start / SPHINX_FPS, (p.start + p.duration) / SPHINX_FPS)
            for p in alignment.phones()]

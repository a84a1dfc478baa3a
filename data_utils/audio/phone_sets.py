"""A coarse, lip-oriented phone set shared by IPA (hama) and ARPAbet (pocketsphinx), and the
frame-agreement measure used to check `phoneme` features against a forced alignment."""
from __future__ import annotations

from typing import Sequence

import numpy as np

# 14 classes: silence, consonants by place (what the lips and tongue tip show), vowels by shape.
_CLASSES = {
    "sil": ("SIL +NSN+ +SPN+", ""),
    "bilabial": ("P B M", "p b m"),
    "labiodental": ("F V", "f v"),
    "dental": ("TH DH", "θ ð"),
    "alveolar": ("T D N L", "t d n l ɾ ɫ"),
    "sibilant": ("S Z", "s z"),
    "postalveolar": ("SH ZH CH JH", "ʃ ʒ t͡ʃ d͡ʒ"),
    "velar_glottal": ("K G NG HH", "k g ɡ ŋ h"),
    "rhotic": ("R ER", "ɹ r ɝ ɚ ɻ"),
    "w": ("W", "w"),
    "y": ("Y", "j"),
    "front": ("IY IH EY EH AE", "i ɪ e eɪ ɛ æ"),
    "open": ("AA AH AY AW", "ɑ a ʌ ə aɪ aʊ ɐ"),
    "rounded": ("AO OW UH UW OY", "u ʊ o oʊ ɔ ɔɪ ɒ"),
}
COARSE_CLASSES = tuple(_CLASSES)
ARPABET_TO_COARSE = {p: c for c, (arpa, _) in _CLASSES.items() for p in arpa.split()}
IPA_TO_COARSE = {p: c for c, (_, ipa) in _CLASSES.items() for p in ipa.split()}


def segments_to_steps(segments, n_steps: int, step_s: float = 0.02) -> np.ndarray:
    """Coarse label of each 50-fps step from phone segments (objects with phone, start_s, end_s).

    Steps no segment covers are "sil"; ARPAbet stress digits are ignored.
    """
    labels = np.full(n_steps, "sil", dtype=object)
    for seg in segments:
        first = int(np.ceil(seg.start_s / step_s - 1e-9))
        last = int(np.ceil(seg.end_s / step_s - 1e-9))  # exclusive
        phone = seg.phone.rstrip("012")
        labels[max(0, first):min(n_steps, last)] = ARPABET_TO_COARSE.get(phone, "sil")
    return labels


def posteriors_to_steps(probs: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """Coarse label of each step from CTC posteriors [T, C]: the phone of the nearest emission.

    A CTC model marks each phone with a short peak and fills the rest with `<blank>`; every step
    takes the phone whose emission (argmax change to a phone token) lies closest in time.
    Tokens outside the coarse map (Korean-only symbols, diacritics) count as "other".
    """
    assert probs.ndim == 2 and probs.shape[1] == len(labels), probs.shape
    best = probs.argmax(axis=1)
    skip = {labels.index(t) for t in ("<blank>", "<wb>", "<pad>", "<sos>", "<eos>", "<unk>", " ") if t in labels}
    emit_steps = [t for t in range(len(best)) if best[t] not in skip and (t == 0 or best[t] != best[t - 1])]
    if not emit_steps:
        return np.full(len(best), "sil", dtype=object)
    emit_steps = np.array(emit_steps)
    emit_labels = np.array([IPA_TO_COARSE.get(labels[best[t]], "other") for t in emit_steps], dtype=object)
    nearest = np.abs(np.arange(len(best))[:, None] - emit_steps[None, :]).argmin(axis=1)
    return emit_labels[nearest]


def frame_agreement(predicted: np.ndarray, reference: np.ndarray, speech_only: bool = True) -> float:
    """Fraction of steps whose coarse labels agree (only steps the reference calls speech by default)."""
    n = min(len(predicted), len(reference))
    predicted, reference = predicted[:n], reference[:n]
    mask = reference != "sil" if speech_only else np.ones(n, dtype=bool)
    return float((predicted[mask] == reference[mask]).mean()) if mask.any() else float("nan")

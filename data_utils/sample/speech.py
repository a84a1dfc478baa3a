"""Built-in speech for the sample subject: eSpeak NG text-to-speech, offline, with phoneme timings.

The `espeakng-loader` wheel ships the eSpeak NG shared library and its voice data; we drive it
through ctypes in synchronous mode, so the audio comes back as int16 samples together with one
event per phoneme (start time in ms, eSpeak's ASCII phoneme name). The same text, voice and rate
always give the same samples.

    speech = speak("Hello there.", voice="en-us+f3")        # Speech(samples [S] float32, sample_rate, phonemes)
    open_, round_ = viseme_tracks(speech.phonemes, n_frames, fps=25)   # [T], [T] in [0, 1]
"""
from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

# espeak_AUDIO_OUTPUT / option / event / position constants of speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS, _INIT_DONT_EXIT = 0x0001, 0x8000
_EVENT_END_OF_LIST, _EVENT_PHONEME = 0, 7
_POS_CHARACTER, _CHARS_UTF8 = 1, 1
_PARAM_RATE, _PARAM_PITCH = 1, 3


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
_engine: dict = {}


class SpeechUnavailable(RuntimeError):
    """eSpeak NG could not be loaded (the espeakng-loader wheel is missing or broken)."""


@dataclass
class Speech:
    samples: np.ndarray                    # [S] float32 in [-1, 1]
    sample_rate: int
    phonemes: list[tuple[float, str]]      # (start seconds, eSpeak phoneme name), in time order

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


def _load_engine() -> dict:
    """Load and initialise libespeak-ng once per process; returns {lib, sample_rate, chunks, events}."""
    if _engine:
        return _engine
    try:
        import espeakng_loader
    except ImportError as e:
        raise SpeechUnavailable("the built-in speech needs eSpeak NG: pip install espeakng-loader==0.2.4 "
                                "(pinned in requirements.txt)") from e
    try:
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
    except OSError as e:
        raise SpeechUnavailable(f"cannot load eSpeak NG from {espeakng_loader.get_library_path()}: {e}") from e
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                 ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(),
                                        _INIT_PHONEME_EVENTS | _INIT_DONT_EXIT)
    if sample_rate <= 0:
        raise SpeechUnavailable(f"eSpeak NG failed to initialise with data at {espeakng_loader.get_data_path()}")
    chunks: list[np.ndarray] = []
    events: list[tuple[int, str]] = []

    def on_audio(wav, n, ev):  # called synchronously from espeak_Synth
        if n > 0:
            chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
        i = 0
        while ev[i].type != _EVENT_END_OF_LIST:
            if ev[i].type == _EVENT_PHONEME:
                events.append((ev[i].audio_position, ev[i].id.decode("ascii", errors="replace")))
            i += 1
        return 0

    callback = _CALLBACK(on_audio)  # kept referenced in _engine, or ctypes frees it
    lib.espeak_SetSynthCallback(callback)
    _engine.update(lib=lib, sample_rate=sample_rate, chunks=chunks, events=events, callback=callback)
    return _engine


def speak(text: str, voice: str = "en-us", words_per_minute: int = 160, pitch: int = 50) -> Speech:
    """Synthesise `text` with eSpeak NG in a fresh process; voice e.g. "en-us+f3" (name + variant), pitch 0..100.

    eSpeak keeps state between calls that changes the next utterance by a few samples (even across
    espeak_Terminate), but the first utterance of a process with a fixed random seed is always the
    same: so each call runs in its own spawned process, and the same arguments give the same samples.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(speak_here, text, voice, words_per_minute, pitch).result()


def speak_here(text: str, voice: str = "en-us", words_per_minute: int = 160, pitch: int = 50) -> Speech:
    """`speak` in this process (its output depends on what this process synthesised before)."""
    eng = _load_engine()
    lib = eng["lib"]
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise ValueError(f"eSpeak NG has no voice {voice!r}")
    lib.espeak_SetParameter(_PARAM_RATE, int(words_per_minute), 0)
    lib.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0)
    lib.espeak_ng_SetRandSeed(ctypes.c_long(0))  # breathy variants (f1-f5) add random noise
    eng["chunks"].clear()
    eng["events"].clear()
    data = text.encode("utf-8")
    if lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None) != 0:
        raise RuntimeError("eSpeak NG could not synthesise the text")
    lib.espeak_Synchronize()
    pcm = np.concatenate(eng["chunks"]) if eng["chunks"] else np.zeros(0, np.int16)
    phonemes = [(ms / 1000.0, name) for ms, name in eng["events"]]
    return Speech(pcm.astype(np.float32) / 32768.0, int(eng["sample_rate"]), phonemes)


def pad_speech(speech: Speech, lead_s: float, tail_s: float) -> Speech:
    """Silence before and after; phoneme times shift with the lead."""
    sr = speech.sample_rate
    samples = np.concatenate([np.zeros(int(lead_s * sr), np.float32), speech.samples,
                              np.zeros(int(tail_s * sr), np.float32)])
    return Speech(samples, sr, [(t + int(lead_s * sr) / sr, p) for t, p in speech.phonemes])


def pad_to_frames(speech: Speech, fps: float = 25.0) -> Speech:
    """Silence at the end up to a whole number of video frames (so muxing never drops the last frame)."""
    n_frames = int(np.ceil(len(speech.samples) * fps / speech.sample_rate - 1e-9))
    total = int(np.ceil(n_frames * speech.sample_rate / fps))
    samples = np.concatenate([speech.samples, np.zeros(max(total - len(speech.samples), 0), np.float32)])
    return Speech(samples, speech.sample_rate, speech.phonemes)


# ---- phonemes -> mouth shape -----------------------------------------------------------------------
# (opening, rounding) targets in [0, 1] by eSpeak's English phoneme names (stress marks stripped).
_BILABIAL = {"p", "b", "m"}
_LABIODENTAL = {"f", "v"}
_ROUNDED_CONSONANTS = {"w": (0.15, 0.85), "r": (0.25, 0.35), "S": (0.2, 0.5), "Z": (0.2, 0.5),
                       "tS": (0.2, 0.5), "dZ": (0.2, 0.5)}
_VOWELS = [("aI", 0.85, 0.0), ("aU", 0.8, 0.4), ("a", 0.9, 0.05), ("A", 0.9, 0.1), ("V", 0.7, 0.0),
           ("0", 0.8, 0.4), ("eI", 0.6, 0.0), ("e", 0.65, 0.0), ("E", 0.65, 0.0), ("3", 0.45, 0.2),
           ("@", 0.45, 0.0), ("i", 0.35, 0.0), ("I", 0.35, 0.0), ("OI", 0.7, 0.6), ("O", 0.75, 0.7),
           ("oU", 0.6, 0.8), ("o", 0.6, 0.8), ("U", 0.3, 0.85), ("u", 0.3, 0.9)]


def viseme_target(phoneme: str) -> tuple[float, float]:
    """Mouth (opening, rounding) target of one eSpeak phoneme; pauses and unknown names are closed/neutral."""
    name = phoneme.strip().lstrip("'%,=")
    if not name or name.startswith("_"):
        return 0.0, 0.0
    if name in _BILABIAL:
        return 0.0, 0.1
    if name in _LABIODENTAL:
        return 0.08, 0.0
    if name in _ROUNDED_CONSONANTS:
        return _ROUNDED_CONSONANTS[name]
    for prefix, opening, rounding in _VOWELS:
        if name.startswith(prefix):
            return opening, rounding
    return 0.22, 0.0  # other consonants: t d n l s z k g h T D j N ...


def viseme_tracks(phonemes: list[tuple[float, str]], n_frames: int, fps: float = 25.0,
                  coarticulation_s: float = 0.035) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame opening and rounding [T] from phoneme start times (held, then Gaussian-smoothed)."""
    from scipy.ndimage import gaussian_filter1d

    step = 0.005  # 5 ms grid
    grid_n = int(np.ceil(n_frames / fps / step)) + 1
    opening, rounding = np.zeros(grid_n, np.float32), np.zeros(grid_n, np.float32)
    times = [t for t, _ in phonemes] + [grid_n * step]
    for k, (start, name) in enumerate(phonemes):
        a, b = int(round(start / step)), int(round(times[k + 1] / step))
        opening[a:b], rounding[a:b] = viseme_target(name)
    opening = gaussian_filter1d(opening, coarticulation_s / step)
    rounding = gaussian_filter1d(rounding, coarticulation_s / step)
    idx = np.minimum(np.round((np.arange(n_frames) + 0.5) / fps / step).astype(int), grid_n - 1)
    return opening[idx], rounding[idx]

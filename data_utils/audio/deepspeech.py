"""`deepspeech` features: upstream's DeepSpeech v0.1.0 frozen graph (user-supplied, tensorflow).

Pipeline (all numpy except `net_fn`):
  16 kHz audio in int16 scale -> MFCC (26 cepstra, 25 ms rectangular frames every 10 ms,
  26 mel filters, 512-point FFT, pre-emphasis 0.97, lifter 22, c0 replaced by log frame energy)
  -> keep every 2nd frame (50 fps) -> +-9 frames of context, zero at the ends -> rows of
  19 x 26 = 494 values, normalised by the global mean and std -> graph -> logits [T, 29] at 50 fps
  -> linearly resampled to round(len_s * 50) steps.
The graph is a bidirectional RNN; long audio is fed in overlapping row chunks (bounded memory).
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Callable

import numpy as np
from scipy.fft import dct

from data_utils.audio.errors import MissingModelError

GRAPH_NAME = "deepspeech-0_1_0-b90017e8.pb"
DEFAULT_GRAPH = Path("~/.tensorflow/models") / GRAPH_NAME  # where upstream's downloader puts it
N_CEPSTRA = 26
N_CONTEXT = 9
N_INPUT = N_CEPSTRA * (2 * N_CONTEXT + 1)  # 494
N_LOGITS = 29  # space, a-z, apostrophe, CTC blank
NetFn = Callable[[np.ndarray], np.ndarray]  # rows [T, 494] -> logits [T, 29]


def _hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


@functools.lru_cache(maxsize=4)
def _mfcc_filterbank(n_filters: int, n_fft: int, sample_rate: int) -> np.ndarray:
    """Triangular filters on FFT bins [n_filters, n_fft // 2 + 1], bins from mel points by floor."""
    mel_points = np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2.0), n_filters + 2)
    bins = np.floor((n_fft + 1) * _mel_to_hz(mel_points) / sample_rate).astype(np.int64)
    fb = np.zeros((n_filters, n_fft // 2 + 1))
    k = np.arange(n_fft // 2 + 1)
    for j in range(n_filters):
        lo, mid, hi = bins[j], bins[j + 1], bins[j + 2]
        rise = (k >= lo) & (k < mid)
        fall = (k >= mid) & (k < hi)
        fb[j, rise] = (k[rise] - lo) / (mid - lo)
        fb[j, fall] = (hi - k[fall]) / (hi - mid)
    return fb


def mfcc(signal: np.ndarray, sample_rate: int = 16000, n_cepstra: int = N_CEPSTRA, n_filters: int = 26,
         n_fft: int = 512, win_s: float = 0.025, step_s: float = 0.01, preemph: float = 0.97,
         lifter: int = 22) -> np.ndarray:
    """MFCC of a 1-D signal (the classic python_speech_features recipe, re-derived).

    Returns:
        [F, n_cepstra] float64 with F = 1 + ceil((S - win) / step) (1 for S <= win).
    """
    x = np.asarray(signal, dtype=np.float64)
    x = np.append(x[:1], x[1:] - preemph * x[:-1])
    win = int(np.floor(win_s * sample_rate + 0.5))
    step = int(np.floor(step_s * sample_rate + 0.5))
    n_frames = 1 if x.size <= win else 1 + int(np.ceil((x.size - win) / step))
    x = np.concatenate([x, np.zeros((n_frames - 1) * step + win - x.size)])
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::step][:n_frames]  # [F, win]
    power = np.abs(np.fft.rfft(frames, n_fft, axis=1)) ** 2 / n_fft  # [F, n_fft/2+1]
    eps = np.finfo(np.float64).eps
    energy = power.sum(axis=1)
    energy[energy == 0] = eps
    fbank = power @ _mfcc_filterbank(n_filters, n_fft, sample_rate).T  # [F, n_filters]
    fbank[fbank == 0] = eps
    ceps = dct(np.log(fbank), type=2, axis=1, norm="ortho")[:, :n_cepstra]
    if lifter > 0:
        ceps *= 1.0 + (lifter / 2.0) * np.sin(np.pi * np.arange(n_cepstra) / lifter)
    ceps[:, 0] = np.log(energy)
    return ceps


def deepspeech_input(audio: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """16 kHz float audio [S] -> normalised network input [T, 494] at 50 fps (T = ceil(F / 2))."""
    pcm = np.clip(np.asarray(audio, dtype=np.float64) * 32768.0, -32768, 32767).astype(np.int16)
    feats = mfcc(pcm.astype(np.float64), sample_rate)[::2]  # [T, 26] at 50 fps
    t = feats.shape[0]
    padded = np.concatenate([np.zeros((N_CONTEXT, N_CEPSTRA)), feats, np.zeros((N_CONTEXT, N_CEPSTRA))])
    rows = np.lib.stride_tricks.sliding_window_view(padded, 2 * N_CONTEXT + 1, axis=0)  # [T, 26, 19]
    rows = rows.transpose(0, 2, 1).reshape(t, N_INPUT)  # [T, 494], context-major like upstream
    std = rows.std()
    return ((rows - rows.mean()) / (std if std > 0 else 1.0)).astype(np.float32)


def resample_steps(logits: np.ndarray, n_out: int, rate_in: float = 50.0, rate_out: float = 50.0) -> np.ndarray:
    """Linear interpolation of a stream [T, C] sampled at `rate_in` onto n_out steps at `rate_out`."""
    t_in = np.arange(logits.shape[0]) / rate_in
    t_out = np.arange(n_out) / rate_out
    return np.stack([np.interp(t_out, t_in, logits[:, c]) for c in range(logits.shape[1])], axis=1).astype(np.float32)


def run_rows_chunked(rows: np.ndarray, net_fn: NetFn, chunk: int = 1500, context: int = 100) -> np.ndarray:
    """Call `net_fn` on row chunks of `chunk` rows with `context` extra rows on each side."""
    outs = []
    for a in range(0, rows.shape[0], chunk):
        b = min(rows.shape[0], a + chunk)
        first, last = max(0, a - context), min(rows.shape[0], b + context)
        out = np.asarray(net_fn(rows[first:last]))
        outs.append(out.reshape(last - first, -1)[a - first:b - first])
    return np.concatenate(outs, axis=0)


def resolve_graph(graph_path: str | os.PathLike | None = None) -> Path:
    """The graph file: the argument, else $DEEPSPEECH_PB, else ~/.tensorflow/models/<name>."""
    path = Path(graph_path or os.environ.get("DEEPSPEECH_PB") or DEFAULT_GRAPH).expanduser()
    if path.is_dir():
        path = path / GRAPH_NAME
    if not path.is_file():
        raise MissingModelError(
            f"DeepSpeech graph not found: {path}. Put {GRAPH_NAME} (unzipped from the "
            f"deepspeech_features v0.0.1 release, sha1 b90017e8...) at {DEFAULT_GRAPH} or pass "
            f"--deepspeech_pb PATH (or set DEEPSPEECH_PB).")
    return path


@functools.lru_cache(maxsize=1)
def load_graph(graph_path: Path) -> NetFn:
    """Load the frozen graph with tensorflow (an optional extra) and return rows -> logits."""
    try:
        import tensorflow as tf
    except ImportError as e:
        raise MissingModelError(
            f"The deepspeech extractor needs tensorflow to run {GRAPH_NAME} ({graph_path}): "
            f"pip install tensorflow-cpu==2.19.0 (optional extra, not in requirements.txt).") from e
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(Path(graph_path).read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="deepspeech")
    try:
        logits = graph.get_tensor_by_name("deepspeech/logits:0")
        inputs = graph.get_tensor_by_name("deepspeech/input_node:0")
        lengths = graph.get_tensor_by_name("deepspeech/input_lengths:0")
    except KeyError as e:
        raise MissingModelError(f"{graph_path} is not the DeepSpeech v0.1.0 graph ({GRAPH_NAME}): {e}") from e
    session = tf.compat.v1.Session(graph=graph)

    def net_fn(rows: np.ndarray) -> np.ndarray:
        out = session.run(logits, {inputs: rows[None].astype(np.float32), lengths: [rows.shape[0]]})
        return np.asarray(out).reshape(rows.shape[0], -1)  # graph output is time-major [T, 1, 29]

    return net_fn


def deepspeech_steps(audio: np.ndarray, *, graph_path: str | os.PathLike | None = None,
                     net_fn: NetFn | None = None, sample_rate: int = 16000) -> np.ndarray:
    """DeepSpeech logits of 16 kHz audio [S] on the 50-fps grid: [round(S / 16000 * 50), 29].

    `net_fn` replaces the graph (tests); otherwise the graph is resolved and loaded.
    """
    if net_fn is None:
        net_fn = load_graph(resolve_graph(graph_path))
    rows = deepspeech_input(audio, sample_rate)  # [T, 494]
    logits = run_rows_chunked(rows, net_fn)  # [T, 29]
    assert logits.shape == (rows.shape[0], N_LOGITS), logits.shape
    n_out = int(round(audio.shape[0] / sample_rate * 50))
    return resample_steps(logits, n_out)

"""`hubert` features: transformers' HubertModel from a local checkpoint (optional extra).

Upstream uses `facebook/hubert-large-ls960-ft` and keeps `last_hidden_state` (1024-d, one step
per 320 samples, step j reading samples 320 j .. 320 j + 400). The waveform is normalised to
zero mean / unit variance over the whole utterance when the checkpoint's feature extractor asks
for it (`do_normalize`, true for that checkpoint), then fed in overlapping chunks.
Nothing is downloaded: `model` is a local directory or a hub id already in the user's cache.
"""
from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import numpy as np

from data_utils.audio.chunking import run_chunked
from data_utils.audio.errors import MissingModelError

DEFAULT_MODEL = "facebook/hubert-large-ls960-ft"
TRANSFORMERS_PIN = "transformers==4.57.6"


def resolve_model(model: str | os.PathLike | None = None) -> str:
    """The checkpoint: the argument, else $HUBERT_MODEL, else the upstream hub id (cache only)."""
    return str(model or os.environ.get("HUBERT_MODEL") or DEFAULT_MODEL)


@functools.lru_cache(maxsize=2)
def load_hubert(model: str, device: str = "cpu"):
    """(HubertModel in eval mode, do_normalize) from a local dir or the local hub cache."""
    try:
        import transformers
    except ImportError as e:
        raise MissingModelError(
            f"The hubert extractor needs transformers (optional extra): pip install {TRANSFORMERS_PIN}") from e
    transformers.logging.set_verbosity_error()
    try:
        net = transformers.HubertModel.from_pretrained(model, local_files_only=True)
    except (OSError, ValueError) as e:
        raise MissingModelError(
            f"HuBERT checkpoint not found: {model}. Pass --hubert_model DIR (a folder with config.json "
            f"and the weights) or download {DEFAULT_MODEL} once on a machine with network "
            f"(huggingface-cli download {DEFAULT_MODEL}); nothing is downloaded at run time.") from e
    do_normalize = True
    cfg = Path(model) / "preprocessor_config.json"
    if cfg.is_file():
        do_normalize = bool(json.loads(cfg.read_text()).get("do_normalize", True))
    return net.eval().to(device), do_normalize


def hubert_steps(audio: np.ndarray, *, model: str | os.PathLike | None = None, device: str = "cpu",
                 chunk_s: float = 20.0, context_s: float = 2.0, progress: bool = False) -> np.ndarray:
    """HuBERT last hidden states of 16 kHz audio [S] on the 50-fps grid: [S // 320 + 1, hidden].

    The model yields (S - 400) // 320 + 1 steps; the missing last step repeats the one before.
    """
    import torch

    net, do_normalize = load_hubert(resolve_model(model), device)
    x = audio.astype(np.float32)
    if do_normalize:
        x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    min_len = 400  # one conv receptive field

    @torch.inference_mode()
    def frame_fn(chunk: np.ndarray) -> np.ndarray:
        if chunk.shape[0] < min_len:
            chunk = np.pad(chunk, (0, min_len - chunk.shape[0]))
        wav = torch.from_numpy(np.ascontiguousarray(chunk))[None].to(device)  # [1, s]
        return net(wav).last_hidden_state[0].float().cpu().numpy()  # [t, hidden]

    return run_chunked(x, frame_fn, chunk_s=chunk_s, context_s=context_s, progress=progress, desc="hubert")

"""Audio features for DEGSTalk: a library API and a command line.

Usage:
    python data_utils/audio_features.py --wav data/obama/aud.wav                  # phoneme -> aud_ph.npy
    python data_utils/audio_features.py --wav speech.mp3 --extractor mel --out feats/speech_mel.npy
    python data_utils/audio_features.py --wav aud.wav --extractor hubert --hubert_model ~/ckpt/hubert-large
    python data_utils/audio_features.py --wav aud.wav --extractor deepspeech --deepspeech_pb ~/deepspeech-0_1_0-b90017e8.pb
    python data_utils/audio_features.py --list

Writes `<stem>_<postfix>.npy` beside the input (ds, hu, ph, ps, mel) plus a sidecar `.json` that
records the extractor and shape. Library use:

    from data_utils.audio_features import extract_features, save_features, load_features
    feats = extract_features("aud.wav", "phoneme", n_frames=1234)   # feats.array: [1234, 16, 191]
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_utils.audio import (EXTRACTORS, FPS, POSTFIXES, SAMPLE_RATE, AudioFeatures, Extractor,  # noqa: E402
                              MissingModelError, extract_features, feature_path, load_audio, load_features,
                              n_video_frames, run_audio_features, save_features)

__all__ = ["EXTRACTORS", "FPS", "POSTFIXES", "SAMPLE_RATE", "AudioFeatures", "Extractor", "MissingModelError",
           "extract_features", "feature_path", "load_audio", "load_features", "n_video_frames",
           "run_audio_features", "save_features", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="audio_features.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Extract audio features aligned to 25 fps video frames ([N, 16, C] windows, "
                    "hubert [N, 2, C]).",
        epilog="extractors:\n" + "\n".join(f"  {n:<13} {e.description}" for n, e in EXTRACTORS.items()))
    p.add_argument("--wav", type=Path, help="input audio or video file (any format, rate, channels)")
    p.add_argument("--extractor", default="phoneme", choices=list(EXTRACTORS), help="feature kind (default phoneme)")
    p.add_argument("--out", type=Path, default=None, help="output .npy (default <stem>_<postfix>.npy beside --wav)")
    p.add_argument("--n_frames", type=int, default=None,
                   help="video frame count to match (default round(duration * 25)); pads with silence or trims")
    p.add_argument("--deepspeech_pb", default=None, help="path to deepspeech-0_1_0-b90017e8.pb (deepspeech)")
    p.add_argument("--hubert_model", default=None, help="local HuBERT checkpoint folder or cached hub id (hubert)")
    p.add_argument("--device", default="cpu", help="torch device for hubert (cpu, cuda)")
    p.add_argument("--force", action="store_true", help="recompute even when the output is up to date")
    p.add_argument("--list", action="store_true", help="list the extractors and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bar, warnings only")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        for name, e in EXTRACTORS.items():
            c = e.channels if e.channels is not None else "C"
            print(f"{name:<13} _{e.postfix}.npy  [N, {e.window}, {c}]  {e.description}")
        return 0
    if args.wav is None:
        print("error: --wav is required (see --help)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(message)s")
    opts = {}
    if args.extractor == "deepspeech" and args.deepspeech_pb:
        opts["graph_path"] = args.deepspeech_pb
    if args.extractor == "hubert":
        opts.update(model=args.hubert_model, device=args.device)
    t0 = time.perf_counter()
    try:
        out = run_audio_features(args.wav, args.extractor, out=args.out, n_frames=args.n_frames, force=args.force,
                                 progress=not args.quiet, **opts)
        feats = load_features(out, expected_extractor=args.extractor)
    except (FileNotFoundError, ValueError, MissingModelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    dt = time.perf_counter() - t0
    dur = feats.meta.get("duration_s", feats.n_frames / FPS)
    print(f"wrote {out} {list(feats.array.shape)} ({args.extractor}, {dur:.1f} s audio in {dt:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

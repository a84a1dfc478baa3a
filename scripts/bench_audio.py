"""Audio feature benchmarks: speed on a 60 s clip, memory on a long clip, phone agreement.

Usage:
    python scripts/bench_audio.py                       # speed table (60 s of cnn2.mp4's audio)
    python scripts/bench_audio.py --align               # + phone agreement with forced alignments
    python scripts/bench_audio.py --long_minutes 10     # + peak memory / speed on a 10-minute clip
    python scripts/bench_audio.py --extractors phoneme,mel --repeat 5

Prints tables; decides nothing. Timings on a shared machine are noisy: the load average is printed,
each figure is the best of --repeat runs, and CPU seconds (process time, all threads) are shown
beside wall seconds.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from data_utils.audio.decode import load_audio  # noqa: E402
from data_utils.audio_features import extract_features  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TRANSCRIPTS = {  # clip -> text, for forced alignment
    "audio/librivox_austen.wav": "and mister john dashwood had then leisure to consider how much there might be "
                                 "prudently in his power to do for them",
    "audio/jfk.flac": "and so my fellow americans ask not what your country can do for you ask what you can do "
                      "for your country",
}


def _clip(path: Path | None, seconds: float) -> np.ndarray:
    src = path or SHARED / "video" / "cnn2.mp4"
    if src.is_file():
        audio = load_audio(src)
        reps = int(np.ceil(seconds * 16000 / audio.shape[0]))
        return np.tile(audio, reps)[: int(seconds * 16000)]
    print(f"({src} not found: using synthetic audio)")
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.2 * np.sin(2 * np.pi * (150 + 50 * np.sin(t)) * t) * (0.5 + 0.5 * np.sin(6 * np.pi * t))).astype(np.float32)


def bench_speed(audio: np.ndarray, extractors: list[str], repeat: int) -> None:
    seconds = audio.shape[0] / 16000
    print(f"\n## speed: {seconds:.0f} s clip, best of {repeat}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| extractor | shape | wall s | CPU s | x real time (wall) |")
    print("|---|---|---|---|---|")
    for name in extractors:
        extract_features(audio[:16000], name)  # warm-up: model load
        best_wall, best_cpu, shape = float("inf"), float("inf"), None
        for _ in range(repeat):
            w0, c0 = time.perf_counter(), time.process_time()
            shape = extract_features(audio, name).array.shape
            best_wall = min(best_wall, time.perf_counter() - w0)
            best_cpu = min(best_cpu, time.process_time() - c0)
        print(f"| {name} | {list(shape)} | {best_wall:.2f} | {best_cpu:.2f} | {seconds / best_wall:.1f} |")


def bench_long(minutes: float, extractors: list[str]) -> None:
    """Each run in a fresh process, so its peak resident memory is its own."""
    print(f"\n## long clip: {minutes:g} min of tiled speech, fresh process per extractor, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| extractor | shape | wall s | x real time | peak RSS MB | output MB |")
    print("|---|---|---|---|---|---|")
    code = ("import sys, time, resource; sys.path.insert(0, sys.argv[3]);"
            "from scripts.bench_audio import _clip; from data_utils.audio_features import extract_features;"
            "a = _clip(None, float(sys.argv[2]) * 60); t = time.perf_counter();"
            "f = extract_features(a, sys.argv[1]); dt = time.perf_counter() - t;"
            "print(list(f.array.shape), dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, f.array.nbytes / 2**20)")
    repo = str(Path(__file__).resolve().parents[1])
    for name in extractors:
        res = subprocess.run([sys.executable, "-c", code, name, str(minutes), repo], capture_output=True, text=True)
        if res.returncode != 0:
            print(f"| {name} | failed: {res.stderr.strip().splitlines()[-1]} | | | | |")
            continue
        shape, dt, rss, out_mb = res.stdout.strip().rsplit("]", 1)[0] + "]", *res.stdout.strip().rsplit("]", 1)[1].split()
        print(f"| {name} | {shape} | {float(dt):.1f} | {minutes * 60 / float(dt):.1f} | {float(rss):.0f} | {float(out_mb):.0f} |")


def bench_align() -> None:
    from data_utils.audio.phone_sets import ARPABET_TO_COARSE, frame_agreement, posteriors_to_steps, segments_to_steps
    from data_utils.audio.sphinx import PHONES, align_text
    from data_utils.audio.windowing import unwindow_frames

    print("\n## phone agreement with a pocketsphinx forced alignment (14 coarse classes, speech steps)")
    print("| clip | speech steps | phoneme | phoneme, no lag fix | phoneme, 1 s off (chance) | pocketsphinx allphone |")
    print("|---|---|---|---|---|---|")
    for rel, text in TRANSCRIPTS.items():
        path = SHARED / rel
        if not path.is_file():
            print(f"| {rel} | missing | | | | |")
            continue
        audio = load_audio(path)
        ref = segments_to_steps(align_text(audio, text), audio.shape[0] // 320 + 1)
        feats = extract_features(audio, "phoneme")
        labels = feats.meta["labels"]
        pred = posteriors_to_steps(unwindow_frames(feats.array), labels)
        raw = posteriors_to_steps(unwindow_frames(extract_features(audio, "phoneme", lag_steps=0).array), labels)
        ps = unwindow_frames(extract_features(audio, "pocketsphinx").array)
        ps_pred = np.array([ARPABET_TO_COARSE[PHONES[i]] for i in ps.argmax(axis=1)], dtype=object)
        print(f"| {rel} | {int((ref != 'sil').sum())} | {frame_agreement(pred, ref):.3f} | "
              f"{frame_agreement(raw, ref):.3f} | {frame_agreement(np.roll(pred, 50), ref):.3f} | "
              f"{frame_agreement(ps_pred, ref):.3f} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clip", type=Path, default=None, help="audio/video to time (default ../shared/data/video/cnn2.mp4)")
    p.add_argument("--seconds", type=float, default=60.0, help="clip length for the speed table")
    p.add_argument("--extractors", default="phoneme,pocketsphinx,mel", help="comma-separated")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--long_minutes", type=float, default=0.0, help="also run a clip this long (0: skip)")
    p.add_argument("--align", action="store_true", help="also print the phone-agreement table")
    args = p.parse_args(argv)
    extractors = [e for e in args.extractors.split(",") if e]
    bench_speed(_clip(args.clip, args.seconds), extractors, args.repeat)
    if args.long_minutes > 0:
        bench_long(args.long_minutes, extractors)
    if args.align:
        bench_align()
    return 0


if __name__ == "__main__":
    sys.exit(main())

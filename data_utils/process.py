"""Preprocess one talking-head video into a training folder, fully offline.

Usage:
    python data_utils/process.py data/<ID>/<ID>.mp4                  # every step, resumable
    python data_utils/process.py data/<ID>/<ID>.mp4 --task 4 --force # redo the head pose only
    python data_utils/process.py data/<ID>/<ID>.mp4 --compact --debug
    python data_utils/process.py data/<ID>/<ID>.mp4 --audio_extractor hubert --hubert_model ~/hubert-large

Outputs go beside the video (or --data_dir) with the upstream names. Tasks (--task N runs one):
  1 audio       aud.wav, aud_train.wav, aud_novel.wav + features (aud_<postfix>.npy, one row a frame)
  2 frames      ori_imgs/<i>.jpg at 25 fps, frames.json
  3 landmarks   ori_imgs/<i>.npy [478,3], ori_imgs/<i>.lms (iBUG 68), landmarks.npy, blendshapes.npy
  4 head pose   track_params.pt, transforms_train.json, transforms_val.json
  5 parsing     parsing/<i>.png
  6 images      three steps: teeth (teeth_mask/<i>.npy, .png with --compact), background (bc.jpg),
                derived images (gt_imgs/, torso_imgs/, bg/; skipped by --compact)
  7 expression  au.csv, 3dmm.pt
  9 debug       debug/contact_sheet.png, debug/tracks.png (not in a full run unless --debug)
A full run does tasks 2, 1, 3, 4, 5, 6, 7 (2 before 1: the audio features are cut to the frame
count) and prints one line per step. Each step skips work whose outputs are complete; --force redoes
it. Writes are atomic: after Ctrl-C, rerun the same command to resume. The input is never modified.
"""
from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
from pathlib import Path
from typing import Callable

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from data_utils.frames import NoAudioError, PreprocessError, check_video  # noqa: E402
from utils.io_utils import save_json  # noqa: E402

log = logging.getLogger("process")

ORDER = [2, 1, 3, 4, 5, 6, 7, 9]
NAMES = {1: "audio", 2: "frames", 3: "landmarks", 4: "head pose", 5: "parsing", 6: "images", 7: "expression",
         9: "debug"}


def peak_rss_mb() -> float:
    """Peak resident memory of this process and of its finished children (ffmpeg), in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (ffmpeg)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def build_steps(args: argparse.Namespace, video: Path) -> dict[int, list[tuple[str, Callable[[Path, bool], str]]]]:
    """Task number -> [(name, fn(data_dir, force) -> summary)], importing each step lazily."""
    feat_opts = {}
    if args.hubert_model:
        feat_opts["model"] = args.hubert_model
    if args.deepspeech_pb:
        feat_opts["graph_path"] = args.deepspeech_pb

    def audio(d, f):
        from data_utils.frames import run_audio
        return run_audio(d, f, video=video, extractor=args.audio_extractor, **feat_opts)

    def frames(d, f):
        from data_utils.frames import run_frames
        return run_frames(d, f, video=video)

    def landmarks(d, f):
        from data_utils.landmarks import run_landmarks
        return run_landmarks(d, f, detector=args.landmarks, max_gap=args.max_gap)

    def head_pose(d, f):
        from data_utils.head_pose import run_head_pose
        opts = {"bfm_dir": args.bfm_dir} if args.tracker == "bfm" and args.bfm_dir else {}
        return run_head_pose(d, f, tracker=args.tracker, focal=args.focal, smooth_window=args.smooth_window, **opts)

    def parsing(d, f):
        from data_utils.parsing import run_parsing
        return run_parsing(d, f, backend=args.parsing, weights=args.bisenet_weights)

    def teeth(d, f):
        from data_utils.teeth import run_teeth
        # --compact: bilevel PNGs (~0.3 KB a frame) instead of upstream's bool .npy (262 KB at 512x512)
        return run_teeth(d, f, fmt="png" if args.compact else "npy")

    def background(d, f):
        from data_utils.background import run_background
        return run_background(d, f)

    def derived(d, f):
        from data_utils.background import run_derived_images
        return run_derived_images(d, f)

    def expression(d, f):
        from data_utils.expression import run_expression
        return run_expression(d, f, source=args.expression, openface_csv=args.openface_csv)

    def debug(d, f):
        from data_utils.debug_viz import run_debug
        return run_debug(d, f)

    images = [("teeth", teeth), ("background", background)]
    if not args.compact:
        images.append(("derived images", derived))
    return {1: [("audio", audio)], 2: [("frames", frames)], 3: [("landmarks", landmarks)],
            4: [("head pose", head_pose)], 5: [("parsing", parsing)], 6: images,
            7: [("expression", expression)], 9: [("debug", debug)]}


def process(video: Path, data_dir: Path, tasks: list[int], args: argparse.Namespace) -> list[dict]:
    """Run `tasks` in order; print one line per step; return per-step timings."""
    steps = build_steps(args, video)
    report = []
    for task in tasks:
        for name, fn in steps[task]:
            t0, c0 = time.perf_counter(), cpu_seconds()
            summary = fn(data_dir, args.force)
            dt = time.perf_counter() - t0
            report.append({"task": task, "step": name, "seconds": round(dt, 2), "cpu_seconds": round(cpu_seconds() - c0, 2),
                           "peak_rss_mb": round(peak_rss_mb(), 1), "summary": summary})
            print(f"[{task} {name}] {summary} ({dt:.1f} s)", flush=True)
    return report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="process.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("video", type=Path, help="input video, usually data/<ID>/<ID>.mp4 (never modified)")
    p.add_argument("--data_dir", type=Path, default=None, help="output folder (default: the video's folder)")
    p.add_argument("--task", type=int, default=-1, choices=[-1, *sorted(NAMES)],
                   help="run one task (-1 = all, see the list below; 9 = the debug plots)")
    p.add_argument("--force", action="store_true", help="redo steps whose outputs exist")
    p.add_argument("--compact", action="store_true", help="skip gt_imgs/, torso_imgs/, bg/ (the trainer rebuilds them) and write teeth masks as PNG")
    p.add_argument("--debug", action="store_true", help="also write debug/contact_sheet.png and debug/tracks.png")
    p.add_argument("--audio_extractor", "--asr", default="phoneme",
                   help="audio features: phoneme (default), pocketsphinx, mel, deepspeech, hubert")
    p.add_argument("--hubert_model", default=None, help="local HuBERT checkpoint (hubert)")
    p.add_argument("--deepspeech_pb", default=None, help="deepspeech-0_1_0-b90017e8.pb (deepspeech)")
    p.add_argument("--landmarks", default="auto", choices=["auto", "tasks", "legacy", "face_alignment"],
                   help="landmark detector (auto: Tasks FaceLandmarker if its .task file is cached, else legacy)")
    p.add_argument("--max_gap", type=int, default=5, help="longest run of face-less frames to interpolate")
    p.add_argument("--tracker", default="mediapipe", choices=["mediapipe", "bfm"], help="head-pose tracker")
    p.add_argument("--bfm_dir", type=Path, default=None, help="folder with 3DMM_info.npz and lands_info.txt (bfm tracker)")
    p.add_argument("--focal", type=float, default=None, help="fixed focal in pixels (default: searched)")
    p.add_argument("--smooth_window", type=int, default=9, help="pose smoothing window in frames (1 = off)")
    p.add_argument("--parsing", default="mediapipe", choices=["mediapipe", "bisenet"], help="face parsing backend")
    p.add_argument("--bisenet_weights", type=Path, default=None, help="79999_iter.pth (bisenet)")
    p.add_argument("--expression", default="auto", choices=["auto", "blendshapes", "pca"], help="3dmm.pt source")
    p.add_argument("--openface_csv", type=Path, default=None, help="import this OpenFace CSV as au.csv")
    p.add_argument("-v", "--verbose", action="store_true", help="log step details")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    video = args.video
    data_dir = args.data_dir or video.parent
    tasks = ORDER[:-1] + ([9] if args.debug else []) if args.task == -1 else [args.task]
    t0 = time.perf_counter()
    try:
        info = check_video(video) if (set(tasks) & {1, 2}) else None
        if info is not None and not info.has_audio and 1 in tasks:
            if args.task == 1:
                raise NoAudioError(f"{video} has no audio track: nothing to do for task 1")
            log.warning("%s has no audio track: running the video-only steps; training needs an aud.wav "
                        "(put a 16 kHz wav at %s and run --task 1)", video, data_dir / "aud.wav")
            tasks = [t for t in tasks if t != 1]
        data_dir.mkdir(parents=True, exist_ok=True)
        report = process(video, data_dir, tasks, args)
    except KeyboardInterrupt:
        print("interrupted: finished files are kept; rerun the same command to resume", file=sys.stderr)
        return 130
    except (PreprocessError, FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    total = time.perf_counter() - t0
    save_json(data_dir / "process_log.json", {"video": str(video), "tasks": tasks, "seconds": round(total, 2),
                                              "peak_rss_mb": round(peak_rss_mb(), 1), "steps": report})
    print(f"done: {len(tasks)} tasks ({len(report)} steps) in {total:.1f} s, peak RAM {peak_rss_mb():.0f} MiB "
          f"-> {data_dir}")
    if info is not None and not info.has_audio:
        print(f"WARNING: no audio track in {video}: aud.wav and audio features were not made", file=sys.stderr)
    return 0


if __name__ == "__main__":
    from utils.quiet_logs import quiet_third_party_logs

    quiet_third_party_logs()  # MediaPipe / TFLite / absl lines off the terminal
    sys.exit(main())

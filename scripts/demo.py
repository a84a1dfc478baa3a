"""One command from nothing to a talking-head video: a subject, preprocessing, a short training, new audio.

    python scripts/demo.py                                   # the built-in sample subject, auto device
    python scripts/demo.py --device cuda                     # on a GPU (a longer, sharper schedule)
    python scripts/demo.py --video me.mp4 --audio speech.wav # your own 25 fps clip and any speech file
    python scripts/demo.py --out demo_out/                   # rerun: finished steps are skipped

Steps, each skipped on a rerun when its outputs exist with the same settings:
  1 sample      without --video: data_utils/sample_subject.py writes <out>/data/hopper/hopper.mp4, a
                synthetic talking head animated from Grace Hopper's portrait with built-in speech
                (with --video: MediaPipe checks your clip for a face; it is read where it is, never
                copied or modified, so every message names your file)
  2 process     python data_utils/process.py <video> --data_dir <out>/data/<ID> --compact
  3 train       python train.py -s <out>/data/<ID> -m <out>/model/<ID> --fast --device ...
  4 synthesize  python synthesize_fuse.py -S <out>/data/<ID> -M <out>/model/<ID> --use_train --audio <new audio>
                --out <out>/result.mp4 --overwrite
                (new audio: --audio, else the built-in second sentence <out>/sample/novel_speech.wav)
Results: <out>/result.mp4 (the new-audio video with sound; result_silent.mp4 beside it), <out>/result_sheet.jpg
(six frames spanning the most closed to the most open mouth, in time order, mouths enlarged below), <out>/result_lips.png (the lip gap and the
loudness over time), <out>/demo_log.json (per-step wall and CPU seconds, the lip check). Tune the
schedules in PRESETS.
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from utils.io_utils import load_json, save_json  # noqa: E402
from data_utils.lip_tracking import measure_lips  # noqa: E402
from utils.lip_sync import contact_sheet, plot_lip_track  # noqa: E402

SAMPLE_ID = "hopper"
# Per device: the sample's frame size, extra train.py / synthesize_fuse.py arguments (`--fast` is
# train.py's 128 px, 600/2000/200-iteration schedule with at most 5000 face Gaussians; later flags
# override it) and environment defaults for the steps (a variable already set in the environment wins).
# - CPU: 3000 face iterations fit the 15-minute budget on 2 cores (docs/demo.md).
# - one torch thread on CPU: on a 2-core machine that something else also uses, two threads spin
#   against each other (a face training step: 0.3 it/s with 2 threads, 7 it/s with 1, same load).
# - CUDA: 256 px, no cap on the face Gaussians (~2.6 min of training on an H100; lip check r = 0.68 on new audio).
PRESETS = {
    "cpu": {"sample_size": 512, "train": ["--fast", "--face_iterations", "3000"], "synthesize": ["--fast"],
            "env": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}},
    "cuda": {"sample_size": 512, "train": ["--fast", "--resolution", "256", "--mouth_iterations", "2000",
                                           "--face_iterations", "3000", "--fuse_iterations", "500",
                                           "--face_max_points", "0"],
             "synthesize": ["--fast"], "env": {}},
}
SHEET_FRAMES = 6
STEPS = ("sample", "process", "train", "synthesize")


class DemoError(RuntimeError):
    """A user-facing problem, reported as one line."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", type=Path, default=None,
                   help="your talking-head clip (25 fps, one face, with sound); default: the built-in sample")
    p.add_argument("--audio", type=Path, default=None,
                   help="speech to drive the trained head (.wav/.flac/.mp3, any rate); default: a built-in sentence")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="compute device (default auto)")
    p.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default demo_out/)")
    p.add_argument("--sample_size", type=int, default=None, help="frame size of the built-in sample (default 512)")
    p.add_argument("--train_args", default="", help='extra train.py flags, e.g. "--resolution 256 --face_iterations 2000"')
    p.add_argument("--force", action="store_true", help="redo every step")
    return p


# ---- small helpers ------------------------------------------------------------------------------------
def resolve_device(name: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; 'cuda' without a GPU is a user error."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise DemoError("--device cuda: torch sees no CUDA GPU on this machine (use --device cpu)")
    return name


def subject_id(video: Path) -> str:
    """Folder-safe subject name from a file name (letters, digits, _ and -)."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", video.stem).strip("_")
    return name or "subject"


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_command(name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
    """Run one pipeline step as a child process (its progress bars go to this terminal).

    `env`: defaults for environment variables that the caller's environment does not set.
    """
    print(f"$ {' '.join(argv)}", flush=True)
    env = {**(env or {}), **os.environ, "PYTHONUNBUFFERED": "1"}
    from utils.quiet_logs import unfiltered_stderr

    # the step filters its own third-party log lines; its stderr stays in order with its stdout
    code = subprocess.call([sys.executable, *argv], cwd=REPO, env=env, stderr=unfiltered_stderr())
    if code != 0:
        raise DemoError(f"step '{name}' failed (exit code {code}); see its message above, fix it and rerun "
                        "the same command to resume")


def check_face(video: Path, n_checks: int = 5) -> int:
    """Number of frames, of `n_checks` spread over the clip, in which MediaPipe finds a face (raises if none)."""
    import numpy as np

    from data_utils.sample.portrait import detect_points
    from utils.video_io import iter_frames, probe_video

    try:
        info = probe_video(video)
    except ValueError as e:
        raise DemoError(str(e)) from e
    total = max(int(info.duration * info.fps), 1)
    wanted = set(np.linspace(0, total - 1, n_checks).astype(int).tolist())
    found = checked = 0
    for i, frame in enumerate(iter_frames(video)):
        if i in wanted:
            checked += 1
            found += detect_points(frame) is not None
        if i >= max(wanted):
            break
    if found == 0:
        raise DemoError(f"no face found in {video} (MediaPipe checked {checked} frames spread over the clip); "
                        "the demo needs a clip of one person facing the camera")
    return found


# ---- the steps -------------------------------------------------------------------------------------------
class Demo:
    """The demo's folder layout, its per-step log (demo_log.json) and its four steps."""

    def __init__(self, args: argparse.Namespace, device: str):
        self.args, self.device = args, device
        self.out = args.out.resolve()
        self.preset = PRESETS[device]
        self.size = args.sample_size or self.preset["sample_size"]
        self.sid = SAMPLE_ID if args.video is None else subject_id(args.video)
        self.data = self.out / "data" / self.sid
        self.model = self.out / "model" / self.sid
        self.sample_dir = self.out / "sample"
        self.video = self.data / f"{self.sid}.mp4" if args.video is None else args.video.resolve()
        self.log_path = self.out / "demo_log.json"
        self.log = load_json(self.log_path) if self.log_path.is_file() and not args.force else {}
        self.result = self.out / "result.mp4"

    def _done(self, step: str, key: list[str], outputs: list[Path]) -> bool:
        entry = self.log.get(step)
        if step == "sample" and self.args.video is None:  # the sample knows whether it is complete
            from data_utils.sample_subject import sample_is_complete

            if not sample_is_complete(self.video, self.sample_dir, size=self.size):
                return False
            if entry is None:  # made by data_utils/sample_subject.py before the demo ran
                self.log[step] = {"key": key, "summary": f"sample subject in {self.video}", "finished": time.time()}
            return True
        return bool(entry and entry.get("key") == key and all(p.exists() for p in outputs))

    def _record(self, step: str, key: list[str], wall: float, cpu: float, summary: str) -> None:
        self.log[step] = {"key": key, "seconds": round(wall, 1), "cpu_seconds": round(cpu, 1), "summary": summary,
                          "finished": time.time()}
        save_json(self.log_path, self.log)

    def _stale(self, step: str, key: list[str]) -> bool:
        """True when this step finished before with other settings (or --force): its old outputs must go."""
        entry = self.log.get(step)
        return self.args.force or bool(entry and entry.get("key") != key)

    def step(self, number: int, step: str, key: list[str], outputs: list[Path], work) -> None:
        """Run `work()` unless this step already finished with the same key; print one summary line."""
        label = f"[{number}/4 {step}]"
        if not self.args.force and self._done(step, key, outputs):
            print(f"{label} already done ({self.log[step]['summary']}); skipped", flush=True)
            return
        print(f"{label} ...", flush=True)
        t0, c0 = time.perf_counter(), cpu_seconds()
        summary = work()
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        self._record(step, key, wall, cpu, summary)
        print(f"{label} {summary} ({wall:.0f} s wall, {cpu:.0f} s CPU)", flush=True)

    # 1
    def make_subject(self) -> str:
        if self.args.video is None:
            from data_utils.sample.portrait import PortraitError
            from data_utils.sample.speech import SpeechUnavailable
            from data_utils.sample_subject import make_sample_subject

            try:
                sample = make_sample_subject(self.video, self.sample_dir, size=self.size, force=self.args.force)
            except (PortraitError, SpeechUnavailable) as e:
                raise DemoError(str(e)) from e
            m = sample.meta
            return (f"sample subject {m['frames']} frames ({m['seconds']} s, {self.size}x{self.size}, with speech) "
                    f"-> {self.video}")
        found = check_face(self.video)  # the user's file, read in place
        self.data.mkdir(parents=True, exist_ok=True)
        return f"{self.video}: face found in {found} of 5 checked frames"

    # 2
    def process_key(self) -> list[str]:
        stat = self.video.stat()
        return [str(self.video), str(stat.st_size), str(stat.st_mtime_ns)]

    def process(self) -> str:
        redo = ["--force"] if self._stale("process", self.process_key()) else []
        run_command("process", ["data_utils/process.py", str(self.video), "--data_dir", str(self.data), "--compact",
                                *redo], self.preset["env"])
        return f"processed -> {self.data}"

    # 3
    def train_args(self) -> list[str]:
        return ["train.py", "-s", str(self.data), "-m", str(self.model), *self.preset["train"],
                *self.args.train_args.split(), "--device", self.device]

    def train(self) -> str:
        if self._stale("train", self.train_args()) and self.model.is_dir():
            print(f"the training settings changed: removing the old model {self.model}", flush=True)
            shutil.rmtree(self.model)
        run_command("train", self.train_args(), self.preset["env"])
        return f"trained -> {self.model}"

    # 4
    def new_audio(self) -> Path:
        if self.args.audio is not None:
            return self.args.audio.resolve()
        novel = self.sample_dir / "novel_speech.wav"
        if not novel.is_file():
            from data_utils.sample.speech import pad_speech, pad_to_frames, speak
            from data_utils.sample_subject import LEAD_S, NOVEL_TEXT, NOVEL_VOICE, TAIL_S, WORDS_PER_MINUTE, _write_wav

            speech = pad_to_frames(pad_speech(speak(NOVEL_TEXT, NOVEL_VOICE, WORDS_PER_MINUTE), LEAD_S, TAIL_S))
            _write_wav(novel, speech.samples, speech.sample_rate)
        return novel

    def synthesize_args(self, audio: Path) -> list[str]:
        return ["synthesize_fuse.py", "-S", str(self.data), "-M", str(self.model), "--use_train",
                "--audio", str(audio), "--out", str(self.result), "--overwrite", *self.preset["synthesize"],
                "--device", self.device]

    def synthesize(self, audio: Path) -> str:
        run_command("synthesize", self.synthesize_args(audio), self.preset["env"])
        silent = self.result.with_name(f"{self.result.stem}_silent.mp4")
        if not self.result.is_file() and silent.is_file():
            print(f"WARNING: no audio could be muxed; {self.result} has no sound", file=sys.stderr)
            shutil.copyfile(silent, self.result)
        if not self.result.is_file():
            raise DemoError(f"synthesis finished but wrote no {self.result}")
        track = measure_lips(self.result, audio)
        contact_sheet(self.result, self.out / "result_sheet.jpg", frames=track.spanning(SHEET_FRAMES))
        plot_lip_track(track, self.out / "result_lips.png",
                       title=f"{self.result.name}: inner-lip gap vs loudness of {audio.name} (r = {track.r:.2f})")
        check = track.summary()
        self.log["lip_check"] = check
        return (f"{audio.name} -> {self.result}; lip check: mouth opening vs loudness r = {check['lip_loudness_r']} "
                f"over {check['frames']} frames ({check['frames_without_face']} without a face)")


def run_demo(args: argparse.Namespace) -> Demo:
    device = resolve_device(args.device)
    demo = Demo(args, device)
    demo.out.mkdir(parents=True, exist_ok=True)
    print(f"demo: subject {demo.sid!r} on {device}, outputs in {demo.out}", flush=True)
    t0, c0 = time.perf_counter(), cpu_seconds()
    demo.step(1, "sample", [str(args.video.resolve()) if args.video else f"sample {demo.size}"],
              [demo.video], demo.make_subject)
    processed = [demo.data / "transforms_train.json", demo.data / "au.csv", demo.data / "process_log.json",
                 demo.data / "aud_ph.npy", demo.data / "aud_mel.npy"]  # the audio-to-mouth model's inputs
    demo.step(2, "process", demo.process_key(), processed, demo.process)
    demo.step(3, "train", demo.train_args(), [demo.model / "chkpnt_fuse_latest.pth"], demo.train)
    audio = demo.new_audio()
    trained_at = str(demo.log["train"]["finished"])  # a retrained model is rendered again
    demo.step(4, "synthesize", demo.synthesize_args(audio) + [trained_at], [demo.result],
              lambda: demo.synthesize(audio))
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    demo.log["total"] = {"seconds": round(wall, 1), "cpu_seconds": round(cpu, 1), "device": device}
    save_json(demo.log_path, demo.log)
    print(f"\ndone in {wall:.0f} s ({cpu:.0f} s CPU). Outputs:\n"
          f"  talking head with the new audio: {demo.result}\n"
          f"  contact sheet of it:             {demo.out / 'result_sheet.jpg'}\n"
          f"  lip gap vs loudness plot:        {demo.out / 'result_lips.png'}\n"
          f"  training subject (video, data):  {demo.video}\n"
          f"  trained model:                   {demo.model}\n"
          f"  per-step timings:                {demo.log_path}")
    return demo


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.video is not None and not args.video.is_file():
        print(f"error: video not found: {args.video}", file=sys.stderr)
        return 2
    if args.audio is not None and not args.audio.is_file():
        print(f"error: audio not found: {args.audio}", file=sys.stderr)
        return 2
    if args.sample_size is not None and args.sample_size < 128:
        print(f"error: --sample_size {args.sample_size} is too small for face tracking (use >= 128)", file=sys.stderr)
        return 2
    try:
        run_demo(args)
    except DemoError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: finished steps are kept; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    from utils.quiet_logs import quiet_third_party_logs

    quiet_third_party_logs()  # MediaPipe / TFLite / absl lines off the terminal
    sys.exit(main())

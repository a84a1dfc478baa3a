"""The built-in sample subject: a synthetic talking-head video made from a real photograph, fully offline.

    python data_utils/sample_subject.py demo_out/data/hopper/hopper.mp4            # 512x512, ~11 s, 25 fps
    python data_utils/sample_subject.py out/hopper.mp4 --size 256 --extras out/sample

Grace Hopper's official portrait (public domain; shipped in matplotlib's sample data) is animated
with a 2-D face rig (data_utils/sample/rig.py): lips and jaw open with the phonemes and loudness of
a speech track that eSpeak NG speaks offline (data_utils/sample/speech.py), the mouth interior and
teeth are painted in, the eyes blink every few seconds and the head sways, turns and nods slightly.

Writes:
  <video>                       H.264 mp4 with the speech as AAC (the training subject)
  <extras>/train_speech.wav     its soundtrack (PCM)
  <extras>/novel_speech.wav     a second sentence in another voice, never in the video (new audio for synthesis)
  <extras>/tracks.npz           per-frame ground truth: opening, rounding, blink, loudness, head motion,
                                mouth_gap_px (inner-lip gap in pixels)
  <extras>/sample.json          settings and timings; written last (a rerun with the same settings skips)
Same settings, same files: the speech, the animation and the video frames are deterministic.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from utils.io_utils import atomic_path, load_json, save_json  # noqa: E402

log = logging.getLogger(__name__)

FPS = 25.0
TRAIN_TEXT = ("Hello! I am a talking head, made from one old photograph. A small program moves my lips, "
              "my eyes and my head. Ah, ee, oh, oo: big apples and purple boats. I learned to speak from this "
              "very video, one frame at a time. Five quick zebras jump over the lazy brown fox, while a choir "
              "sings thirty bright songs. Mother made warm bread, and father found the map of the hidden valley. "
              "Would you like to hear more? Then give me any voice, and watch my mouth follow every word.")
# ~30 s of speech: the audio path learns from what the video says; with 11 s it saw too few sounds
NOVEL_TEXT = ("This voice was never heard in training. Every word you hear now moves the lips of the model, "
              "frame by frame.")
TRAIN_VOICE, NOVEL_VOICE = "en-us+f3", "en-us+m3"
WORDS_PER_MINUTE = 175
LEAD_S, TAIL_S = 0.3, 0.4  # silence around each sentence


@dataclass
class SampleSubject:
    video: Path            # mp4 with sound
    train_speech: Path     # its soundtrack (wav)
    novel_speech: Path     # the second sentence (wav)
    tracks: Path           # tracks.npz
    meta: dict             # sample.json contents


def _settings(size: int, seed: int) -> dict:
    return {"size": size, "seed": seed, "fps": FPS, "train_text": TRAIN_TEXT, "novel_text": NOVEL_TEXT,
            "train_voice": TRAIN_VOICE, "novel_voice": NOVEL_VOICE, "words_per_minute": WORDS_PER_MINUTE,
            "version": 4}


def _write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> Path:
    import soundfile as sf

    with atomic_path(path, suffix=".wav") as tmp:
        sf.write(str(tmp), samples, sample_rate, subtype="PCM_16")
    return path


def sample_paths(video: Path, extras: Path) -> SampleSubject:
    return SampleSubject(video=video, train_speech=extras / "train_speech.wav",
                         novel_speech=extras / "novel_speech.wav", tracks=extras / "tracks.npz",
                         meta={})


def sample_is_complete(video: Path, extras: Path, size: int = 512, seed: int = 0) -> bool:
    """True when every output exists and sample.json records the same settings."""
    paths = sample_paths(video, extras)
    meta_path = extras / "sample.json"
    if not all(p.is_file() for p in (video, paths.train_speech, paths.novel_speech, paths.tracks, meta_path)):
        return False
    return load_json(meta_path).get("settings") == _settings(size, seed)


def make_sample_subject(video: Path, extras: Path | None = None, size: int = 512, seed: int = 0,
                        force: bool = False, progress: bool = True) -> SampleSubject:
    """Generate (or reuse) the sample subject video and its extras; see the module docstring."""
    from tqdm import tqdm

    from data_utils.sample.portrait import load_portrait
    from data_utils.sample.rig import build_rig, mouth_opening_px, pose_frame
    from data_utils.sample.speech import pad_speech, pad_to_frames, speak
    from data_utils.sample.timeline import make_tracks, poses_from_tracks
    from utils.video_io import VideoWriter

    video = Path(video)
    extras = Path(extras) if extras is not None else video.parent / "sample"
    paths = sample_paths(video, extras)
    if not force and sample_is_complete(video, extras, size, seed):
        paths.meta = load_json(extras / "sample.json")
        return paths
    t0 = time.perf_counter()
    extras.mkdir(parents=True, exist_ok=True)
    video.parent.mkdir(parents=True, exist_ok=True)
    speech = pad_to_frames(pad_speech(speak(TRAIN_TEXT, TRAIN_VOICE, WORDS_PER_MINUTE), LEAD_S, TAIL_S), FPS)
    novel = pad_to_frames(pad_speech(speak(NOVEL_TEXT, NOVEL_VOICE, WORDS_PER_MINUTE), LEAD_S, TAIL_S), FPS)
    _write_wav(paths.train_speech, speech.samples, speech.sample_rate)
    _write_wav(paths.novel_speech, novel.samples, novel.sample_rate)

    rig = build_rig(load_portrait(size))
    tracks = make_tracks(speech, FPS, seed)
    poses = poses_from_tracks(tracks)
    tracks["mouth_gap_px"] = np.float32([mouth_opening_px(rig, p) for p in poses])
    with VideoWriter(video, fps=FPS, quality=9, audio=paths.train_speech) as writer:
        for pose in tqdm(poses, desc="sample frames", disable=not progress, dynamic_ncols=True):
            writer.write(pose_frame(rig, pose))
    with atomic_path(paths.tracks, suffix=".npz") as tmp:
        np.savez(tmp, **tracks)
    paths.meta = {"settings": _settings(size, seed), "frames": len(poses), "seconds": round(len(poses) / FPS, 3),
                  "train_speech_seconds": round(speech.seconds, 3), "novel_speech_seconds": round(novel.seconds, 3),
                  "sample_rate": speech.sample_rate, "portrait": "grace_hopper.jpg (matplotlib sample data)",
                  "generate_seconds": round(time.perf_counter() - t0, 2)}
    save_json(extras / "sample.json", paths.meta)
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("video", type=Path, help="mp4 to write, usually data/<ID>/<ID>.mp4")
    p.add_argument("--extras", type=Path, default=None, help="folder for the speech, tracks and sample.json "
                   "(default: <video folder>/sample)")
    p.add_argument("--size", type=int, default=512, help="frame side in pixels (default 512)")
    p.add_argument("--seed", type=int, default=0, help="blink and head-motion seed")
    p.add_argument("--force", action="store_true", help="regenerate even when the outputs exist")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    if args.size < 128:
        print(f"error: --size {args.size} is too small for a face MediaPipe can track (use >= 128)", file=sys.stderr)
        return 2
    from data_utils.sample.portrait import PortraitError
    from data_utils.sample.speech import SpeechUnavailable

    try:
        sample = make_sample_subject(args.video, args.extras, args.size, args.seed, args.force)
    except (PortraitError, SpeechUnavailable, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    m = sample.meta
    print(f"sample subject: {m['frames']} frames ({m['seconds']} s, {args.size}x{args.size}, 25 fps, with sound) "
          f"-> {sample.video}; new audio for synthesis: {sample.novel_speech}")
    return 0


if __name__ == "__main__":
    from utils.quiet_logs import quiet_third_party_logs

    quiet_third_party_logs()  # MediaPipe / TFLite / absl lines off the terminal
    sys.exit(main())

"""The built-in sample subject (data_utils/sample_subject.py) and the demo driver (scripts/demo.py).

The sample is generated once per session at 256 px (~10 s on 2 cores) in the demo's own folder
layout; the driver's heavy steps (process, train, synthesize) are replaced by a stand-in that writes
the files each step leaves, so argument handling and resumability are tested in seconds. The
real end-to-end run is `python scripts/demo.py` (timings in docs/demo.md).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from tests.script_module import load_script

SIZE = 256


demo = load_script("demo")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The sample subject at 256 px, written where `scripts/demo.py --out <root> --sample_size 256` expects it."""
    from data_utils.sample_subject import make_sample_subject

    root = tmp_path_factory.mktemp("demo_out")
    made = make_sample_subject(root / "data" / "hopper" / "hopper.mp4", root / "sample", size=SIZE, progress=False)
    return root, made


@pytest.fixture(scope="module")
def sample_frames(sample):
    from utils.video_io import iter_frames

    return np.stack(list(iter_frames(sample[1].video)))  # [T, H, W, 3]


@pytest.fixture(scope="module")
def tracked(sample_frames):
    """MediaPipe face mesh over every frame: [T, 478, 2] pixels, NaN where no face was found."""
    import mediapipe as mp

    out = np.full((len(sample_frames), 478, 2), np.nan, np.float32)
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=True) as mesh:
        for i, frame in enumerate(sample_frames):
            res = mesh.process(frame)
            if res.multi_face_landmarks:
                out[i] = [(p.x * SIZE, p.y * SIZE) for p in res.multi_face_landmarks[0].landmark]
    return out


# ---- the sample subject ---------------------------------------------------------------------------------
def test_sample_video_has_length_fps_size_and_sound(sample, sample_frames):
    import soundfile as sf

    from utils.video_io import probe_video

    _, made = sample
    info = probe_video(made.video)
    assert (info.fps, info.width, info.height, info.has_audio) == (25.0, SIZE, SIZE, True)
    n = len(sample_frames)
    assert 25 * 25 <= n <= 35 * 25, n  # ~30 s of speech
    assert made.meta["frames"] == n
    tracks = np.load(made.tracks)
    assert all(len(v) == n for v in tracks.values())
    speech, sr = sf.read(made.train_speech)
    assert abs(len(speech) / sr - n / 25) < 1 / 25
    novel, sr2 = sf.read(made.novel_speech)
    assert 3.0 < len(novel) / sr2 < 10.0
    assert np.sqrt(np.mean(speech ** 2)) > 0.02 and np.sqrt(np.mean(novel ** 2)) > 0.02   # speech, not silence


def test_sample_is_deterministic(sample, sample_frames, tmp_path):
    from data_utils.sample_subject import make_sample_subject
    from utils.video_io import iter_frames

    _, made = sample
    again = make_sample_subject(tmp_path / "hopper.mp4", tmp_path / "extras", size=SIZE, progress=False)
    for a, b in ((made.train_speech, again.train_speech), (made.novel_speech, again.novel_speech)):
        assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest(), a.name
    t1, t2 = np.load(made.tracks), np.load(again.tracks)
    for key in t1.files:
        np.testing.assert_array_equal(t1[key], t2[key], err_msg=key)
    frames2 = np.stack(list(iter_frames(again.video)))
    np.testing.assert_array_equal(sample_frames, frames2)


def test_sample_rerun_skips_and_settings_change_regenerates(sample, monkeypatch):
    from data_utils import sample_subject

    root, made = sample
    assert sample_subject.sample_is_complete(made.video, root / "sample", size=SIZE)
    assert not sample_subject.sample_is_complete(made.video, root / "sample", size=SIZE + 64)
    mtime = made.video.stat().st_mtime_ns
    sample_subject.make_sample_subject(made.video, root / "sample", size=SIZE, progress=False)
    assert made.video.stat().st_mtime_ns == mtime


def test_mediapipe_tracks_every_frame(tracked):
    missed = int(np.isnan(tracked[:, 0, 0]).sum())
    assert missed <= len(tracked) // 100, f"no face in {missed} of {len(tracked)} frames"


def test_mouth_opening_follows_loudness(sample, tracked):
    tracks = np.load(sample[1].tracks)
    ok = ~np.isnan(tracked[:, 0, 0])
    gap = tracked[ok, 14, 1] - tracked[ok, 13, 1]      # inner lower lip - inner upper lip, pixels
    loud = tracks["loudness"][ok]
    assert np.corrcoef(gap, loud)[0, 1] > 0.6
    assert np.corrcoef(gap, tracks["mouth_gap_px"][ok])[0, 1] > 0.85
    # open while speaking, closed in the leading and trailing silence
    assert np.percentile(gap[loud > 0.7], 75) > 4.0 * SIZE / 512
    assert np.median(gap[:5]) < 1.5 and np.median(gap[-5:]) < 1.5


def test_blinks_close_the_eyes(sample, tracked):
    tracks = np.load(sample[1].tracks)
    ok = ~np.isnan(tracked[:, 0, 0])
    lids = np.abs(tracked[:, [145, 374], 1] - tracked[:, [159, 386], 1]).mean(1)   # lower - upper lid, both eyes
    closed, open_ = ok & (tracks["blink"] > 0.9), ok & (tracks["blink"] < 0.05)
    assert closed.sum() >= 2
    assert np.median(lids[closed]) < 0.6 * np.median(lids[open_])


def test_viseme_targets_and_loudness():
    from data_utils.audio.loudness import loudness_track
    from data_utils.sample.speech import viseme_target, viseme_tracks

    assert viseme_target("m")[0] == 0.0 and viseme_target("_:")[0] == 0.0
    assert viseme_target("'a#")[0] > viseme_target("I")[0] > viseme_target("m")[0]
    assert viseme_target("u:")[1] > 0.8 > viseme_target("i")[1]
    opening, _ = viseme_tracks([(0.0, "_"), (0.2, "'A:"), (0.6, "m"), (0.8, "_")], 25)
    assert opening[8] > 0.8 and opening[17] < 0.1 and opening[0] < 0.05
    sr = 16000
    tone = np.zeros(sr, np.float32)
    tone[sr // 2:] = 0.5 * np.sin(np.arange(sr // 2) * 0.1)
    loud = loudness_track(tone, sr, 25)
    assert loud[:12].max() == 0.0 and loud[13:].min() > 0.9


# ---- the demo driver -------------------------------------------------------------------------------------
def test_demo_rejects_missing_inputs(tmp_path, capsys):
    assert demo.main(["--video", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "o")]) == 2
    assert "video not found" in capsys.readouterr().err
    assert demo.main(["--audio", str(tmp_path / "nope.wav"), "--out", str(tmp_path / "o")]) == 2
    assert f"audio not found: {tmp_path / 'nope.wav'}" in capsys.readouterr().err
    assert demo.main(["--sample_size", "64", "--out", str(tmp_path / "o")]) == 2
    with pytest.raises(SystemExit):
        demo.main(["--device", "tpu"])
    assert not (tmp_path / "o").exists()


def test_demo_cuda_without_gpu_is_one_line_error(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert demo.main(["--device", "cuda", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --device cuda") and "\n" not in err


def test_demo_video_without_face_is_one_line_error(tmp_path, capsys, monkeypatch):
    from utils.video_io import write_video

    clip = tmp_path / "wall.mp4"
    write_video(clip, [np.full((96, 96, 3), 40 + i, np.uint8) for i in range(30)])
    monkeypatch.setattr(demo, "run_command", lambda name, argv, env=None: pytest.fail("no step may run without a face"))
    assert demo.main(["--video", str(clip), "--out", str(tmp_path / "o"), "--device", "cpu"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: no face found in {clip} ") and str(tmp_path / "o") not in err and "\n" not in err


class FakeSteps:
    """Stands in for process.py / train.py / synthesize_fuse.py: records calls, writes their outputs."""

    def __init__(self, clip: Path):
        self.clip, self.calls, self.envs = clip, [], []

    def __call__(self, name: str, argv: list[str], env: dict | None = None) -> None:
        self.calls.append((name, argv))
        self.envs.append(env)
        if name == "process":
            data = Path(argv[argv.index("--data_dir") + 1])
            for f in ("transforms_train.json", "au.csv", "process_log.json", "aud_ph.npy", "aud_mel.npy"):
                (data / f).write_text("{}")
        elif name == "train":
            model = Path(argv[argv.index("-m") + 1])
            model.mkdir(parents=True, exist_ok=True)
            (model / "chkpnt_fuse_latest.pth").write_bytes(b"x")
        elif name == "synthesize":
            Path(argv[argv.index("--out") + 1]).write_bytes(self.clip.read_bytes())

    def names(self) -> list[str]:
        out = [n for n, _ in self.calls]
        self.calls.clear()
        return out


def test_demo_runs_all_steps_then_resumes(sample, monkeypatch, capsys, tmp_path):
    root, made = sample
    fake = FakeSteps(made.video)
    monkeypatch.setattr(demo, "run_command", fake)
    argv = ["--out", str(root), "--sample_size", str(SIZE), "--device", "cpu"]
    assert demo.main(argv) == 0
    assert fake.names() == ["process", "train", "synthesize"]        # the sample itself was already made
    assert all(env["OMP_NUM_THREADS"] == "1" for env in fake.envs)   # one torch thread on CPU
    out = capsys.readouterr().out
    assert "[1/4 sample] already done" in out and str(root / "result.mp4") in out
    assert (root / "result.mp4").is_file() and (root / "result_sheet.jpg").stat().st_size > 1000
    assert (root / "result_lips.png").read_bytes()[:4] == b"\x89PNG"
    assert "lip check: mouth opening vs loudness r =" in out
    log = __import__("json").loads((root / "demo_log.json").read_text())
    assert {"sample", "process", "train", "synthesize", "total"} <= set(log)

    assert demo.main(argv) == 0                                       # rerun: nothing to do
    assert fake.names() == []
    assert capsys.readouterr().out.count("already done") == 4

    speech = tmp_path / "speech.wav"
    speech.write_bytes(made.novel_speech.read_bytes())
    assert demo.main(argv + ["--audio", str(speech)]) == 0            # new audio: only synthesis again
    calls = list(fake.calls)
    assert fake.names() == ["synthesize"] and str(speech) in calls[0][1]

    assert demo.main(argv + ["--audio", str(speech), "--train_args", "--face_iterations 10"]) == 0
    assert fake.names() == ["train", "synthesize"]                    # new schedule: retrain, re-render

    (root / "model" / "hopper" / "chkpnt_fuse_latest.pth").unlink()   # outputs gone: the step runs again
    assert demo.main(argv + ["--audio", str(speech), "--train_args", "--face_iterations 10"]) == 0
    assert fake.names() == ["train", "synthesize"]


def test_demo_with_user_video_reads_it_in_place_and_uses_the_builtin_sentence(sample, monkeypatch, tmp_path):
    _, made = sample
    clip = tmp_path / "my clip.mp4"
    clip.write_bytes(made.video.read_bytes())
    fake = FakeSteps(made.video)
    monkeypatch.setattr(demo, "run_command", fake)
    out = tmp_path / "out"
    assert demo.main(["--video", str(clip), "--out", str(out), "--device", "cpu"]) == 0
    assert not (out / "data" / "my_clip" / "my_clip.mp4").exists()       # no copy: messages name the user's file
    (name, process_argv), _, (_, synth_argv) = fake.calls
    assert process_argv[:5] == ["data_utils/process.py", str(clip), "--data_dir", str(out / "data" / "my_clip"),
                                "--compact"]
    audio = Path(synth_argv[synth_argv.index("--audio") + 1])
    assert audio == out / "sample" / "novel_speech.wav" and audio.stat().st_size > 10000


def test_demo_failed_step_is_reported_and_resumable(sample, monkeypatch, tmp_path, capsys):
    _, made = sample
    clip = tmp_path / "c.mp4"
    clip.write_bytes(made.video.read_bytes())
    fake = FakeSteps(made.video)

    def failing(name, argv, env=None):
        if name == "train":
            raise demo.DemoError("step 'train' failed (exit code 1); see its message above")
        fake(name, argv, env)

    monkeypatch.setattr(demo, "run_command", failing)
    argv = ["--video", str(clip), "--out", str(tmp_path / "o"), "--device", "cpu"]
    assert demo.main(argv) == 1
    assert "error: step 'train' failed" in capsys.readouterr().err
    assert fake.names() == ["process"]
    monkeypatch.setattr(demo, "run_command", fake)
    assert demo.main(argv) == 0
    assert fake.names() == ["train", "synthesize"]                    # processing is not redone


def test_run_command_env_defaults_and_failure(monkeypatch):
    check = "import os, sys; sys.exit(0 if os.environ.get('OMP_NUM_THREADS') == sys.argv[1] else 3)"
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    demo.run_command("check", ["-c", check, "1"], {"OMP_NUM_THREADS": "1"})     # the default applies
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    demo.run_command("check", ["-c", check, "2"], {"OMP_NUM_THREADS": "1"})     # the user's setting wins
    with pytest.raises(demo.DemoError, match=r"step 'check' failed \(exit code 3\)"):
        demo.run_command("check", ["-c", check, "1"], {"OMP_NUM_THREADS": "1"})


def test_lip_sync_check_tells_matching_from_unrelated_audio(sample):
    _, made = sample
    from data_utils.lip_tracking import lip_sync_check

    matching = lip_sync_check(made.video, made.train_speech)
    unrelated = lip_sync_check(made.video, made.novel_speech)
    assert matching["frames"] == made.meta["frames"] and matching["frames_without_face"] == 0
    assert matching["lip_loudness_r"] > 0.6
    assert unrelated["lip_loudness_r"] < 0.3


def test_lip_track_summary_and_frames_from_closed_to_open():
    from utils.lip_sync import LipTrack

    gaps = np.array([3.0, np.nan, 0.0, 9.0, 1.0, 5.0, np.nan, 7.0])
    track = LipTrack(gaps=gaps, loudness=np.array([0.3, 0.5, 0.0, 0.9, 0.1, 0.5, 0.2, 0.7]))
    s = track.summary()
    assert s["frames"] == 8 and s["frames_without_face"] == 2 and s["lip_loudness_r"] > 0.95
    picks = track.spanning(3)
    assert picks == sorted(picks) and 2 in picks and 3 in picks  # the most closed and the most open
    assert np.isnan(LipTrack(gaps=np.full(4, np.nan), loudness=np.ones(4)).r)

"""Rows of docs/reliability.md not covered elsewhere: variable frame rate, a face gone for 2 s, audio
shorter and longer than the video, a corrupt aud_*.npy, a missing optional weight, Ctrl-C in
preprocessing and in training, a failed write. Inputs are hashed before and after."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.fixtures.patches import ctrl_c_at_frame
from tests.data_utils.test_process import cut_clip, ffmpeg, sha256


def _process(video: Path, *flags: str) -> int:
    from data_utils.process import main

    return main([str(video), *flags])


def _flash_clip(path: Path, rate: int = 25, video_s: float = 2.0, audio_s: float | None = None,
                vf_extra: str = "", extra: tuple[str, ...] = ()) -> Path:
    """Black, then white from t = 1.0 s; a tone from t = 1.0 s (both events land on frame 25)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    audio_s = video_s if audio_s is None else audio_s
    ffmpeg("-f", "lavfi", "-i", f"color=c=black:s=128x128:r={rate}:d={video_s}",
           "-f", "lavfi", "-i", f"sine=f=440:sample_rate=48000:d={audio_s}",
           "-filter_complex", f"[0:v]drawbox=enable='gte(t,1)':color=white:t=fill{vf_extra}[v];"
                              "[1:a]volume=enable='lt(t,1)':volume=0[a]",
           "-map", "[v]", "-map", "[a]", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", *extra, str(path))
    return path


def _first_white_and_onset(d: Path) -> tuple[int, float]:
    import soundfile as sf

    from data_utils.frames import frame_count, read_frame

    first_white = next(i for i in range(frame_count(d)) if read_frame(d, i).mean() > 128)
    audio, sr = sf.read(str(d / "aud.wav"))
    return first_white, np.flatnonzero(np.abs(audio) > 0.1)[0] / sr * 25


def test_variable_frame_rate_is_laid_out_by_timestamp(tmp_path):
    """30 fps with every 4th frame dropped (irregular timestamps): frames and sound stay aligned."""
    video = _flash_clip(tmp_path / "vfr" / "vfr.mp4", rate=30, vf_extra=",select='not(eq(mod(n\\,4)\\,1))'",
                        extra=("-fps_mode", "vfr"))
    before = sha256(video)
    assert _process(video, "--task", "2") == 0 and _process(video, "--task", "1", "--audio_extractor", "mel") == 0
    d = video.parent
    assert json.loads((d / "frames.json").read_text())["n_frames"] == 50
    first_white, onset = _first_white_and_onset(d)
    assert abs(first_white - 25) <= 1 and abs(onset - 25) <= 1, (first_white, onset)
    assert np.load(d / "aud_mel.npy").shape[0] == 50
    assert sha256(video) == before


@pytest.mark.parametrize("audio_s", [1.0, 3.0])
def test_audio_shorter_or_longer_than_the_video(tmp_path, caplog, audio_s):
    """Features always have one row per video frame: silence pads short audio, long audio is cut."""
    video = _flash_clip(tmp_path / "av" / "av.mp4", audio_s=audio_s)
    before = sha256(video)
    with caplog.at_level(logging.WARNING):
        assert _process(video, "--task", "2") == 0
        assert _process(video, "--task", "1", "--audio_extractor", "mel") == 0
    warnings = " ".join(r.getMessage() for r in caplog.records)
    assert ("padding with silence" if audio_s < 2 else "cutting the end off") in warnings
    assert "truncated" not in warnings                     # a longer sound track is not a damaged video
    d = video.parent
    n = json.loads((d / "frames.json").read_text())["n_frames"]
    assert n == 50 and np.load(d / "aud_mel.npy").shape[0] == n
    assert np.load(d / "aud_train_mel.npy").shape[0] + np.load(d / "aud_novel_mel.npy").shape[0] == n
    assert sha256(video) == before


def _corrupt(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:200])


def test_corrupt_audio_features_are_redone_by_process(tmp_path):
    video = _flash_clip(tmp_path / "c" / "c.mp4", video_s=1.0)
    assert _process(video, "--task", "2") == 0 and _process(video, "--task", "1", "--audio_extractor", "mel") == 0
    feats = video.parent / "aud_mel.npy"
    good = np.load(feats)
    _corrupt(feats)
    assert _process(video, "--task", "1", "--audio_extractor", "mel") == 0   # the damage is seen and redone
    np.testing.assert_array_equal(np.load(feats), good)


def test_corrupt_audio_features_stop_training_with_one_clear_error(tmp_path, capsys):
    import train
    from tests.fixtures.make_subject import make_subject

    subject = make_subject(tmp_path / "synth", n_frames=8, size=32)
    _corrupt(subject / "aud_ph.npy")
    assert train.main(["-s", str(subject), "-m", str(tmp_path / "m"), "--stage", "mouth", "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "aud_ph.npy is damaged" in err[0] and "--task 1 --force" in err[0], err


def test_face_gone_for_two_seconds_is_an_error_naming_frames_and_fix(tmp_path, capsys):
    video = cut_clip(tmp_path / "away" / "away.mp4", duration=3.0,
                     vf="drawbox=enable='between(n,13,62)':color=black:t=fill")
    before = sha256(video)
    assert _process(video, "--task", "2") == 0
    assert _process(video, "--task", "3") == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]                # after the progress bars
    assert err.startswith("error: no face found in frames 13-62 (50 frames") and "cut them from the video" in err
    assert not (video.parent / "landmarks.npy").exists() and sha256(video) == before


def test_missing_optional_weight_is_one_line_naming_file_and_flag(tmp_path, capsys):
    video = _flash_clip(tmp_path / "w" / "w.mp4", video_s=0.4)
    assert _process(video, "--task", "2") == 0
    missing = tmp_path / "nowhere" / "79999_iter.pth"
    assert _process(video, "--task", "5", "--parsing", "bisenet", "--bisenet_weights", str(missing)) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: BiSeNet weights not found") and str(missing) in err
    assert "--bisenet_weights PATH" in err and "--parsing mediapipe" in err


def test_ctrl_c_in_preprocessing_then_the_rerun_redoes_no_finished_step(tmp_path, monkeypatch, capsys):
    import data_utils.landmarks as lm

    video = cut_clip(tmp_path / "cc" / "cc.mp4", duration=0.6)
    real = ctrl_c_at_frame(monkeypatch, 5)
    assert _process(video, "--compact") == 130
    d = video.parent
    frames_done = {p.name: p.stat().st_mtime_ns for p in (d / "ori_imgs").glob("*.jpg")}
    audio_done = (d / "aud_ph.npy").stat().st_mtime_ns
    capsys.readouterr()
    monkeypatch.setattr(lm, "read_frame", real)
    assert _process(video, "--compact") == 0
    out = capsys.readouterr().out
    assert "[2 frames] frames: 15 frames already in ori_imgs/ (skipped)" in out
    assert "[1 audio] audio: aud.wav, split and phoneme, mel features already done (skipped)" in out
    assert {p.name: p.stat().st_mtime_ns for p in (d / "ori_imgs").glob("*.jpg")} == frames_done
    assert (d / "aud_ph.npy").stat().st_mtime_ns == audio_done and (d / "au.csv").is_file()


def test_ctrl_c_in_training_saves_and_the_rerun_resumes(tmp_path, monkeypatch, capsys):
    import train
    from scene.training import trainer
    from tests.fixtures.make_subject import make_subject

    subject = make_subject(tmp_path / "synth", n_frames=12, size=32)
    model = tmp_path / "m"
    argv = ["-s", str(subject), "-m", str(model), "--stage", "all", "--mouth_iterations", "6",
            "--face_iterations", "10", "--fuse_iterations", "2", "--init_num", "100", "--face_init_num", "100",
            "--mouth_input", "none", "--backend", "torch", "--quiet"]  # no lips stage: seconds, not a minute
    real = trainer.StageRun.iteration

    def ctrl_c_in_face(run, it):
        if run.stage == "face" and it == 7:
            raise KeyboardInterrupt
        return real(run, it)

    monkeypatch.setattr(trainer.StageRun, "iteration", ctrl_c_in_face)
    assert train.main(argv) == 130
    assert "checkpoint saved" in capsys.readouterr().err
    finished = [model / "chkpnt_mouth_latest.pth"]
    before = {p: p.read_bytes() for p in finished}
    from utils.io_utils import load_checkpoint

    assert load_checkpoint(model / "chkpnt_face_latest.pth")["step"] == 6
    monkeypatch.setattr(trainer.StageRun, "iteration", real)
    assert train.main(argv) == 0
    assert {p: p.read_bytes() for p in finished} == before                 # finished stages are not redone
    face = json.loads((model / "metrics" / "train_face.json").read_text())
    assert face["start"] == 6 and face["end"] == 10                       # the face stage resumed at 6
    assert (model / "chkpnt_fuse_latest.pth").is_file()


@pytest.mark.parametrize("kind", ["json", "npy", "torch", "video"])
def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch, kind):
    """The disk fills up half-way through rewriting a file: the previous file survives, whole."""
    import pathlib

    from utils import io_utils
    from utils.video_io import VideoWriter

    path = tmp_path / f"out.{ {'json': 'json', 'npy': 'npy', 'torch': 'pth', 'video': 'mp4'}[kind]}"

    def write(value: float) -> None:
        if kind == "json":
            io_utils.save_json(path, {"v": value})
        elif kind == "npy":
            io_utils.save_npy(path, np.full(1000, value))
        elif kind == "torch":
            io_utils.save_torch(path, {"v": torch.full((1000,), value)})
        else:
            with VideoWriter(path) as w:
                for i in range(3):
                    if value == 2.0 and i == 2:
                        raise OSError(28, "No space left on device")
                    w.write(np.full((16, 16, 3), 100, np.uint8))

    write(1.0)
    before = sha256(path)

    def disk_full(target) -> None:  # 100 bytes reach the file, then the disk is full
        if hasattr(target, "write"):
            target.write(b"x" * 100)
        else:
            Path(target).write_bytes(b"x" * 100)
        raise OSError(28, "No space left on device")

    if kind == "json":
        monkeypatch.setattr(pathlib.Path, "write_text", lambda self, *a, **k: disk_full(self))
    elif kind == "npy":
        monkeypatch.setattr(io_utils.np, "save", lambda f, *a, **k: disk_full(f))
    elif kind == "torch":
        monkeypatch.setattr(torch, "save", lambda obj, f, *a, **k: disk_full(f))
    with pytest.raises(OSError, match="No space left"):
        write(2.0)
    assert sha256(path) == before
    assert sorted(os.listdir(tmp_path)) == [path.name]                      # no temporary file left either

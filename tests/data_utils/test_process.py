"""End to end: the default pipeline on a 2-second cut of german20s.mp4, resumability, CLI errors.

Also holds the clip helpers the other preprocessing tests import (ffmpeg cuts of the shared clip).
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import shared_file
from utils.io_utils import load_checkpoint
from utils.video_io import ffmpeg_exe


# ----------------------------------------------------------------------------- clip helpers
def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-nostdin", "-y", "-v", "error", *args], check=True)


def cut_clip(out: Path, start: float = 4.0, duration: float = 2.0, vf: str | None = None,
             extra: tuple[str, ...] = ()) -> Path:
    """A re-encoded cut of german20s.mp4 (25 fps, 512x512, AAC 44.1 kHz stereo) into `out`."""
    src = shared_file("video/german20s.mp4")
    out.parent.mkdir(parents=True, exist_ok=True)
    args = ["-ss", str(start), "-t", str(duration), "-i", str(src)]
    if vf:
        args += ["-vf", vf]
    ffmpeg(*args, "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-c:a", "aac", *extra, str(out))
    return out


def subject_dir(tmp_path_factory, name: str, **cut) -> Path:
    """data/<name>/<name>.mp4 layout in a fresh temp folder."""
    d = tmp_path_factory.mktemp("data") / name
    cut_clip(d / f"{name}.mp4", **cut)
    return d


def landmarked_clip(tmp_path_factory, name: str, start: float, duration: float) -> Path:
    """A cut of german20s.mp4 with preprocessing's frames and landmarks steps done (for the steps after)."""
    from data_utils.frames import run_frames
    from data_utils.landmarks import run_landmarks

    d = tmp_path_factory.mktemp(name) / "cut"
    cut_clip(d / "cut.mp4", start=start, duration=duration)
    run_frames(d)
    run_landmarks(d, progress=False)
    return d


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- end to end
def _have_image_steps() -> str | None:
    try:
        from data_utils.background import run_background, run_derived_images  # noqa: F401
        from data_utils.parsing import run_parsing  # noqa: F401
        from data_utils.teeth import run_teeth  # noqa: F401
    except ImportError as e:
        return f"image steps not available yet: {e}"
    return None


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    """The whole default pipeline (+ --debug) on a 2-second cut; returns (data_dir, stdout, input sha)."""
    reason = _have_image_steps()
    if reason:
        pytest.xfail(reason)
    from data_utils.process import main

    d = subject_dir(tmp_path_factory, "g2s")
    video = d / "g2s.mp4"
    before = sha256(video)
    assert main([str(video), "--debug"]) == 0
    return d, before


@pytest.mark.slow
def test_pipeline_writes_every_output(processed):
    import soundfile as sf
    import torch

    d, _ = processed
    n = json.loads((d / "frames.json").read_text())["n_frames"]
    assert n == 50
    assert len(list((d / "ori_imgs").glob("*.jpg"))) == n
    info = sf.info(str(d / "aud.wav"))
    assert (info.samplerate, info.channels) == (16000, 1)
    assert abs(info.frames / 640 - n) <= 1
    feats = np.load(d / "aud_ph.npy")
    assert feats.shape[0] == n and feats.ndim == 3
    n_train = int(n * 10 / 11)
    assert np.array_equal(np.load(d / "aud_train_ph.npy"), feats[:n_train])
    assert np.array_equal(np.load(d / "aud_novel_ph.npy"), feats[n_train:])
    assert abs(sf.info(str(d / "aud_train.wav")).frames - n_train * 640) <= 1
    assert np.load(d / "landmarks.npy").shape == (n, 478, 3)
    assert np.load(d / "ori_imgs" / f"{n - 1}.npy").shape == (478, 3)
    assert np.loadtxt(d / "ori_imgs" / "0.lms").shape == (68, 2)
    train = json.loads((d / "transforms_train.json").read_text())
    val = json.loads((d / "transforms_val.json").read_text())
    assert [f["img_id"] for f in train["frames"] + val["frames"]] == list(range(n))
    assert len(train["frames"]) == n_train
    tp = load_checkpoint(d / "track_params.pt")
    assert tp["euler"].shape == (n, 3) and tp["trans"].shape == (n, 3) and tp["focal"].shape == (1,)
    lines = (d / "au.csv").read_text().splitlines()
    assert lines[0].startswith("frame, face_id, timestamp, confidence, success, AU01_r")
    assert len(lines) == n + 1
    codes = torch.load(d / "3dmm.pt")
    assert codes["expression_params"].shape == (n, 50) and codes["jaw_params"].shape == (n, 3)
    for folder, ext in (("parsing", "png"), ("teeth_mask", "npy"), ("gt_imgs", "jpg"), ("torso_imgs", "png"),
                        ("bg", "png")):
        assert len(list((d / folder).glob(f"*.{ext}"))) == n, folder
    assert (d / "bc.jpg").is_file()
    for png in ("contact_sheet.png", "tracks.png"):
        assert (d / "debug" / png).stat().st_size > 20_000
    log = json.loads((d / "process_log.json").read_text())
    assert [s["step"] for s in log["steps"]][:4] == ["frames", "audio", "landmarks", "head pose"]
    assert not list(d.rglob(".*.tmp*")), "temporary files left behind"


@pytest.mark.slow
def test_second_run_skips_every_step_and_input_is_untouched(processed, capsys):
    from data_utils.process import main

    d, before = processed
    capsys.readouterr()
    assert main([str(d / "g2s.mp4"), "--compact"]) == 0
    out = capsys.readouterr().out
    step_lines = [ln for ln in out.splitlines() if ln.startswith("[")]
    assert len(step_lines) == 8
    assert all("skipped" in ln for ln in step_lines), out
    assert sha256(d / "g2s.mp4") == before


def test_missing_video_is_a_one_line_error(tmp_path, capsys):
    from data_utils.process import main

    missing = tmp_path / "nope" / "nope.mp4"
    assert main([str(missing)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(missing) in err
    assert not (tmp_path / "nope").exists(), "nothing is created for a missing input"


def test_single_task_needs_its_inputs(tmp_path, capsys):
    from data_utils.process import main

    d = tmp_path / "empty"
    d.mkdir()
    assert main([str(d / "empty.mp4"), "--task", "3"]) == 1
    assert "ori_imgs" in capsys.readouterr().err

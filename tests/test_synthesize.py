"""synthesize_fuse.py on a tiny model trained on the synthetic subject: outputs, sound, bad inputs."""
import json
import logging
import re
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

import synthesize_fuse
import train
from utils.video_io import probe_video


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from tests.fixtures.make_subject import make_subject

    root = tmp_path_factory.mktemp("synth")
    subject = make_subject(root / "synth", n_frames=20, size=48)  # the lips model needs >= 16 training frames
    model = root / "model"
    rc = train.main(["-s", str(subject), "-m", str(model), "--stage", "all", "--mouth_iterations", "12",
                     "--face_iterations", "12", "--fuse_iterations", "4", "--init_num", "200",
                     "--face_init_num", "200", "--backend", "torch", "--quiet"])
    assert rc == 0
    return subject, model


def _write_wav(path, samples, rate=16000):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype(np.int16).tobytes())
    return path


def test_eval_writes_videos_metrics_and_sound(trained):
    subject, model = trained
    assert synthesize_fuse.main(["-S", str(subject), "-M", str(model), "--eval", "--quiet"]) == 0
    out = model / "test" / "ours_None"
    metrics = json.loads((out / "metrics.json").read_text())
    n_val = len(json.loads((subject / "transforms_val.json").read_text())["frames"])
    assert metrics["frames"] == n_val and metrics["lip_gain"] == 1.5  # which widening gave these numbers
    assert 5 < metrics["psnr"] < 60 and 0 < metrics["ssim"] <= 1 and metrics["face_psnr"] is not None
    for rel in ("renders/out.mp4", "gt/out.mp4", "renders/side_by_side.mp4", "renders/out_face.mp4"):
        assert probe_video(out / rel).duration == pytest.approx(n_val / 25, abs=0.05), rel
    assert probe_video(out / "renders" / "out_with_audio.mp4").has_audio
    assert (out / "contact_sheet.png").is_file() and (out / "metrics.md").is_file()


def test_new_audio_longer_than_training_track(trained, tmp_path):
    subject, model = trained
    t = np.arange(int(16000 * 1.6)) / 16000  # 1.6 s = 40 frames, the training track has 10
    wav = _write_wav(tmp_path / "tone.wav", 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)))
    assert synthesize_fuse.main(["-S", str(subject), "-M", str(model), "--use_train", "--audio", str(wav),
                                 "--fast", "--quiet"]) == 0
    info = probe_video(model / "train" / "ours_None" / "renders" / "tone.mp4")  # named after the audio
    assert info.has_audio and info.duration == pytest.approx(1.6, abs=0.04 + 1e-3)


@pytest.mark.parametrize("case", ["missing_model", "wrong_npy", "empty", "silent", "not_audio", "lip_gain"])
def test_bad_input_is_one_clear_error(trained, tmp_path, case, capsys):
    subject, model = trained
    model_arg = str(model)
    if case == "missing_model":
        model_arg, audio = str(tmp_path / "nope"), None
    elif case == "wrong_npy":
        audio = tmp_path / "x_ph.npy"
        np.save(audio, np.zeros((20, 16, 7), np.float32))
    elif case == "empty":
        audio = tmp_path / "empty.wav"
        audio.write_bytes(b"")
    elif case == "silent":
        audio = _write_wav(tmp_path / "silent.wav", np.zeros(16000))
    elif case == "lip_gain":
        audio = _write_wav(tmp_path / "gain0.wav", 0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000))
    else:
        audio = tmp_path / "notes.wav"
        audio.write_text("this is not audio\n")
    before = sorted(p.relative_to(model) for p in model.rglob("*"))
    argv = ["-S", str(subject), "-M", model_arg, "--use_train", "--quiet"] + (["--audio", str(audio)] if audio else [])
    argv += ["--lip_gain", "0"] if case == "lip_gain" else []
    assert synthesize_fuse.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:"), err
    assert case != "lip_gain" or "--lip_gain must be > 0" in err[0]
    assert sorted(p.relative_to(model) for p in model.rglob("*")) == before  # nothing partial left behind


def test_new_audio_renders_never_overwrite(trained, tmp_path, capsys):
    """Two --audio runs leave two videos; a third with a taken name refuses without --overwrite."""
    subject, model = trained
    t = np.arange(16000) / 16000
    renders = model / "train" / "ours_None" / "renders"
    argv = ["-S", str(subject), "-M", str(model), "--use_train", "--fast", "--quiet"]
    first = _write_wav(tmp_path / "hello.wav", 0.3 * np.sin(2 * np.pi * 220 * t))
    second = _write_wav(tmp_path / "world.wav", 0.3 * np.sin(2 * np.pi * 330 * t))
    assert synthesize_fuse.main(argv + ["--audio", str(first)]) == 0
    assert str(renders / "hello.mp4") in capsys.readouterr().out            # it says what it wrote
    assert synthesize_fuse.main(argv + ["--audio", str(second)]) == 0
    for name in ("hello", "world"):
        assert probe_video(renders / f"{name}.mp4").has_audio and (renders / f"{name}_silent.mp4").is_file()
    before = (renders / "hello.mp4").read_bytes()
    other = tmp_path / "other" / "hello.wav"
    other.parent.mkdir()
    _write_wav(other, 0.3 * np.sin(2 * np.pi * 500 * t[:8000]))
    assert synthesize_fuse.main(argv + ["--audio", str(other)]) == 1        # same name: refused, nothing touched
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "hello.mp4 exists" in err[0] and "--overwrite" in err[0], err
    assert (renders / "hello.mp4").read_bytes() == before
    assert synthesize_fuse.main(argv + ["--audio", str(other), "--overwrite"]) == 0
    assert probe_video(renders / "hello.mp4").duration == pytest.approx(0.5, abs=0.05)
    out = tmp_path / "mine" / "take1.mp4"                                   # --out picks the main file
    assert synthesize_fuse.main(argv + ["--audio", str(first), "--out", str(out)]) == 0
    assert probe_video(out).has_audio and (out.parent / "take1_silent.mp4").is_file()
    assert not list(renders.glob(".*tmp*"))


def test_short_audio_warns(trained, tmp_path, caplog):
    subject, model = trained
    wav = _write_wav(tmp_path / "blip.wav", 0.3 * np.sin(2 * np.pi * 220 * np.arange(3200) / 16000))  # 0.2 s
    with caplog.at_level(logging.WARNING):
        assert synthesize_fuse.main(["-S", str(subject), "-M", str(model), "--use_train", "--audio", str(wav),
                                     "--fast", "--quiet"]) == 0
    assert any("0.20 s (5 frames)" in r.getMessage() and "too short" in r.getMessage() for r in caplog.records)


def test_eval_lpips_with_user_weights_and_skipped_metrics_say_why(trained, tmp_path, monkeypatch):
    from tests.utils.test_lpips import _fake_weights

    subject, model = trained
    weights = tmp_path / "lpips"
    weights.mkdir()
    _fake_weights(weights)
    out = model / "test" / "ours_None"
    argv = ["-S", str(subject), "-M", str(model), "--eval", "--quiet"]
    assert synthesize_fuse.main(argv + ["--fast", "--lpips_weights", str(weights)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["lpips"] > 0 and "lpips" not in metrics["skipped"]
    assert metrics["skipped"] == {"lmd": "--fast (no landmark pass)", "mouth_open_corr": "--fast (no landmark pass)"}
    md = (out / "metrics.md").read_text()
    assert re.search(r"^\| lpips \| \d+\.\d{4} \|$", md, re.M) and "| lmd | skipped: --fast" in md
    assert "| lmd | None |" not in md

    import data_utils.lip_tracking

    def no_mediapipe(*_):
        raise ImportError("No module named 'mediapipe'")

    monkeypatch.setattr(data_utils.lip_tracking, "landmark_metrics", no_mediapipe)
    assert synthesize_fuse.main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert "lpips" not in metrics and "--lpips_weights DIR" in metrics["skipped"]["lpips"]
    assert metrics["skipped"]["lmd"] == "mediapipe is not installed"
    assert "| lpips | skipped: no weights given" in (out / "metrics.md").read_text()


def test_saved_config_is_the_checkpoints_and_an_old_format_file_still_renders(trained, tmp_path):
    from arguments import load_config
    from utils.io_utils import load_checkpoint

    subject, model = trained
    cfg = load_config(model)
    assert load_checkpoint(model / "chkpnt_fuse_latest.pth")["config"] == cfg.to_dict()  # one resolved config
    # "auto" is settled before anything is saved: a short clip's lips follow the mouth codes alone
    assert (cfg.model.direct_audio, cfg.model.expression_input) == ("off", "eyelids")
    face = load_checkpoint(model / "chkpnt_fuse_latest.pth")["branches"]["face"]["net"]
    assert not bool(face["direct_audio"])
    old = tmp_path / "old_model"
    shutil.copytree(model, old, ignore=shutil.ignore_patterns("test", "train"))
    flat = json.loads((Path(__file__).parent / "fixtures" / "cfg_args_v1.json").read_text())  # the format before
    flat.update(source_path=str(subject), model_path=str(old), audio_extractor=cfg.model.audio_extractor,
                resolution=-1, backend="torch", data_device="cpu")
    (old / "cfg_args.json").write_text(json.dumps(flat))
    assert synthesize_fuse.main(["-M", str(old), "--eval", "--fast", "--quiet"]) == 0  # -S comes from the file
    assert json.loads((old / "test" / "ours_None" / "metrics.json").read_text())["psnr"] > 5

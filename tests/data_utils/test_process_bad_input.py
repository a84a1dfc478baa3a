"""Bad input, one test each: 30 fps, no audio, stereo 44.1 / 48 kHz, face-less frames, two faces,
truncated files, a missing path, and Ctrl-C in the middle of a step."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.patches import ctrl_c_at_frame
from tests.data_utils.test_process import cut_clip, ffmpeg, sha256

pytestmark = pytest.mark.slow


def _run(video: Path, *flags: str) -> int:
    from data_utils.process import main

    return main([str(video), *flags])


def test_30fps_video_is_resampled_and_audio_stays_aligned(tmp_path, caplog):
    """Synthetic 30 fps clip: the picture turns white and a tone starts at t = 1.0 s. After
    preprocessing both events must land on frame 25 (+-1)."""
    d = tmp_path / "fps30"
    d.mkdir()
    video = d / "fps30.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=black:s=128x128:r=30:d=2",
           "-f", "lavfi", "-i", "sine=f=440:sample_rate=44100:d=2",
           "-filter_complex", "[0:v]drawbox=enable='gte(t,1)':color=white:t=fill[v];"
                              "[1:a]volume=enable='lt(t,1)':volume=0[a]",
           "-map", "[v]", "-map", "[a]", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(video))
    before = sha256(video)
    with caplog.at_level(logging.WARNING):
        assert _run(video, "--task", "2") == 0
    assert any("resampling to 25 fps" in r.getMessage() for r in caplog.records)
    assert _run(video, "--task", "1", "--audio_extractor", "mel") == 0
    import soundfile as sf

    from data_utils.frames import frame_count, read_frame

    n = frame_count(d)
    assert abs(n - 50) <= 1
    first_white = next(i for i in range(n) if read_frame(d, i).mean() > 128)
    audio, sr = sf.read(str(d / "aud.wav"))
    onset = np.flatnonzero(np.abs(audio) > 0.1)[0] / sr * 25
    assert abs(first_white - 25) <= 1 and abs(onset - 25) <= 1, (first_white, onset)
    assert np.load(d / "aud_mel.npy").shape[0] == n
    assert sha256(video) == before


def test_no_audio_track_runs_video_steps_with_a_warning(tmp_path, capsys):
    d = tmp_path / "mute"
    video = cut_clip(d / "mute.mp4", duration=1.0, extra=("-an",))
    before = sha256(video)
    assert _run(video, "--compact") == 0
    captured = capsys.readouterr()
    assert "no audio track" in captured.err
    assert (d / "transforms_train.json").is_file() and not (d / "aud.wav").exists()
    assert _run(video, "--task", "1") == 1
    assert "no audio track" in capsys.readouterr().err
    assert sha256(video) == before


@pytest.mark.parametrize("rate", [44100, 48000])
def test_stereo_audio_becomes_16k_mono(tmp_path, rate):
    import soundfile as sf

    d = tmp_path / "stereo"
    video = cut_clip(d / "stereo.mp4", duration=1.0, extra=("-ar", str(rate), "-ac", "2"))
    before = sha256(video)
    assert _run(video, "--task", "2") == 0
    assert _run(video, "--task", "1") == 0
    assert sha256(video) == before
    info = sf.info(str(d / "aud.wav"))
    assert (info.samplerate, info.channels) == (16000, 1)
    audio, _ = sf.read(str(d / "aud.wav"))
    assert abs(len(audio) - 16000) < 400 and np.sqrt((audio ** 2).mean()) > 0.01  # speech, not silence


def test_short_faceless_gap_is_interpolated_with_a_warning(tmp_path, caplog):
    d = tmp_path / "gap"
    video = cut_clip(d / "gap.mp4", duration=1.6, vf="drawbox=enable='between(n,20,22)':color=black:t=fill")
    assert _run(video, "--task", "2") == 0
    with caplog.at_level(logging.WARNING):
        assert _run(video, "--task", "3") == 0
    assert any("20-22" in r.getMessage() for r in caplog.records)
    meta = json.loads((d / "landmarks.json").read_text())
    assert meta["interpolated_frames"] == [20, 21, 22]
    lms = np.load(d / "landmarks.npy")
    expected = (lms[19] + lms[23]) / 2  # linear interpolation: the middle frame is the mean
    assert np.allclose(lms[21], expected, atol=1e-3)


def test_long_faceless_gap_is_an_error_naming_the_frames(tmp_path, capsys):
    d = tmp_path / "black"
    video = cut_clip(d / "black.mp4", duration=1.6, vf="drawbox=enable='between(n,10,24)':color=black:t=fill")
    assert _run(video, "--task", "2") == 0
    assert _run(video, "--task", "3") == 1
    err = capsys.readouterr().err
    assert "frames 10-24" in err and "15 frames" in err
    assert not (d / "landmarks.npy").exists()


def test_two_faces_keep_the_largest(tmp_path):
    d = tmp_path / "two"
    video = cut_clip(d / "two.mp4", duration=0.6,
                     vf="split[a][b];[b]scale=256:256,pad=256:512:0:128[s];[a][s]hstack")
    before = sha256(video)
    assert _run(video, "--task", "2") == 0
    assert _run(video, "--task", "3") == 0
    meta = json.loads((d / "landmarks.json").read_text())
    assert len(meta["multi_face_frames"]) > 0          # both faces were seen ...
    lms = np.load(d / "landmarks.npy")
    assert lms[..., 0].max() < 512                     # ... and the big (left) one was kept
    assert np.ptp(lms[0, :, 0]) > 150
    assert sha256(video) == before


def test_truncated_mp4(tmp_path, capsys, caplog):
    full = cut_clip(tmp_path / "src" / "full.mp4", duration=2.0, extra=("-movflags", "+faststart"))
    data = full.read_bytes()
    d = tmp_path / "trunc"
    d.mkdir()
    (d / "trunc.mp4").write_bytes(data[: len(data) * 2 // 5])      # header intact, tail missing
    with caplog.at_level(logging.WARNING):
        assert _run(d / "trunc.mp4", "--task", "2") == 0
    assert any("truncated" in r.getMessage() for r in caplog.records)
    n = json.loads((d / "frames.json").read_text())["n_frames"]
    assert 0 < n < 50
    plain = cut_clip(tmp_path / "src" / "plain.mp4", duration=2.0)  # moov atom at the end: unreadable when cut
    d2 = tmp_path / "broken"
    d2.mkdir()
    (d2 / "broken.mp4").write_bytes(plain.read_bytes()[:20000])
    before = sha256(d2 / "broken.mp4")
    assert _run(d2 / "broken.mp4") == 1
    err = capsys.readouterr().err
    assert "broken.mp4" in err and "truncated" in err
    assert sha256(d2 / "broken.mp4") == before


def test_path_that_does_not_exist(tmp_path, capsys):
    assert _run(tmp_path / "nowhere" / "x.mp4") == 1
    assert "does not exist" in capsys.readouterr().err


def test_ctrl_c_never_leaves_a_step_counted_as_done(tmp_path, monkeypatch, capsys):
    import data_utils.landmarks as lm

    d = tmp_path / "intr"
    video = cut_clip(d / "intr.mp4", duration=0.6)
    assert _run(video, "--task", "2") == 0
    real = ctrl_c_at_frame(monkeypatch, 5)
    assert _run(video, "--task", "3") == 130
    assert "rerun" in capsys.readouterr().err
    assert not (d / "landmarks.npy").exists() and not lm.landmarks_complete(d, 15)
    monkeypatch.setattr(lm, "read_frame", real)
    assert _run(video, "--task", "3") == 0
    assert lm.landmarks_complete(d, 15)
    assert not list(d.rglob(".*.tmp*"))

"""One frame decoder: a subject's frames at 25 fps are the same with ffmpeg and with the OpenCV fallback,
for any input rate, a variable rate, and a video that starts after the file's start."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

import utils.video_io as vio
from utils.video_io import FrameTiming, resample_slots, subject_frames, video_start


def _ffmpeg(*args: str) -> None:
    subprocess.run([vio.ffmpeg_exe(), "-nostdin", "-y", "-v", "error", *args], check=True)


def _numbered_clip(path, rate, seconds=2.0, extra=(), vf_after=None):
    """A clip whose source frame n has luma 16 + 2n (n < 100: frames identifiable after decoding), with a tone."""
    vf = "geq=lum='16+mod(N*2\\,200)':cb=128:cr=128" + (f",{vf_after}" if vf_after else "")
    codec = list(extra) if "-crf" in extra else ["-qp", "0", *extra]  # lossless unless the case needs B-frames
    _ffmpeg("-f", "lavfi", "-i", f"color=c=black:s=32x32:r={rate}:d={seconds}", "-f", "lavfi", "-i",
            f"sine=d={seconds}", "-vf", vf, "-c:v", "libx264", *codec, "-c:a", "aac", "-shortest", str(path))
    return path


def _source_ids(frames) -> list[int]:
    return [int(round(f[..., 0].mean() / 255 * 219 / 2)) for f in frames]  # limited-range luma back to n


def _opencv(monkeypatch, path, timing):
    with monkeypatch.context() as m:
        m.setattr(vio, "imageio_ffmpeg", None)  # a machine without imageio-ffmpeg
        return _source_ids(subject_frames(path, timing))


CASES = {
    "30fps": dict(rate=30),
    "24fps": dict(rate=24),
    "29.97fps": dict(rate="30000/1001"),
    "50fps": dict(rate=50),
    "variable_rate": dict(rate=30, extra=("-fps_mode", "vfr"),
                          vf_after="select='not(between(n\\,20\\,27))*not(eq(mod(n\\,7)\\,3))'"),
    # x264's B-frame delay without an edit list: the picture starts 2 frames after the sound, so the
    # container's 50 frames last 2.08 s and ffmpeg lays out 52 frames at 25 fps (the 1258 vs 1260 report)
    "25fps_late_start": dict(rate=25, extra=("-bf", "2", "-crf", "8", "-use_editlist", "0")),
    "30fps_late_start": dict(rate=30, extra=("-bf", "2", "-crf", "8", "-use_editlist", "0")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_opencv_fallback_lays_out_the_frames_like_ffmpeg(case, tmp_path, monkeypatch):
    clip = _numbered_clip(tmp_path / f"{case}.mp4", **CASES[case])
    ffmpeg_ids = _source_ids(subject_frames(clip))
    timing = FrameTiming(len(ffmpeg_ids), video_start(clip))  # what preprocessing records in frames.json
    assert len(set(ffmpeg_ids)) > 30                     # distinct source frames, not one black picture
    assert _opencv(monkeypatch, clip, timing) == ffmpeg_ids


def test_late_start_needs_the_recorded_timing(tmp_path, monkeypatch):
    clip = _numbered_clip(tmp_path / "late.mp4", **CASES["25fps_late_start"])
    ffmpeg_ids = _source_ids(subject_frames(clip))
    start = video_start(clip)
    assert start == pytest.approx(0.08) and len(ffmpeg_ids) == 52
    assert ffmpeg_ids[:3] == [0, 0, 0]                     # ffmpeg shows the first picture from the file's start
    assert _opencv(monkeypatch, clip, None) != ffmpeg_ids  # OpenCV alone cannot see the gap ...
    with pytest.raises(ValueError, match=r"late\.mp4.*50 frames.*wrote 55.*imageio-ffmpeg") as e:
        _opencv(monkeypatch, clip, FrameTiming(55, 0.0))   # ... and a layout it cannot reproduce is refused
    assert "\n" not in str(e.value)


def test_ffmpeg_checks_the_recorded_frame_count(tmp_path):
    clip = _numbered_clip(tmp_path / "c.mp4", rate=25, seconds=1.0)
    with pytest.raises(ValueError, match=r"25 frames.*preprocessing wrote 30.*--task 2 --force"):
        list(subject_frames(clip, FrameTiming(30, 0.0)))


def test_resample_slots_rule():
    # 30 fps -> 25 fps: every 6th source frame is dropped; halves round up (frame 3 at 0.1 s -> tick 2.5 -> 3)
    times = [i / 30 for i in range(12)] + [12 / 30]
    assert list(resample_slots(times, 25)) == [0, 1, 2, 4, 5, 6, 7, 8, 10, 11]
    # a late first frame is shown from 0; a long last frame is held to its end
    assert list(resample_slots([0.08, 0.12, 0.24], 25)) == [0, 0, 0, 1, 1, 1]
    assert list(resample_slots([], 25)) == []

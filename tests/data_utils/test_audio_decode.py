"""Decoding: any format / rate / channel count -> 16 kHz mono float32; clear errors on bad input."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest
import soundfile as sf

from data_utils.audio.decode import as_audio_array, load_audio, n_video_frames
from utils.video_io import ffmpeg_exe


def _tone(freq: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _dominant_hz(x: np.ndarray, sr: int = 16000) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[spec.argmax()])


@pytest.mark.parametrize("sr,fmt,subtype", [(44100, "WAV", "PCM_16"), (48000, "FLAC", "PCM_24"),
                                             (22050, "WAV", "FLOAT"), (16000, "WAV", "PCM_16"), (8000, "OGG", "VORBIS")])
def test_resamples_any_rate_to_16k(tmp_path, sr, fmt, subtype):
    path = tmp_path / f"tone.{fmt.lower()}"
    sf.write(path, _tone(1000.0, 1.0, sr), sr, format=fmt, subtype=subtype)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    slack = 800 if fmt == "OGG" else 40  # vorbis pads the last block
    assert abs(audio.shape[0] - 16000) <= slack, audio.shape  # 1 s
    assert abs(_dominant_hz(audio) - 1000.0) < 2.0
    rms = float(np.sqrt(np.mean(audio[800:-800] ** 2)))
    assert rms == pytest.approx(0.5 / np.sqrt(2), rel=0.02)  # the resampler keeps the level


def test_resampler_removes_content_above_nyquist(tmp_path):
    """A 7 kHz + 11 kHz mix at 44.1 kHz: 11 kHz must not alias down to 5 kHz at 16 kHz."""
    sr = 44100
    x = _tone(7000.0, 1.0, sr, 0.3) + _tone(11000.0, 1.0, sr, 0.3)
    sf.write(tmp_path / "mix.wav", x, sr, subtype="FLOAT")
    audio = load_audio(tmp_path / "mix.wav")
    spec = np.abs(np.fft.rfft(audio[:16000] * np.hanning(16000)))
    freqs = np.fft.rfftfreq(16000, 1 / 16000)
    at = lambda f: spec[np.abs(freqs - f) < 20].max()  # noqa: E731
    assert at(5000.0) < 1e-3 * at(7000.0)


def test_stereo_is_mixed_to_mono(tmp_path):
    left = _tone(440.0, 0.5, 16000, 0.6)
    stereo = np.stack([left, -0.5 * left], axis=1)  # mean = 0.25 * left
    sf.write(tmp_path / "st.wav", stereo, 16000, subtype="FLOAT")
    audio = load_audio(tmp_path / "st.wav")
    np.testing.assert_allclose(audio, 0.25 * left, atol=1e-4)


def test_audio_track_of_a_video(german_video):
    audio = load_audio(german_video)  # AAC, 44.1 kHz stereo inside an mp4
    assert abs(audio.shape[0] / 16000 - 20.0) < 0.1
    assert 0.01 < float(np.abs(audio).mean()) < 0.5 and np.abs(audio).max() <= 1.0


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.wav"):
        load_audio(tmp_path / "nothere.wav")


def test_empty_file(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty.*empty\.wav"):
        load_audio(tmp_path / "empty.wav")


def test_not_audio(tmp_path):
    (tmp_path / "notes.wav").write_text("this is not audio\n" * 20)
    with pytest.raises(ValueError, match=r"Not a readable audio file: .*notes\.wav"):
        load_audio(tmp_path / "notes.wav")


def test_wav_without_samples(tmp_path):
    sf.write(tmp_path / "zero.wav", np.zeros(0, np.int16), 16000)
    with pytest.raises(ValueError, match=r"no samples.*zero\.wav"):
        load_audio(tmp_path / "zero.wav")


def test_video_without_audio_stream(tmp_path):
    path = tmp_path / "silent.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "color=c=red:s=32x32:d=0.5",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)], check=True)
    with pytest.raises(ValueError, match=r"no audio stream.*silent\.mp4"):
        load_audio(path)


def test_n_video_frames_rounds_half_up():
    assert n_video_frames(16000) == 25
    assert n_video_frames(1600) == 3  # 0.1 s = 2.5 frames
    assert n_video_frames(1599) == 2
    assert n_video_frames(16000 * 71 + 3000) == round((71 + 3000 / 16000) * 25)
    assert n_video_frames(0) == 0


def test_as_audio_array_mixes_and_scales():
    x = np.array([[32767, -32768], [16384, 16384]], dtype=np.int16)
    np.testing.assert_allclose(as_audio_array(x), [-0.5 / 32768, 0.5], atol=1e-4)
    assert as_audio_array(x).dtype == np.float32
    with pytest.raises(ValueError, match="NaN"):
        as_audio_array(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="empty"):
        as_audio_array(np.zeros(0))

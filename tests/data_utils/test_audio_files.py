"""Feature files (.npy + sidecar .json), the registry, and frame-count handling in extract_features."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import soundfile as sf

from data_utils.audio_features import (EXTRACTORS, POSTFIXES, AudioFeatures, extract_features, feature_path,
                                       load_features, run_audio_features, save_features)


def _feats(extractor="deepspeech", shape=(10, 16, 29)):
    return AudioFeatures(np.random.default_rng(0).standard_normal(shape).astype(np.float32), extractor,
                         meta={"duration_s": shape[0] / 25})


def _speechlike(seconds: float, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)  # syllable-rate amplitude modulation
    return (0.3 * env * np.sin(2 * np.pi * (200 + 100 * np.sin(2 * np.pi * 0.5 * t)) * t)).astype(np.float32)


def test_registry_names_and_postfixes():
    assert list(EXTRACTORS) == ["phoneme", "pocketsphinx", "mel", "deepspeech", "hubert"]
    assert POSTFIXES == {"phoneme": "ph", "pocketsphinx": "ps", "mel": "mel", "deepspeech": "ds", "hubert": "hu"}
    assert EXTRACTORS["hubert"].window == 2 and EXTRACTORS["deepspeech"].channels == 29


def test_feature_path(tmp_path):
    assert feature_path(tmp_path / "aud.wav", "deepspeech") == tmp_path / "aud_ds.npy"
    assert feature_path(tmp_path / "aud_novel.wav", "hubert") == tmp_path / "aud_novel_hu.npy"
    assert feature_path("x/speech.flac", "phoneme").name == "speech_ph.npy"
    with pytest.raises(ValueError, match="unknown audio extractor 'wav2vec'"):
        feature_path("a.wav", "wav2vec")


def test_save_load_roundtrip(tmp_path):
    feats = _feats()
    npy = save_features(tmp_path / "aud_ds", feats)  # a stem works as well as a .npy path
    assert npy == tmp_path / "aud_ds.npy"
    np.testing.assert_array_equal(np.load(npy), feats.array)  # the plain array, for upstream code
    side = json.loads((tmp_path / "aud_ds.json").read_text())
    assert side["extractor"] == "deepspeech" and side["shape"] == [10, 16, 29]
    assert side["fps"] == 25 and side["sample_rate"] == 16000 and side["version"] == 1
    back = load_features(npy, expected_extractor="deepspeech")
    np.testing.assert_array_equal(back.array, feats.array)
    assert back.meta["duration_s"] == pytest.approx(0.4)
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporaries


def test_load_refuses_other_kind(tmp_path):
    npy = save_features(tmp_path / "aud_mel.npy", _feats("mel", (10, 16, 80)))
    with pytest.raises(ValueError, match=r"holds 'mel' features but 'phoneme' features are expected"):
        load_features(npy, expected_extractor="phoneme")


def test_load_refuses_shape_that_differs_from_sidecar(tmp_path):
    npy = save_features(tmp_path / "aud_ds.npy", _feats())
    np.save(npy, np.zeros((11, 16, 29), np.float32))  # someone overwrote the array alone
    with pytest.raises(ValueError, match=r"differs from its sidecar"):
        load_features(npy)


def test_save_refuses_wrong_layout(tmp_path):
    with pytest.raises(ValueError, match=r"not deepspeech features \[N, 16, 29\]"):
        save_features(tmp_path / "x.npy", _feats("deepspeech", (10, 16, 30)))
    with pytest.raises(ValueError, match=r"not hubert features \[N, 2, C\]"):
        save_features(tmp_path / "x.npy", _feats("hubert", (10, 16, 1024)))


def test_upstream_file_without_sidecar(tmp_path, caplog):
    np.save(tmp_path / "aud_ds.npy", np.zeros((7, 16, 29), np.float32))
    np.save(tmp_path / "aud_hu.npy", np.zeros((7, 2, 1024), np.float32))
    with caplog.at_level(logging.WARNING):
        assert load_features(tmp_path / "aud_ds.npy").extractor == "deepspeech"
    assert "no sidecar" in caplog.text
    assert load_features(tmp_path / "aud_hu.npy", expected_extractor="hubert").n_frames == 7
    with pytest.raises(ValueError, match="not phoneme features"):
        load_features(tmp_path / "aud_ds.npy", expected_extractor="phoneme")
    with pytest.raises(FileNotFoundError, match="nothere_ds.npy"):
        load_features(tmp_path / "nothere_ds.npy")


def test_n_frames_default_is_rounded_duration():
    feats = extract_features(_speechlike(2.5 + 0.019), "mel")  # 63.0 frames (62.975 -> 63)
    assert feats.array.shape == (63, 16, 80) and feats.extractor == "mel" and feats.fps == 25
    assert feats.meta["n_frames_audio"] == 63


def test_n_frames_padding_uses_silence_and_warns(caplog):
    audio = _speechlike(2.0)
    base = extract_features(audio, "mel")
    with caplog.at_level(logging.WARNING):
        longer = extract_features(audio, "mel", n_frames=60)
    assert longer.array.shape == (60, 16, 80)
    assert "50 frames at 25 fps but 60 frames are needed: padding with silence" in caplog.text
    assert base.array.shape == (50, 16, 80)
    # The padded tail is the (normalised) silence level, not a copy of the last speech frame.
    tail = longer.array[55:, 8]
    assert np.ptp(tail, axis=0).max() < 1e-3 and not np.allclose(tail[0], longer.array[40, 8], atol=0.1)


def test_n_frames_trim_and_one_frame_tolerance(caplog):
    audio = _speechlike(2.0)
    with caplog.at_level(logging.WARNING):
        one_off = extract_features(audio, "mel", n_frames=49)
    assert one_off.array.shape == (49, 16, 80) and "frames are needed" not in caplog.text
    with caplog.at_level(logging.WARNING):
        shorter = extract_features(audio, "mel", n_frames=40)
    assert shorter.array.shape == (40, 16, 80) and "cutting the end off" in caplog.text


def test_too_short_and_bad_options():
    with pytest.raises(ValueError, match="too short for one video frame"):
        extract_features(np.zeros(100, np.float32), "mel")
    with pytest.raises(ValueError, match="takes no option"):
        extract_features(np.zeros(16000, np.float32), "mel", graph_path="x.pb")
    with pytest.raises(ValueError, match="unknown audio extractor"):
        extract_features(np.zeros(16000, np.float32), "wav2vec")


def test_run_audio_features_writes_beside_the_wav_and_skips_when_done(tmp_path):
    wav = tmp_path / "aud.wav"
    sf.write(wav, _speechlike(1.0), 16000)
    out = run_audio_features(wav, "mel")
    assert out == tmp_path / "aud_mel.npy" and (tmp_path / "aud_mel.json").is_file()
    stamp = out.stat().st_mtime_ns
    assert run_audio_features(wav, "mel") == out and out.stat().st_mtime_ns == stamp  # up to date
    run_audio_features(wav, "mel", n_frames=30)  # another frame count -> recomputed
    assert load_features(out).n_frames == 30

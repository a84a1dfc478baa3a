"""The command line: `python data_utils/audio_features.py --wav X [--extractor NAME] [--out Y.npy]`."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from data_utils.audio_features import load_features, main
from tests.conftest import REPO


@pytest.fixture
def wav(tmp_path):
    t = np.arange(int(1.3 * 44100)) / 44100
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    path = tmp_path / "speech.wav"
    sf.write(path, np.stack([x, x], axis=1), 44100)  # stereo 44.1 kHz
    return path


def test_default_output_beside_the_input(wav, capsys):
    assert main(["--wav", str(wav), "--extractor", "mel", "--quiet"]) == 0
    out = wav.with_name("speech_mel.npy")
    assert "wrote" in capsys.readouterr().out and out.is_file()
    feats = load_features(out, expected_extractor="mel")
    assert feats.array.shape == (33, 16, 80)  # 1.3 s -> 32.5 -> 33 frames
    assert json.loads(out.with_suffix(".json").read_text())["meta"]["source"] == str(wav)


def test_out_and_n_frames(wav, tmp_path):
    out = tmp_path / "feats" / "x_ph.npy"
    assert main(["--wav", str(wav), "--out", str(out), "--n_frames", "40", "--quiet"]) == 0
    feats = load_features(out, expected_extractor="phoneme")  # phoneme is the default
    assert feats.array.shape == (40, 16, 191)


@pytest.mark.parametrize("content,match", [(b"", "is empty"), (b"RIFF....WAVEfmt garbage" * 10, "Not a readable audio file")])
def test_bad_input_is_one_line_and_nonzero(tmp_path, capsys, content, match):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(content)
    assert main(["--wav", str(bad), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and match in err and str(bad) in err and "\n" not in err
    assert not list(tmp_path.glob("*.npy"))


def test_missing_input(tmp_path, capsys):
    assert main(["--wav", str(tmp_path / "none.wav")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main([]) == 2


def test_list(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in ["phoneme", "pocketsphinx", "mel", "deepspeech", "hubert"]:
        assert name in out


def test_runs_as_a_script(wav):
    res = subprocess.run([sys.executable, "data_utils/audio_features.py", "--wav", str(wav), "--extractor", "mel",
                          "--quiet"], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert wav.with_name("speech_mel.npy").is_file()
    res = subprocess.run([sys.executable, "data_utils/audio_features.py", "--help"], cwd=REPO, capture_output=True,
                         text=True)
    assert res.returncode == 0 and "--extractor" in res.stdout and "hubert" in res.stdout

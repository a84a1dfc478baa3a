"""scripts/pack_subject.py: the portable set is small, complete, and the reader rebuilds the rest from it."""
from __future__ import annotations

import tarfile

import pytest
import torch

from scene.dataset import load_subject
from scripts.pack_subject import main as pack_main
from tests.fixtures.make_subject import make_subject


def test_packed_folder_trains_like_the_original(tmp_path, capsys):
    src = make_subject(tmp_path / "src" / "synth", n_frames=12, size=64, frames="both", write_bg=True)
    out = tmp_path / "synth.tar"
    assert pack_main([str(src), str(out)]) == 0
    assert "synth.tar" in capsys.readouterr().out
    names = tarfile.open(out).getnames()
    assert "synth/synth.mp4" in names and "synth/teeth_mask/3.png" in names and "synth/ori_imgs/3.lms" in names
    assert not [n for n in names if n.endswith(".jpg") and "ori_imgs" in n]  # frames travel as the mp4
    assert not [n for n in names if "/bg/" in n or n.endswith(".npy") and "teeth" in n]
    with tarfile.open(out) as tar:
        tar.extractall(tmp_path / "dst", filter="data")

    original = load_subject(src, "train", progress=False).batch([1, 8])
    packed_data = load_subject(tmp_path / "dst" / "synth", "train", progress=False)
    assert packed_data.cache.meta["source"] == "mp4"
    packed = packed_data.batch([1, 8])
    for k in original["masks"]:
        torch.testing.assert_close(packed["masks"][k], original["masks"][k])
    assert packed["expression"].count_nonzero() > 0  # brows and eyes of the blendshape codes came along
    for k in ("viewmats", "Ks", "lips_rect", "expression", "jaw", "audio_windows", "au25"):
        torch.testing.assert_close(packed[k], original[k])
    assert (packed["image"] - original["image"]).abs().mean() < 0.03  # mp4 vs jpg of the same frames
    assert (packed["background"] - original["background"]).abs().mean() < 0.03  # rebuilt vs bg/<i>.png


def test_pack_needs_the_video_or_frames(tmp_path, capsys):
    src = make_subject(tmp_path / "synth", n_frames=4, size=32)  # jpg frames only
    assert pack_main([str(src), str(tmp_path / "a.tar")]) == 1
    err = capsys.readouterr().err
    assert "synth.mp4" in err and "frame extraction" in err and "\n" not in err.strip()
    assert not (tmp_path / "a.tar").exists()
    assert pack_main([str(src), str(tmp_path / "b.tar.gz"), "--with-frames", "--extractor", "phoneme"]) == 0
    names = tarfile.open(tmp_path / "b.tar.gz").getnames()
    assert "synth/ori_imgs/0.jpg" in names and "synth/aud_ph.npy" in names
    with pytest.raises(SystemExit):
        pack_main(["--bogus"])

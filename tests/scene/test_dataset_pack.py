"""scripts/pack_subject.py: the portable set is small, complete, and the reader rebuilds the rest from it."""
from __future__ import annotations

import subprocess
import tarfile

import pytest
import torch

from scene.data.dataset import load_subject
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


@pytest.mark.parametrize("decoder", ["opencv", "ffmpeg"])
def test_packed_30fps_subject_trains_on_a_machine_without_ffmpeg(tmp_path, monkeypatch, decoder):
    """A 30 fps source whose picture starts 2 frames after its sound (its container: 24 frames = 0.8 s,
    20 frames at 25 fps; ffmpeg lays out 22) is preprocessed here, packed, and trained from the pack
    where imageio-ffmpeg is missing: the frame cache decodes the mp4 with OpenCV to exactly the frames
    preprocessing wrote (and, with ffmpeg, through the same function preprocessing used)."""
    import json

    import cv2
    import numpy as np

    import train
    import utils.video_io as vio
    from data_utils.frames import run_frames
    from scene.data.frame_cache import ensure_cache

    src = make_subject(tmp_path / "src" / "synth", n_frames=20, size=64, frames="both")
    video = src / "synth.mp4"
    resampled = tmp_path / "synth30.mp4"
    subprocess.run([vio.ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(video), "-i", str(src / "aud.wav"),
                    "-map", "0:v", "-map", "1:a", "-vf", "fps=30", "-c:v", "libx264", "-bf", "2", "-crf", "12",
                    "-c:a", "aac", "-use_editlist", "0", str(resampled)], check=True)
    resampled.replace(video)
    run_frames(src, force=True, progress=False)                      # preprocessing (ffmpeg) -> ori_imgs/*.jpg
    layout = json.loads((src / "frames.json").read_text())
    container = cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT)
    assert container == 24 and layout["video_start"] == pytest.approx(2 / 30, abs=1e-3)
    assert layout["n_frames"] == 22                                  # not 24 / 30 * 25 = 20
    assert pack_main([str(src), str(tmp_path / "synth.tar")]) == 0
    with tarfile.open(tmp_path / "synth.tar") as tar:
        assert "synth/frames.json" in tar.getnames()
        tar.extractall(tmp_path / "dst", filter="data")
    dst = tmp_path / "dst" / "synth"
    decoded = np.stack(list(vio.subject_frames(video)))[:20].astype(np.float32)  # what preprocessing encoded
    if decoder == "opencv":
        monkeypatch.setattr(vio, "imageio_ffmpeg", None)             # "another machine": no imageio-ffmpeg

    ids = np.arange(20)
    jpg = ensure_cache(src, ids, progress=False).read("images", ids).astype(np.float32)
    mp4 = ensure_cache(dst, ids, progress=False)
    assert mp4.meta["source"] == "mp4"
    packed = mp4.read("images", ids).astype(np.float32)
    assert np.abs(jpg - decoded).mean() < 4                             # ori_imgs/*.jpg: those frames, JPEG'd
    same = np.abs(packed - decoded).mean(axis=(1, 2, 3))
    shifted = np.abs(packed[2:] - decoded[:-2]).mean(axis=(1, 2, 3))   # what a 2-frame offset would give
    assert same.max() < 0.5 and shifted.mean() > 2, (same, shifted)
    assert train.main(["-s", str(dst), "-m", str(tmp_path / "model"), "--stage", "all", "--mouth_iterations", "3",
                       "--face_iterations", "3", "--fuse_iterations", "1", "--init_num", "100",
                       "--face_init_num", "100", "--mouth_input", "none", "--backend", "torch", "--quiet"]) == 0
    assert (tmp_path / "model" / "chkpnt_fuse_latest.pth").is_file()  # (the lips model reads no frames: skipped)

"""The compact frame cache: built once, reused, invalidated by source changes, atomic, bounded memory."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import scene.data.frame_cache as fc
from scene.data.dataset import load_subject
from tests.fixtures.make_subject import make_subject

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def subject(tmp_path):
    return make_subject(tmp_path / "synth", n_frames=12, size=64)


@pytest.fixture
def count_builds(monkeypatch):
    calls = []
    real = fc.build_cache

    def counting(*args, **kwargs):
        calls.append(args[3] if len(args) > 3 else kwargs.get("size_wh"))
        return real(*args, **kwargs)

    monkeypatch.setattr(fc, "build_cache", counting)
    return calls


def test_cache_builds_once_and_is_reused(subject, count_builds):
    load_subject(subject, "train", progress=False)
    meta = subject / ".cache" / "64x64" / "meta.json"
    stamp = meta.stat().st_mtime_ns
    load_subject(subject, "val", progress=False)  # the other split uses the same cache
    load_subject(subject, "train", progress=False)
    assert len(count_builds) == 1 and meta.stat().st_mtime_ns == stamp
    assert json.loads(meta.read_text())["img_ids"] == list(range(12))
    load_subject(subject, "train", resolution=32, progress=False)  # another resolution: its own cache
    assert len(count_builds) == 2 and (subject / ".cache" / "32x32" / "images.npy").is_file()
    leftovers = [p.name for p in (subject / ".cache").iterdir() if ".tmp" in p.name]
    assert leftovers == []


def test_cache_is_rebuilt_when_a_source_changes(subject, count_builds):
    data = load_subject(subject, "train", progress=False)
    assert data.batch(3)["masks"]["hair"].sum() > 0
    path = subject / "parsing" / "3.png"
    parsing = cv2.imread(str(path))
    parsing[(parsing == 0).all(-1)] = 255  # the parser changed its mind: no hair in frame 3
    cv2.imwrite(str(path), parsing)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    data = load_subject(subject, "train", progress=False)
    assert len(count_builds) == 2
    assert data.batch(3)["masks"]["hair"].sum() == 0 and data.batch(4)["masks"]["hair"].sum() > 0


def test_bg_files_are_used_when_present(subject):
    rebuilt = load_subject(subject, "train", progress=False).batch(2)["background"]
    (subject / "bg").mkdir()
    for i in range(12):
        cv2.imwrite(str(subject / "bg" / f"{i}.png"), np.full((64, 64, 3), (10, 20, 30), np.uint8))  # BGR
    from_files = load_subject(subject, "train", progress=False).batch(2)["background"]
    torch.testing.assert_close(from_files[0, 5, 5], torch.tensor([30, 20, 10]) / 255.0)
    assert not torch.allclose(rebuilt, from_files)


def test_rebuilt_background_keeps_hair_and_hides_the_face(tmp_path):
    subject = make_subject(tmp_path / "synth", n_frames=4, size=192)  # big enough for upstream's pixel constants
    data = load_subject(subject, "train", progress=False)
    b = data.batch(2)
    hair, face = b["masks"]["hair"][0, ..., 0] > 0, b["masks"]["face_only"][0, ..., 0] > 0
    neck_cols = b["masks"]["neck"][0, ..., 0].any(0)  # the torso in-painting paints up to 53 px above the neck
    hair &= ~neck_cols[None, :]
    bg, img = b["background"][0], b["image"][0]
    assert hair.sum() > 50
    assert (bg[hair] - img[hair]).abs().max() < 1e-6  # hair straight from the frame
    inner = torch.from_numpy(cv2.erode(face.numpy().astype(np.uint8), np.ones((15, 15), np.uint8)) > 0)
    rows = torch.nonzero(face.any(1))[:, 0]
    inner[int(rows.min() + 0.4 * (rows.max() - rows.min())):] = False  # forehead and eyes: above the neck in-painting
    assert inner.sum() > 200
    torch.testing.assert_close(bg[inner], data.bc[inner])  # face interior: static background


def test_compact_folder_decodes_the_video(tmp_path, count_builds):
    both = make_subject(tmp_path / "synth", n_frames=12, size=64, frames="both")
    from_jpg = load_subject(both, "train", progress=False, cache_dir=tmp_path / "c1").batch([0, 9])
    for p in (both / "ori_imgs").glob("*.jpg"):
        p.unlink()
    data = load_subject(both, "train", progress=False, cache_dir=tmp_path / "c2")
    assert data.cache.meta["source"] == "mp4"
    from_mp4 = data.batch([0, 9])
    assert (from_jpg["image"] - from_mp4["image"]).abs().mean() < 0.03  # two lossy codecs of one picture
    for k in from_jpg["masks"]:
        torch.testing.assert_close(from_jpg["masks"][k], from_mp4["masks"][k])


def test_failed_build_leaves_no_cache(subject):
    (subject / "parsing" / "7.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="7.png"):
        load_subject(subject, "train", progress=False)
    assert [p.name for p in (subject / ".cache").iterdir() if p.is_dir()] == []


RSS_SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[2])
    import torch  # noqa: F401  (imported before the baseline: its import alone takes ~130 MB)
    from scene.data.dataset import load_subject
    from scene.data.frame_cache import ensure_cache, bg_method

    def status(key):  # kB -> bytes; VmHWM is this process's peak (ru_maxrss survives exec, VmHWM does not)
        return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith(key))

    bg_method()  # imports the background module before the baseline too
    base = status("VmHWM")
    cache = ensure_cache(sys.argv[1], list(range(int(sys.argv[3]))), -1, workers=2, progress=False)
    build = status("VmHWM") - base
    data = load_subject(sys.argv[1], "train", storage="disk", progress=False)
    before = status("VmRSS")
    for i in range(data.num_frames):
        data.batch([i])
    read = status("VmRSS") - before
    nbytes = sum((cache.root / f"{k}.npy").stat().st_size for k in ("images", "labels", "bg"))
    print(json.dumps({"build": build, "read": read, "cache_bytes": nbytes}))
""")


@pytest.mark.slow
def test_memory_stays_bounded_while_building_and_reading(tmp_path):
    """300 frames at 256x256 decoded from the mp4: the cache holds ~131 MB; building and reading it must
    not hold it in RAM (holding it would add >= 131 MB)."""
    n = 300
    subject = make_subject(tmp_path / "big", n_frames=n, size=256, frames="mp4")
    res = subprocess.run([sys.executable, "-c", RSS_SCRIPT, str(subject), str(REPO), str(n)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    m = json.loads(res.stdout.strip().splitlines()[-1])
    mb = {k: v / 2**20 for k, v in m.items()}
    print(f"cache {mb['cache_bytes']:.0f} MB, build peak growth {mb['build']:.1f} MB, read growth {mb['read']:.1f} MB")
    assert mb["cache_bytes"] > 130
    assert mb["build"] < 0.3 * mb["cache_bytes"], mb
    assert mb["read"] < 0.25 * mb["cache_bytes"], mb

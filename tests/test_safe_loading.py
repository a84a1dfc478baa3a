"""Files that may come from someone else load as data only: a crafted checkpoint is refused without
running its code; a model written before this check converts once (scripts/convert_checkpoint.py)."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

import synthesize_fuse
from scripts.convert_checkpoint import main as convert_main
from tests.fixtures.trained_model import train_tiny_model
from utils.io_utils import UnsafeFileError, load_checkpoint, plain_data, save_torch


class Payload:
    """Unpickling this runs a shell command that creates `marker` (what an attacker's file would do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_tiny_model(tmp_path_factory.mktemp("safe"))


@pytest.fixture
def model_copy(trained, tmp_path):
    subject, model = trained
    copy = tmp_path / "model"
    shutil.copytree(model, copy)
    return subject, copy


def _render(subject, model, tmp_path):
    wav = tmp_path / "tone.wav"
    import soundfile as sf

    t = np.arange(8000) / 16000
    sf.write(str(wav), 0.3 * np.sin(2 * np.pi * 220 * t), 16000)
    return synthesize_fuse.main(["-S", str(subject), "-M", str(model), "--use_train", "--audio", str(wav),
                                 "--fast", "--quiet"])


def test_trained_checkpoints_are_plain_data(trained):
    _, model = trained
    for path in sorted(model.glob("chkpnt_*.pth")):
        state = load_checkpoint(path)  # weights_only=True
        assert {"config", "stage", "step", "branches", "sampler"} <= set(state), path


def test_payload_checkpoint_is_refused_by_synthesize_without_running(model_copy, tmp_path, capsys):
    subject, model = model_copy
    ckpt = model / "chkpnt_fuse_latest.pth"
    state = load_checkpoint(ckpt)
    marker = tmp_path / "pwned"
    state["extra"] = Payload(marker)
    torch.save(state, ckpt)
    # the payload is live: a full unpickler runs it (on a copy, to another marker)
    probe = tmp_path / "probe.pth"
    torch.save({"x": Payload(tmp_path / "probe_ran")}, probe)
    torch.load(probe, weights_only=False)
    assert (tmp_path / "probe_ran").exists()

    assert synthesize_fuse.main(["-S", str(subject), "-M", str(model), "--use_train", "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:"), err
    assert str(ckpt) in err[0] and "not plain data; refusing to load it" in err[0]
    assert "scripts/convert_checkpoint.py" in err[0]
    assert not marker.exists()


def _old_format(path):
    """Rewrite a checkpoint as the trainer wrote it before this check: the sampler stack as numpy ints."""
    state = load_checkpoint(path)
    state["sampler"]["stack"] = [np.int64(i) for i in state["sampler"]["stack"]] or [np.int64(3)]
    state["config"]["min_extent"] = np.float64(state["config"]["min_extent"])
    torch.save(state, path)


def test_old_model_converts_once_then_renders(model_copy, tmp_path, capsys):
    subject, model = model_copy
    for path in model.glob("chkpnt_*.pth"):
        _old_format(path)
    with pytest.raises(UnsafeFileError, match="convert_checkpoint.py"):
        load_checkpoint(model / "chkpnt_fuse_latest.pth")
    assert _render(subject, model, tmp_path) == 1
    assert "convert_checkpoint.py" in capsys.readouterr().err
    assert convert_main([str(model), str(model)]) == 0          # the whole model folder, in place
    state = load_checkpoint(model / "chkpnt_fuse_latest.pth")
    assert all(type(i) is int for i in state["sampler"]["stack"]) and type(state["config"]["min_extent"]) is float
    assert _render(subject, model, tmp_path) == 0


def test_plain_data_converts_numpy_and_names_what_it_cannot(tmp_path):
    data = {"a": np.float32(1.5), "b": [np.int64(2), (np.bool_(True),)], "c": np.arange(3), "d": torch.ones(2)}
    out = plain_data(data)
    assert out["a"] == 1.5 and type(out["a"]) is float and type(out["b"][0]) is int and out["b"][1] == (True,)
    assert torch.equal(out["c"], torch.arange(3)) and out["d"] is data["d"]
    plain = {"x": [1, 2], "y": {"z": torch.zeros(1)}}
    assert plain_data(plain) is plain                            # nothing to change: the same object
    with pytest.raises(TypeError, match=r"k\.inner: .*Payload is not plain data"):
        plain_data({"k": {"inner": Payload(tmp_path / "never")}})
    save_torch(tmp_path / "x.pt", data)
    assert load_checkpoint(tmp_path / "x.pt")["b"][0] == 2


def test_damaged_checkpoint_is_one_clear_error(tmp_path):
    path = tmp_path / "chkpnt_fuse_latest.pth"
    save_torch(path, {"w": torch.ones(1000)})
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ValueError, match="not a readable torch file"):
        load_checkpoint(path)

"""`hubert`: the real transformers loading path on a tiny random HuBERT the test saves (skipped
when the optional transformers is not installed)."""
from __future__ import annotations

import numpy as np
import pytest

from data_utils.audio.errors import MissingModelError
from data_utils.audio.hubert import load_hubert
from data_utils.audio_features import extract_features, load_features, main
from tests.fixtures.patches import uninstall


@pytest.fixture(scope="module")
def tiny_hubert(tmp_path_factory):
    transformers = pytest.importorskip("transformers", reason="transformers is an optional extra (hubert)")
    import torch

    cfg = transformers.HubertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                    conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                                    feat_extract_norm="layer", do_stable_layer_norm=True)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("hubert") / "tiny-hubert"
    transformers.HubertModel(cfg).save_pretrained(path)
    return path


def _speech(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.2 * np.sin(2 * np.pi * 220 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
            + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def test_shape_and_alignment(tiny_hubert):
    import torch

    audio = _speech(3.0)
    feats = extract_features(audio, "hubert", model=str(tiny_hubert))
    assert feats.array.shape == (75, 2, 32) and np.isfinite(feats.array).all()
    net, do_normalize = load_hubert(str(tiny_hubert))
    assert do_normalize  # no preprocessor_config.json -> upstream's normalisation
    x = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
    with torch.inference_mode():
        direct = net(torch.from_numpy(x)[None]).last_hidden_state[0].numpy()  # [(48000 - 400) // 320 + 1, 32]
    assert direct.shape == (149, 32)
    np.testing.assert_allclose(feats.array.reshape(150, 32)[:149], direct, atol=1e-4)  # one chunk = one pass
    np.testing.assert_allclose(feats.array[74, 1], direct[148], atol=1e-4)  # the missing step repeats


def test_chunked_long_audio_is_close_to_one_pass(tiny_hubert):
    audio = _speech(12.0)
    one = extract_features(audio, "hubert", model=str(tiny_hubert), chunk_s=60.0).array
    chunked = extract_features(audio, "hubert", model=str(tiny_hubert), chunk_s=3.0, context_s=1.0).array
    assert chunked.shape == one.shape == (300, 2, 32)
    rel = np.abs(chunked - one).mean() / np.abs(one).mean()
    assert rel < 0.05, rel  # global attention differs a little; no seam jumps
    seams = [75, 150, 225]  # video frames at 3 s chunk boundaries
    near = np.abs(chunked - one)[[s + d for s in seams for d in (-1, 0)]].mean() / np.abs(one).mean()
    assert near < 3 * rel + 0.02, (near, rel)


def test_short_clip(tiny_hubert):
    assert extract_features(_speech(0.1), "hubert", model=str(tiny_hubert)).array.shape == (3, 2, 32)


def test_cli_writes_hu_npy(tiny_hubert, tmp_path):
    import soundfile as sf

    sf.write(tmp_path / "aud.wav", _speech(1.0), 16000)
    assert main(["--wav", str(tmp_path / "aud.wav"), "--extractor", "hubert", "--hubert_model", str(tiny_hubert),
                 "--quiet"]) == 0
    assert load_features(tmp_path / "aud_hu.npy", expected_extractor="hubert").array.shape == (25, 2, 32)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    pytest.importorskip("transformers", reason="transformers is an optional extra (hubert)")
    with pytest.raises(MissingModelError, match=r"HuBERT checkpoint not found: .*nothere"):
        extract_features(np.zeros(16000, np.float32), "hubert", model=str(tmp_path / "nothere"))


def test_missing_transformers_is_a_clear_error(monkeypatch):
    uninstall(monkeypatch, 'transformers')
    load_hubert.cache_clear()
    with pytest.raises(MissingModelError, match=r"pip install transformers==4\.57\.6"):
        extract_features(np.zeros(16000, np.float32), "hubert", model="/some/where")

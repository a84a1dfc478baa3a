"""The configuration tree: presets, precedence, the saved cfg_args.json and what synthesis restores."""
import dataclasses
import json
from pathlib import Path

import pytest

import synthesize_fuse
import train
from arguments import (PRESETS, SHORT_CLIP_FRAMES, ModelParams, OptimizationParams, TrainConfig, auto_choice_note,
                       config_from_dict, load_config, resolve, restore_model, save_config, settle_for_clip)

V1 = Path(__file__).parent / "fixtures" / "cfg_args_v1.json"  # written by train.py before the presets


def test_default_preset_is_the_dataclass_defaults():
    cfg = resolve("default", {})
    assert cfg == TrainConfig()
    assert (cfg.mouth_iterations, cfg.face_iterations, cfg.fuse_iterations) == (50000, 50000, 10000)
    assert cfg.model.mouth_input == "codes" and cfg.opt.train_background == "random" and cfg.batch_size == 1


def test_fast_preset():
    cfg = resolve("fast", {})
    assert (cfg.model.resolution, cfg.mouth_iterations, cfg.face_iterations, cfg.fuse_iterations) == (128, 600, 2000, 200)
    assert (cfg.model.init_num, cfg.face_init_num, cfg.face_max_points) == (2000, 1000, 5000)
    assert cfg.opt == OptimizationParams() and cfg.model.mouth_input == "codes"  # only the schedule is shorter
    assert train.parse_config(["--fast"])[0] == train.parse_config(["--preset", "fast"])[0] == cfg


def test_paper_preset_is_upstreams_values():
    cfg = resolve("paper", {})
    assert (cfg.mouth_iterations, cfg.face_iterations, cfg.fuse_iterations, cfg.batch_size) == (50000, 50000, 10000, 1)
    assert (cfg.face_init_num, cfg.model.init_num, cfg.face_grad_threshold, cfg.fuse_opacity_lr) == (2000, 10000, 0.0005,
                                                                                                     0.001)
    assert cfg.opt.train_background == "green" and cfg.model.mouth_input == "none" and not cfg.mouth_codes
    assert cfg.model.expression_input == "all" and cfg.model.direct_audio == "on"
    assert (cfg.opt.motion_eps, cfg.opt.motion_lr_scale, cfg.opt.raw_audio_features) == (1e-8, 1.0, True)
    assert cfg.opt.densify_grad_threshold == 0.0002 and cfg.opt.position_lr_max_steps == 45000


def test_every_preset_names_real_flags_and_differs_only_where_it_says():
    default = dataclasses.asdict(resolve("default", {}))
    for name, values in PRESETS.items():
        cfg = dataclasses.asdict(resolve(name, {}))
        flat = {**{k: v for k, v in cfg.items() if k not in ("model", "opt")}, **cfg["model"], **cfg["opt"]}
        flat_default = {**{k: v for k, v in default.items() if k not in ("model", "opt")}, **default["model"],
                        **default["opt"]}
        changed = {k for k in flat if flat[k] != flat_default[k]}
        assert changed <= set(values), (name, changed - set(values))
    with pytest.raises(ValueError, match="unknown preset"):
        resolve("nope", {})
    with pytest.raises(ValueError, match="unknown configuration key"):
        resolve("default", {"white_background": True})


def test_a_typed_flag_beats_the_preset():
    cfg, args = train.parse_config(["-s", "d", "-m", "m", "--fast", "--face_iterations", "3000", "--resolution", "256",
                                    "--face_max_points", "0", "--motion_lr_scale", "1"])
    assert (cfg.face_iterations, cfg.model.resolution, cfg.face_max_points) == (3000, 256, 0)  # typed
    assert (cfg.mouth_iterations, cfg.fuse_iterations, cfg.face_init_num) == (600, 200, 1000)  # the preset's
    assert cfg.opt.motion_lr_scale == 1.0 and args.preset == "fast"
    cfg, _ = train.parse_config(["--preset", "paper", "--train_background", "random", "--mouth_input", "codes"])
    assert cfg.opt.train_background == "random" and cfg.mouth_codes and cfg.opt.motion_lr_scale == 1.0


def test_stage_lengths_follow_iterations_and_batch_size():
    cfg = train.parse_config(["--batch_size", "4"])[0]
    assert (cfg.mouth_iterations, cfg.face_iterations, cfg.fuse_iterations) == (12500, 12500, 2500)
    cfg = train.parse_config(["--iterations", "1000", "--face_iterations", "7"])[0]
    assert (cfg.mouth_iterations, cfg.face_iterations, cfg.fuse_iterations) == (1000, 7, 200)
    assert train.main(["-s", "d", "-m", "m", "--batch_size", "0"]) == 2


def test_saved_config_round_trips_into_synthesis(tmp_path, monkeypatch):
    cfg = dataclasses.replace(train.parse_config(["-s", "data/x", "-m", str(tmp_path), "--fast", "--sh_degree", "1",
                                                  "--audio_extractor", "mel", "--expression_input", "eyelids",
                                                  "--backend", "torch"])[0], device="cpu")
    save_config(tmp_path, cfg, "fast")
    saved = json.loads((tmp_path / "cfg_args.json").read_text())
    assert saved["format"] == 2 and saved["preset"] == "fast" and saved["model"]["audio_extractor"] == "mel"
    assert load_config(tmp_path) == cfg and restore_model(tmp_path) == cfg.model

    seen = []
    monkeypatch.setattr(synthesize_fuse, "synthesize", lambda model, syn: seen.append(model) or 1 / 0)
    with pytest.raises(ZeroDivisionError):
        synthesize_fuse.main(["-M", str(tmp_path), "--quiet"])
    assert seen[-1] == cfg.model  # exactly the training run's model settings
    with pytest.raises(ZeroDivisionError):
        synthesize_fuse.main(["-M", str(tmp_path), "-S", "data/y", "--resolution", "64", "--device", "cpu"])
    assert seen[-1] == dataclasses.replace(cfg.model, source_path="data/y", resolution=64, device="cpu")


def test_format1_cfg_args_still_loads(tmp_path):
    cfg = config_from_dict(json.loads(V1.read_text()))  # a --fast run with a few flags of its own
    m = cfg.model
    assert (m.source_path, m.audio_extractor, m.resolution, m.init_num, m.expression_input) == ("data/old", "mel", 128,
                                                                                                2000, "upper_face")
    assert m.frame_storage == "device"  # it said --data_device cuda
    assert (cfg.mouth_iterations, cfg.face_iterations, cfg.fuse_iterations, cfg.face_init_num) == (600, 3000, 200, 1000)
    assert cfg.opt == OptimizationParams() and cfg.face_max_points == 5000
    # a model from before expression_input / mouth_input existed behaves the old way
    old = config_from_dict({"source_path": "data/x", "model_path": "m", "mouth_iterations": None, "batch_size": 2})
    assert (old.model.expression_input, old.model.mouth_input, old.mouth_iterations) == ("all", "none", 25000)
    (tmp_path / "cfg_args.json").write_text(V1.read_text())
    assert restore_model(tmp_path, {"device": "cpu"}) == dataclasses.replace(m, device="cpu")


def test_missing_or_newer_config_is_one_clear_error(tmp_path, capsys):
    assert synthesize_fuse.main(["-M", str(tmp_path), "-S", "data/x"]) == 1
    assert "cfg_args.json is missing" in capsys.readouterr().err
    (tmp_path / "cfg_args.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(ValueError, match="newer"):
        load_config(tmp_path)
    model = {**dataclasses.asdict(ModelParams(audio_extractor="mel")), "later_option": 1}
    assert config_from_dict({"format": 2, "model": model}).model == ModelParams(audio_extractor="mel")  # dropped


def test_auto_drives_short_clips_lips_from_the_codes_alone():
    """german20s (454 training frames) memorised its audio with the direct path on; cnn2 (1617) did not."""
    short, long_ = SHORT_CLIP_FRAMES - 1, SHORT_CLIP_FRAMES
    typed = resolve("default", {})
    assert (typed.model.direct_audio, typed.model.expression_input) == ("auto", "auto")
    settled = settle_for_clip(typed, short)
    assert (settled.model.direct_audio, settled.model.expression_input) == ("off", "eyelids")
    assert settled.opt == typed.opt and dataclasses.replace(settled.model, direct_audio="auto",
                                                            expression_input="auto") == typed.model  # nothing else
    note = auto_choice_note(typed, settled, short)
    assert note and "--direct_audio off, --expression_input eyelids" in note and f"{short} training frames" in note
    long_cfg = settle_for_clip(typed, long_)
    assert (long_cfg.model.direct_audio, long_cfg.model.expression_input) == ("on", "upper_face")
    assert auto_choice_note(typed, long_cfg, long_) is None
    # values typed stay; without mouth codes only the audio path can move the lips
    assert settle_for_clip(resolve("default", {"expression_input": "all"}), short).model.expression_input == "all"
    assert settle_for_clip(resolve("default", {"direct_audio": "on"}), short).model.expression_input == "upper_face"
    assert settle_for_clip(resolve("paper", {}), short).model.direct_audio == "on"
    assert settle_for_clip(resolve("default", {"mouth_input": "none"}), short).model.direct_audio == "on"
    # a resumed run keeps what it started with
    started = ModelParams(direct_audio="on", expression_input="upper_face")
    assert settle_for_clip(typed, short, resumed=started).model == dataclasses.replace(
        typed.model, direct_audio="on", expression_input="upper_face")
    with pytest.raises(ValueError, match="direct_audio"):
        ModelParams(direct_audio="maybe")


def test_a_resumed_run_keeps_its_choices(tmp_path):
    """A run continued in its model folder takes "auto" as it was settled when the run started."""
    assert train.resumed_settings(str(tmp_path)) is None  # a fresh folder
    started = settle_for_clip(resolve("default", {}), SHORT_CLIP_FRAMES + 500)  # saved as on / upper_face
    save_config(tmp_path, started)
    assert train.resumed_settings(str(tmp_path)) is None  # settings but no checkpoint yet: a fresh start
    (tmp_path / "chkpnt_mouth_latest.pth").write_bytes(b"")
    assert train.resumed_settings(str(tmp_path)) == started.model
    resumed = settle_for_clip(resolve("default", {}), 10, train.resumed_settings(str(tmp_path)))
    assert (resumed.model.direct_audio, resumed.model.expression_input) == ("on", "upper_face")

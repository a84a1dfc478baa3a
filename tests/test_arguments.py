"""Command lines: flags generated from the configuration dataclasses, upstream's names, no dead flags,
each CLI's --help lists only what it uses."""
import json
import re

import pytest

import synthesize_fuse
import train
from arguments import (ModelParams, OptimizationParams, SynthesisParams, TrainConfig, field_help,
                       flag_fields, flag_names, save_config)


def _help(parser) -> str:
    return " ".join(parser.format_help().split())


def _lists(text: str, flag: str) -> bool:
    return re.search(re.escape(flag) + r"(?![\w])", text) is not None


def test_upstream_flags_and_defaults():
    cfg, _ = train.parse_config(["-S", "data/x", "-m", "output/x", "--densify_grad_threshold", "0.0005", "-r", "256",
                                 "--init_num", "2000", "--opacity_lr", "0.001", "--audio_extractor", "hubert"])
    m, o = cfg.model, cfg.opt
    assert (m.source_path, m.model_path, m.resolution, m.init_num, m.audio_extractor) == ("data/x", "output/x", 256,
                                                                                          2000, "hubert")
    assert (m.sh_degree, o.iterations, o.position_lr_max_steps, o.lambda_dssim, o.feature_lr) == (2, 50000, 45000,
                                                                                                  0.2, 0.0025)
    assert o.densify_grad_threshold == 0.0005 and o.opacity_lr == 0.001
    args = synthesize_fuse.build_parser().parse_args(["-S", "data/x", "-M", "output/x", "--eval", "--use_train",
                                                      "--audio", "a.wav", "--audio_extractor", "hubert", "--dilate",
                                                      "--fast"])
    assert (args.source_path, args.model_path, args.audio_extractor) == ("data/x", "output/x", "hubert")
    assert args.eval and args.use_train and args.dilate and args.fast and args.audio == "a.wav"


@pytest.mark.parametrize("value, storage", [("cpu", "auto"), ("cuda", "device")])
def test_data_device_is_the_old_name_of_frame_storage(value, storage):
    cfg, _ = train.parse_config(["-s", "d", "-m", "m", "--data_device", value])
    assert cfg.model.frame_storage == storage  # cpu was the default: the same frames-where-they-fit choice
    assert train.parse_config(["-s", "d", "-m", "m", "--frame_storage", "disk"])[0].model.frame_storage == "disk"


@pytest.mark.parametrize("flag", ["--white_background", "-w", "--images=x", "--eval", "--debug", "--convert_SHs_python",
                                  "--compute_cov3D_python", "--densify_until_iter=1", "--densify_from_iter=1",
                                  "--densification_interval=1", "--opacity_reset_interval=1", "--random_background",
                                  "--ip=1", "--port=1", "--start_checkpoint=x", "--detect_anomaly", "--audio=x.wav"])
def test_train_rejects_dead_flags(flag, capsys):
    with pytest.raises(SystemExit) as e:
        train.parse_config(["-s", "d", "-m", "m", flag])
    assert e.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--iteration=1", "--white_background", "--debug", "--iterations=5", "--init_num=5",
                                  "--mouth_input=none", "--exp_method=au", "--data_device=cuda"])
def test_synthesize_rejects_dead_and_training_flags(flag, capsys):
    with pytest.raises(SystemExit) as e:
        synthesize_fuse.build_parser().parse_args(["-M", "m", flag])
    assert e.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err


def test_synthesize_help_lists_no_training_flags():
    text = _help(synthesize_fuse.build_parser())
    synthesis = {f.name for f in flag_fields(SynthesisParams)}
    training_only = set(flag_names()) - set(synthesize_fuse.RENDER_FLAGS) - synthesis
    assert training_only and not [f for f in training_only if _lists(text, f"--{f}")]
    assert not _lists(text, "--preset") and not _lists(text, "--stage")
    for flag in ("--audio", "--eval", "--use_train", "--dilate", "--out", "-M", "-S", "--device"):
        assert _lists(text, flag), flag


def test_train_help_lists_every_setting_and_no_synthesis_flag():
    text = _help(train.build_parser())
    for name in flag_names():
        assert _lists(text, f"--{name}"), name
    for flag in ("--audio", "--eval", "--use_train", "--dilate", "--out", "--overwrite", "--mouth_codes"):
        assert not _lists(text, flag), flag
    assert "processed subject folder" in text and "-s SOURCE_PATH" in text
    assert "(default: 2000; fast: 1000)" in text  # presets show beside each default
    assert "--fast short for --preset fast" in text


def test_every_flag_has_help_and_names_are_unique():
    groups = (ModelParams, OptimizationParams, TrainConfig, SynthesisParams)
    for group in groups:
        helps = field_help(group)
        assert all(helps.get(f.name) for f in flag_fields(group)), group
    names = [f.name for g in groups[:3] for f in flag_fields(g)]
    assert len(names) == len(set(names)) == len(flag_names())
    assert not {"model", "opt", "device", "backend"} & {f.name for f in flag_fields(TrainConfig)}  # not flags there


def test_scripts_restore_what_they_do_not_type(tmp_path):
    """Scripts that take ModelParams whole (scripts/lip_motion.py) read the model's saved settings."""
    from tests.script_module import load_script

    save_config(tmp_path, TrainConfig(model=ModelParams(source_path="data/x", model_path=str(tmp_path),
                                                        audio_extractor="mel", sh_degree=1)))
    model, args = load_script("lip_motion").parse_args(["-m", str(tmp_path), "--sh_degree", "2"])
    assert model.audio_extractor == "mel" and model.source_path == "data/x"  # from the training run
    assert model.sh_degree == 2 and args.batch_size == 16  # typed now; the script's own flag untouched
    assert json.loads((tmp_path / "cfg_args.json").read_text())["model"]["audio_extractor"] == "mel"

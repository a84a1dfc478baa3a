import argparse
import json

import pytest

from arguments import (ModelParams, OptimizationParams, PipelineParams, add_group, extract_group, load_combined,
                       save_cfg_args, typed_flags)


def _parser():
    p = argparse.ArgumentParser()
    for g in (ModelParams, PipelineParams, OptimizationParams):
        add_group(p, g)
    return p


def test_upstream_flags_and_defaults():
    a = _parser().parse_args(["-S", "data/x", "-m", "output/x", "--eval", "--densify_grad_threshold", "0.0005"])
    m, o = extract_group(a, ModelParams), extract_group(a, OptimizationParams)
    assert (m.source_path, m.model_path, m.eval, m.sh_degree) == ("data/x", "output/x", True, 2)
    assert o.densify_grad_threshold == 0.0005 and o.iterations == 50000 and o.position_lr_max_steps == 45000
    assert o.lambda_dssim == 0.2 and o.feature_lr == 0.0025


def test_help_lists_field_docs(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert "processed subject folder" in out and "-s SOURCE_PATH" in out


def test_cfg_args_merge_typed_flags_win(tmp_path):
    train_args = _parser().parse_args(["-s", "data/x", "-m", str(tmp_path), "--audio_extractor", "mel", "--sh_degree", "1"])
    save_cfg_args(tmp_path, train_args)
    assert json.loads((tmp_path / "cfg_args.json").read_text())["audio_extractor"] == "mel"
    args = load_combined(_parser(), ["-m", str(tmp_path), "--sh_degree", "2", "--eval"])
    assert args.audio_extractor == "mel"  # from the training run
    assert args.sh_degree == 2  # typed now
    assert args.source_path == "data/x" and args.eval is True


def test_fast_fills_only_untyped_flags():
    import train

    parser = train.build_parser()
    argv = ["-s", "d", "-m", "m", "--fast", "--face_iterations", "3000", "--motion_lr_scale", "1"]
    args = train.apply_fast(parser.parse_args(argv), typed_flags(parser, argv))
    assert args.face_iterations == 3000 and args.motion_lr_scale == 1.0  # typed: kept
    assert args.resolution == 128 and args.mouth_iterations == 600 and args.face_max_points == 5000
    assert args.motion_eps == 1e-15
    assert "resolution" not in typed_flags(parser, argv) and "face_iterations" in typed_flags(parser, argv)


def test_models_from_before_an_option_keep_their_old_behaviour(tmp_path):
    (tmp_path / "cfg_args.json").write_text(json.dumps({"source_path": "data/x", "model_path": str(tmp_path)}))
    assert load_combined(_parser(), ["-m", str(tmp_path)]).expression_input == "all"  # trained before the option
    save_cfg_args(tmp_path, _parser().parse_args(["-s", "data/x", "-m", str(tmp_path)]))
    assert load_combined(_parser(), ["-m", str(tmp_path)]).expression_input == "upper_face"  # today's, saved


def test_script_flags_of_the_training_run_do_not_leak(tmp_path):
    (tmp_path / "cfg_args.json").write_text(json.dumps({"model_path": str(tmp_path), "fast": True, "batch_size": 4,
                                                        "resolution": 128}))
    p = _parser()
    p.add_argument("--fast", action="store_true")  # synthesize_fuse.py's --fast: fewer outputs, not a schedule
    p.add_argument("--batch_size", type=int, default=32)
    args = load_combined(p, ["-m", str(tmp_path)])
    assert args.fast is False and args.batch_size == 32 and args.resolution == 128

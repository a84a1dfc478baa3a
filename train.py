"""Train a DEGSTalk model on one processed subject: mouth field, face field, then their fusion.

    python train.py -s data/<ID> -m output/<ID> --stage all            # the full default schedule
    python train.py -s data/<ID> -m output/<ID> --stage lips           # the audio-to-mouth model only (seconds)
    python train.py -s data/<ID> -m output/<ID> --stage mouth          # one stage (resumes if interrupted)
    python train.py -s data/<ID> -m output/<ID> --stage all --fast     # minutes on a CPU (= --preset fast)
    python train.py -s data/<ID> -m output/<ID> --preset paper         # upstream's values (arguments/presets.py)
    python train.py -s data/<ID> -m output/<ID> --stage all --max_minutes 9   # a resumable chunk

Stages: lips (the audio-to-mouth model: audio -> mouth codes, output/<ID>/audio_to_mouth.pt), mouth
(inside-mouth field), face (face field), fuse. Each field stage writes output/<ID>/chkpnt_<stage>_latest.pth
and resumes from it; a finished stage is skipped. TensorBoard logs and metrics/*.json go to the model folder,
and the resolved settings (preset + flags) to output/<ID>/cfg_args.json, which synthesis restores.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

from arguments import (PRESETS, SUMMARY, ModelParams, OptimizationParams, TrainConfig, add_group, auto_choice_note,
                       flag_names, load_config, resolve, save_config, settle_for_clip,
                       storage_from_data_device)
from utils.general_utils import resolve_device, seed_everything


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                allow_abbrev=False)  # a mistyped or removed flag is an error, not another flag
    presets = {name: values for name, values in PRESETS.items() if values}  # shown beside each default
    model = add_group(p, ModelParams, suppress_defaults=True, presets=presets)
    model.add_argument("--data_device", dest="frame_storage", type=storage_from_data_device, default=argparse.SUPPRESS,
                       metavar="{cpu,cuda}", help="upstream's name of --frame_storage: cpu = auto, cuda = device")
    add_group(p, OptimizationParams, suppress_defaults=True, presets=presets)
    t = add_group(p, TrainConfig, suppress_defaults=True, presets=presets, title="training")
    t.add_argument("--stage", default="all", choices=["lips", "mouth", "face", "fuse", "all"],
                   help="stage(s) to train: lips (audio-to-mouth model), mouth, face, fuse, or all in that order")
    t.add_argument("--preset", default="default", choices=list(PRESETS),
                   help="starting values of every flag above (flags you type win): "
                        + "; ".join(f"{name}: {text}" for name, text in SUMMARY.items()))
    t.add_argument("--fast", dest="preset", action="store_const", const="fast", help="short for --preset fast")
    t.add_argument("--quiet", action="store_true", help="only warnings")
    return p


def parse_config(argv: list[str] | None = None) -> tuple[TrainConfig, argparse.Namespace]:
    """The run's configuration (defaults < --preset < flags typed) and the other flags (--stage, --quiet)."""
    args = build_parser().parse_args(argv)
    return resolve(args.preset, {k: v for k, v in vars(args).items() if k in flag_names()}), args


def resumed_settings(model_path: str) -> ModelParams | None:
    """The saved model settings of a run continued in `model_path` (None for a fresh folder)."""
    if not any(Path(model_path).glob("chkpnt_*_latest.pth")):
        return None
    try:
        return load_config(model_path).model
    except (FileNotFoundError, ValueError):
        return None


def main(argv: list[str] | None = None) -> int:
    try:
        cfg, args = parse_config(argv)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    model = cfg.model
    if not model.source_path or not model.model_path:
        print("error: give the processed subject (-s data/<ID>) and the output folder (-m output/<ID>)", file=sys.stderr)
        return 2
    from scene.data.dataset import load_subject, split_frame_count
    from scene.training.trainer import STAGES, train_lips, train_stage

    try:
        train_frames = split_frame_count(model.source_path, "train")
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    typed, cfg = cfg, settle_for_clip(cfg, train_frames, resumed_settings(model.model_path))
    model = cfg.model
    device = resolve_device(model.device)
    seed_everything(cfg.seed)
    cfg = dataclasses.replace(cfg, backend=model.backend, device=str(device))
    Path(model.model_path).mkdir(parents=True, exist_ok=True)
    save_config(model.model_path, cfg, args.preset)
    stages = STAGES if args.stage == "all" else (args.stage,)
    if not cfg.mouth_codes:
        stages = tuple(s for s in stages if s != "lips")
    features = model.mouth_feature_kinds if cfg.mouth_codes else ()
    try:
        data = load_subject(model.source_path, "train", model.resolution, model.audio_extractor, model.exp_method,
                            device=device, storage=model.frame_storage,
                            expression_input=model.expression_input, mouth_features=features,
                            mouth_code_names=model.mouth_code_names)
        if "lips" in stages:
            val = load_subject(model.source_path, "val", model.resolution, model.audio_extractor, model.exp_method,
                               storage="disk", progress=False, expression_input=model.expression_input,
                               mouth_features=features, mouth_code_names=model.mouth_code_names)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if not args.quiet and (note := auto_choice_note(typed, cfg, train_frames)):
        print(note, file=sys.stderr)
    for stage in stages:
        try:
            if stage == "lips":
                summary = train_lips(data, val, cfg)
                print(f"[lips] audio-to-mouth model: val opening r {summary.get('val_opening_r')} -> {summary['path']}")
                continue
            summary = train_stage(stage, data, cfg)
        except KeyboardInterrupt:
            print(f"\ninterrupted: checkpoint saved in {model.model_path}; run the same command to resume", file=sys.stderr)
            return 130
        except (FileNotFoundError, ValueError) as e:  # e.g. a checkpoint that is not plain data
            print(f"error: {e}", file=sys.stderr)
            return 1
        print(f"[{stage}] {summary['status']} at iteration {summary['end']}/{summary['iterations']}"
              + (f"  {summary['it_per_s']} it/s, PSNR(ema) {summary['ema_psnr']:.2f}" if "it_per_s" in summary else ""))
        if summary["status"] == "paused":
            print("paused (--max_minutes): run the same command to continue")
            return 0
    return 0


if __name__ == "__main__":
    from utils.quiet_logs import quiet_third_party_logs

    quiet_third_party_logs()  # MediaPipe / TFLite / absl lines off the terminal
    sys.exit(main())

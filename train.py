"""Train a DEGSTalk model on one processed subject: mouth field, face field, then their fusion.

    python train.py -s data/<ID> -m output/<ID> --stage all            # the full default schedule
    python train.py -s data/<ID> -m output/<ID> --stage lips           # the audio-to-mouth model only (seconds)
    python train.py -s data/<ID> -m output/<ID> --stage mouth          # one stage (resumes if interrupted)
    python train.py -s data/<ID> -m output/<ID> --stage all --fast     # minutes on a CPU, low resolution
    python train.py -s data/<ID> -m output/<ID> --stage all --max_minutes 9   # a resumable chunk

Stages: lips (the audio-to-mouth model: audio -> mouth codes, output/<ID>/audio_to_mouth.pt), mouth
(inside-mouth field), face (face field), fuse. Each field stage writes output/<ID>/chkpnt_<stage>_latest.pth
and resumes from it; a finished stage is skipped. TensorBoard logs and metrics/*.json go to the model folder.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from arguments import (ModelParams, OptimizationParams, PipelineParams, add_group, extract_group, save_cfg_args,
                       typed_flags)
from utils.general_utils import resolve_device, seed_everything

# --fast: a short low-resolution schedule that still learns lip motion (docs/short_schedule.md), the
# face field at most 5000 Gaussians (bounds the CPU time). Flags typed on the command line win.
FAST = {"resolution": 128, "mouth_iterations": 600, "face_iterations": 2000, "fuse_iterations": 200,
        "init_num": 2000, "face_init_num": 1000, "face_max_points": 5000}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_group(p, ModelParams)
    add_group(p, PipelineParams)
    add_group(p, OptimizationParams)
    t = p.add_argument_group("training")
    t.add_argument("--stage", default="all", choices=["lips", "mouth", "face", "fuse", "all"],
                   help="stage(s) to train: lips (audio-to-mouth model), mouth, face, fuse, or all in that order")
    t.add_argument("--mouth_iterations", type=int, default=None, help="mouth stage length (default: --iterations)")
    t.add_argument("--face_iterations", type=int, default=None, help="face stage length (default: --iterations)")
    t.add_argument("--fuse_iterations", type=int, default=None, help="fuse stage length (default: iterations/5)")
    t.add_argument("--face_init_num", type=int, default=None, help="random Gaussians of the face field (2000)")
    t.add_argument("--face_max_points", type=int, default=0,
                   help="stop densifying the face field at this many Gaussians (0: no limit); bounds CPU time")
    t.add_argument("--fast", action="store_true",
                   help="short low-resolution schedule for CPU runs and demos: 128 px, 600/2000/200 iterations, "
                        "face <= 5000 Gaussians (minutes on a CPU; any flag you type wins)")
    t.add_argument("--batch_size", type=int, default=1,
                   help="frames per step (upstream: 1). With B > 1 the default stage lengths become 50000/B, "
                        "50000/B and 10000/B steps (the same number of frames), several times faster on a GPU")
    t.add_argument("--max_minutes", type=float, default=0.0,
                   help="save a checkpoint and stop after this many minutes (rerun to resume); 0 = no limit")
    t.add_argument("--lpips_weights", default="",
                   help="folder with alexnet-owt-7be5be79.pth and lpips' alex.pth; without them LPIPS terms are skipped")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--quiet", action="store_true", help="only warnings")
    # accepted for upstream command-line compatibility; checkpoints and evaluation are scheduled internally
    for flag in ("--ip", "--port", "--debug_from", "--test_iterations", "--save_iterations",
                 "--checkpoint_iterations", "--start_checkpoint"):
        t.add_argument(flag, nargs="*", help=argparse.SUPPRESS)
    t.add_argument("--detect_anomaly", action="store_true", help=argparse.SUPPRESS)
    return p


def apply_fast(args: argparse.Namespace, typed: set[str]) -> argparse.Namespace:
    """Set the --fast schedule on `args`, except where the user typed a value (`typed`: flag destinations)."""
    for key, value in FAST.items():
        if key not in typed:
            setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    if not args.source_path or not args.model_path:
        print("error: give the processed subject (-s data/<ID>) and the output folder (-m output/<ID>)", file=sys.stderr)
        return 2
    if args.fast:
        apply_fast(args, typed_flags(parser, sys.argv[1:] if argv is None else argv))
    from scene.dataset import load_subject
    from scene.trainer import STAGES, TrainConfig, train_lips, train_stage

    model = extract_group(args, ModelParams)
    opt = extract_group(args, OptimizationParams)
    device = resolve_device(model.device)
    seed_everything(args.seed)
    if args.batch_size < 1:
        print("error: --batch_size must be >= 1", file=sys.stderr)
        return 2
    its = max(opt.iterations // args.batch_size, 1)  # stage lengths count steps of batch_size frames
    cfg = TrainConfig(model=model, opt=opt, batch_size=args.batch_size,
                      mouth_iterations=args.mouth_iterations or its, face_iterations=args.face_iterations or its,
                      fuse_iterations=args.fuse_iterations or max(its // 5, 1),
                      face_init_num=args.face_init_num or 2000, face_max_points=args.face_max_points,
                      max_minutes=args.max_minutes, seed=args.seed,
                      lpips_weights=args.lpips_weights,
                      backend=model.backend, device=str(device))
    Path(model.model_path).mkdir(parents=True, exist_ok=True)
    save_cfg_args(model.model_path, args)
    stages = STAGES if args.stage == "all" else (args.stage,)
    if not cfg.mouth_codes:
        stages = tuple(s for s in stages if s != "lips")
    if model.mouth_input not in ("codes", "none"):
        print(f"error: --mouth_input must be codes or none, got {model.mouth_input!r}", file=sys.stderr)
        return 2
    features = model.mouth_feature_kinds if cfg.mouth_codes else ()
    try:
        data = load_subject(model.source_path, "train", model.resolution, model.audio_extractor, model.exp_method,
                            device=device, storage="auto" if model.data_device == "cpu" else "device",
                            expression_input=model.expression_input, mouth_features=features,
                            mouth_code_names=model.mouth_code_names)
        if "lips" in stages:
            val = load_subject(model.source_path, "val", model.resolution, model.audio_extractor, model.exp_method,
                               storage="disk", progress=False, expression_input=model.expression_input,
                               mouth_features=features, mouth_code_names=model.mouth_code_names)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
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

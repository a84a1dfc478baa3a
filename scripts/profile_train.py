"""Where does a training step spend its time? Profiles a few iterations of one stage.

    python scripts/profile_train.py -s data/<ID> --stage face --resolution 512 [--iters 50] [--out prof.md]

Prints it/s, then the torch profiler's top operators by self CPU time, and the count of
host-device synchronisations (`aten::_local_scalar_dense`, `aten::nonzero`, `cudaStreamSynchronize`,
D2H copies) per iteration: the usual reason a small-kernel training loop runs far below the GPU's speed.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from arguments import ModelParams, OptimizationParams  # noqa: E402
from scene.data.dataset import load_subject  # noqa: E402
from scene.training.trainer import StageRun, TrainConfig, train_lips  # noqa: E402
from utils.io_utils import print_report  # noqa: E402

SYNC_OPS = ("aten::_local_scalar_dense", "aten::nonzero", "cudaStreamSynchronize", "cudaDeviceSynchronize",
            "aten::item", "aten::is_nonzero")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-s", "--source_path", required=True)
    p.add_argument("--stage", default="face", choices=["mouth", "face"])
    p.add_argument("--resolution", type=int, default=512)
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--start", type=int, default=4000, help="iteration to profile at (after the warm-up phase)")
    p.add_argument("--backend", default="auto")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        model = ModelParams(model_path=tmp)
        cfg = TrainConfig(model=model, opt=OptimizationParams(), backend=args.backend, device=str(device))
        features = model.mouth_feature_kinds if cfg.mouth_codes else ()

        def read(split: str, **kw):
            return load_subject(args.source_path, split, args.resolution, mouth_features=features,
                                mouth_code_names=model.mouth_code_names, progress=False, **kw)

        data = read("train", device=device)
        if cfg.mouth_codes:  # the fields read the audio-to-mouth model's codes: fit it first (seconds)
            train_lips(data, read("val", storage="disk"), cfg)
        run = StageRun(args.stage, data, cfg, device)
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        for it in range(args.start, args.start + 20):  # warm-up (allocator, cudnn, gsplat)
            run.iteration(it)
        sync()
        t0 = time.time()
        for it in range(args.start + 20, args.start + 20 + args.iters):
            run.iteration(it)
        sync()
        it_s = args.iters / (time.time() - t0)
        acts = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with torch.profiler.profile(activities=acts) as prof:
            for it in range(args.start + 20 + args.iters, args.start + 20 + 2 * args.iters):
                run.iteration(it)
            sync()
    avg = prof.key_averages()
    lines = [f"# Training-step profile: {args.stage} stage, {data.width}x{data.height}, {device}", "",
             f"- {it_s:.1f} it/s ({1000 / it_s:.2f} ms/it) over {args.iters} iterations at iteration {args.start}",
             f"- Gaussians: {run.branches[args.stage].gaussians.num_points}", "",
             "## Host-device synchronisations per iteration", "", "| op | calls/it |", "|---|---:|"]
    for e in avg:
        if e.key in SYNC_OPS or "DtoH" in e.key or "Memcpy DtoH" in e.key:
            lines.append(f"| {e.key} | {e.count / args.iters:.1f} |")
    lines += ["", "## Top operators by self CPU time", "", "```",
              avg.table(sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=50), "```"]
    print_report(lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Rasterizer benchmark: backends x Gaussian counts x resolutions, printed as a markdown table.

Usage:
    python scripts/bench_render.py                                  # torch on CPU; gsplat too when CUDA is present
    python scripts/bench_render.py --device cuda --backends gsplat,torch
    python scripts/bench_render.py --counts 10000 --resolutions 128 --repeats 5
    python scripts/bench_render.py --skip torch:300000:512 --out docs/bench_render.md

Scene (`random_scene`): N Gaussians in a 0.2 m cube 0.6 m in front of a camera with focal 1.2 W,
scales the RMS distance to the 3 nearest neighbours (x a random per-axis factor in [1/2, 2]),
opacities uniform in [0.1, 0.9], RGB colours, black background. "fwd" is one forward pass under
no_grad; "fwd+bwd" is forward with grad plus backward of a sum over colour, depth and alpha. Times
are medians over --repeats after --warmup runs (CUDA: synchronised); the process CPU time (all
threads) is given too, as wall times on a shared CPU are noisy. Peak memory is CUDA
max_memory_allocated, or on CPU the process's peak RSS during the case (VmHWM, reset per case).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gaussian_renderer._reference import look_at_camera, random_scene  # noqa: E402
from gaussian_renderer.rasterize import rasterize  # noqa: E402
from utils.io_utils import save_text  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        try:  # "5" resets the peak RSS (VmHWM) of this process on Linux
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _time(fn, device: torch.device, repeats: int, warmup: int) -> tuple[float, float]:
    """Median wall and process-CPU milliseconds of fn() over `repeats` runs after `warmup` runs."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        _sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        _sync(device)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def bench_case(backend: str, n: int, res: int, device: torch.device, repeats: int, warmup: int) -> dict:
    """Time one (backend, N, resolution) case; returns a table row."""
    scene = random_scene(n, device=device)
    viewmats, Ks = look_at_camera(res, res, device=device)
    bg = torch.zeros(1, 3, device=device)
    leaves = [t.clone().requires_grad_() for t in scene]

    def forward():
        with torch.no_grad():
            return rasterize(*scene, viewmats, Ks, res, res, bg=bg, backend=backend)

    def forward_backward():
        for t in leaves:
            t.grad = None
        out = rasterize(*leaves, viewmats, Ks, res, res, bg=bg, backend=backend)
        (out.colors.sum() + out.depths.sum() + out.alphas.sum()).backward()

    visible = int((forward().radii > 0).sum())
    _reset_peak(device)
    fwd, fwd_cpu = _time(forward, device, repeats, warmup)
    fwd_bwd, fwd_bwd_cpu = _time(forward_backward, device, repeats, warmup)
    return dict(backend=backend, device=device.type, n=n, res=res, visible=visible, fwd_ms=fwd,
                fwd_bwd_ms=fwd_bwd, fwd_bwd_cpu_ms=fwd_bwd_cpu, fps=1000.0 / fwd, peak_mb=_peak_mb(device))


def format_table(rows: list[dict]) -> str:
    lines = ["| backend | device | Gaussians | resolution | visible | fwd ms | fwd+bwd ms | fwd+bwd process CPU ms "
             "| FPS (fwd) | peak memory MB |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['backend']} | {r['device']} | {r['n']} | {r['res']}x{r['res']} | | "
                         f"skipped: {r['skipped']} | | | | |")
            continue
        lines.append(f"| {r['backend']} | {r['device']} | {r['n']} | {r['res']}x{r['res']} | {r['visible']} | "
                     f"{r['fwd_ms']:.1f} | {r['fwd_bwd_ms']:.1f} | {r['fwd_bwd_cpu_ms']:.0f} | {r['fps']:.1f} | "
                     f"{r['peak_mb']:.0f} |")
    return "\n".join(lines)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default=None,
                        help="comma list of torch, gsplat (default: torch, and gsplat first on CUDA)")
    parser.add_argument("--counts", type=_ints, default=[10_000, 100_000, 300_000], help="Gaussian counts")
    parser.add_argument("--resolutions", type=_ints, default=[128, 512], help="square image sizes")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per case (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per case")
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--skip", default="", help="comma list of backend:count:resolution cases to leave out")
    parser.add_argument("--out", type=Path, default=None, help="also write the table (markdown) here")
    args = parser.parse_args(argv)

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    if args.threads:
        torch.set_num_threads(args.threads)
    default_backends = ["gsplat", "torch"] if device.type == "cuda" else ["torch"]
    backends = args.backends.split(",") if args.backends else default_backends
    skip = {s for s in args.skip.split(",") if s}
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads", flush=True)

    rows = []
    for backend in backends:
        for res in args.resolutions:
            for n in args.counts:
                if f"{backend}:{n}:{res}" in skip:
                    rows.append(dict(backend=backend, device=device.type, n=n, res=res, skipped="--skip"))
                    continue
                row = bench_case(backend, n, res, device, args.repeats, args.warmup)
                rows.append(row)
                print(f"{backend} N={n} {res}x{res}: fwd {row['fwd_ms']:.1f} ms, fwd+bwd {row['fwd_bwd_ms']:.1f} ms, "
                      f"peak {row['peak_mb']:.0f} MB", flush=True)
    table = format_table(rows)
    print(table)
    if args.out is not None:
        save_text(args.out, table + "\n")
    return rows


if __name__ == "__main__":
    main()

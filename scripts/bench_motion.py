"""Timing table for the tri-plane encoder and the motion networks (prints markdown; decides nothing).

    python scripts/bench_motion.py                      # CPU, small sizes
    python scripts/bench_motion.py --device cuda --points 10000 100000 --frames 1 8 32

Rows: the encoder alone (forward, forward+backward), then each motion net per frame, either the
whole path every frame ("full": grid lookup + point features + conditions, what training does)
or with the audio-independent point features cached and B frames at once ("cached", inference).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from scene.models.motion_net import FaceMotionNet, MouthMotionNet  # noqa: E402
from submodules.gridencoder import TriPlaneEncoder  # noqa: E402


def _timeit(fn, device: torch.device, repeats: int, warmup: int = 2) -> tuple[float, float]:
    """(median, min) milliseconds of `fn()` over `repeats` runs (synchronising on CUDA)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return sorted(times)[len(times) // 2], min(times)


def bench_encoder(n: int, device: torch.device, repeats: int) -> list[tuple]:
    enc = TriPlaneEncoder.face().to(device)
    xyz = ((torch.rand(n, 3, device=device) * 2 - 1) * 0.12).requires_grad_(True)

    def fwd():
        with torch.no_grad():
            enc(xyz)

    def fwd_bwd():
        enc.zero_grad(set_to_none=True)
        xyz.grad = None
        enc(xyz).square().sum().backward()

    return [("encoder fwd", n, 1, *_timeit(fwd, device, repeats)),
            ("encoder fwd+bwd", n, 1, *_timeit(fwd_bwd, device, repeats))]


def check_against_cpu(device: torch.device, n: int = 4096) -> tuple[float, float]:
    """Max |difference| of the encoder on `device` (float32) vs CPU float64: (output, table grad)."""
    enc = TriPlaneEncoder.face()
    with torch.no_grad():
        enc.embeddings.normal_()
    xyz = (torch.rand(n, 3) * 2 - 1) * 0.16
    weights = torch.randn(n, enc.output_dim)
    results = []
    for dev, dtype in ((torch.device("cpu"), torch.float64), (device, torch.float32)):
        e = TriPlaneEncoder.face().to(dev, dtype)
        with torch.no_grad():
            e.embeddings.copy_(enc.embeddings)
        out = e(xyz.to(dev, dtype))
        (out * weights.to(dev, dtype)).sum().backward()
        results.append((out.detach().double().cpu(), e.embeddings.grad.double().cpu()))
    (o_ref, g_ref), (o, g) = results
    return (o - o_ref).abs().max().item(), (g - g_ref).abs().max().item()


def bench_motion(kind: str, n: int, frames: list[int], device: torch.device, repeats: int) -> list[tuple]:
    net = (FaceMotionNet() if kind == "face" else MouthMotionNet()).to(device).eval()
    xyz = (torch.rand(n, 3, device=device) * 2 - 1) * 0.1
    emb = torch.randn(n, net.embedding_dim, device=device) * 0.1
    rows = []
    for b in frames:
        windows = torch.randn(b, 8, 29, 16, device=device)
        expr = torch.rand(b, 52, device=device)
        args = (windows, expr) if kind == "face" else (windows,)

        def full():
            with torch.no_grad():
                net.predict(xyz, emb, *args)

        with torch.no_grad():
            feats = net.point_features(net.encode_points(xyz, emb))

        def cached():
            with torch.no_grad():
                code = net.encode_audio(windows)
                net(feats, code, expr) if kind == "face" else net(feats, code)

        rows.append((f"{kind} net full", n, b, *(t / b for t in _timeit(full, device, repeats))))
        rows.append((f"{kind} net cached", n, b, *(t / b for t in _timeit(cached, device, repeats))))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--points", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--frames", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    rows = []
    for n in args.points:
        rows += bench_encoder(n, device, args.repeats)
        for kind in ("face", "mouth"):
            rows += bench_motion(kind, n, args.frames, device, args.repeats)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device: {name}, torch {torch.__version__}, {args.repeats} runs each")
    if device.type != "cpu":
        out_err, grad_err = check_against_cpu(device)
        print(f"encoder on {device} (float32) vs CPU float64: max |out diff| {out_err:.2e}, "
              f"max |table grad diff| {grad_err:.2e}")
    print("| op | points | frames/call | median ms/frame | min ms/frame | frames/s (median) |")
    print("|---|---:|---:|---:|---:|---:|")
    for op, n, b, med, best in rows:
        print(f"| {op} | {n} | {b} | {med:.3f} | {best:.3f} | {1e3 / med:.0f} |")


if __name__ == "__main__":
    main()

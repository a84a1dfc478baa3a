"""Speed of the fused render loop of a trained model, with a breakdown of where the time goes.

    python scripts/bench_synth.py -S data/<ID> -M output/<ID> [--batch_sizes 1 8 32] [--out docs/x.md]

For each batch size: frames per second of `FusedRenderer.render` (no video encoding), then the time
split between the audio encoders, the two motion networks, the two rasterizer calls and the
composite, measured with CUDA events (CPU timers on a CPU).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from scene.models.fused_renderer import FusedRenderer  # noqa: E402
from gaussian_renderer.render import Views, composite, render_face, render_mouth  # noqa: E402
from arguments import restore_model  # noqa: E402
from scene.data.dataset import load_subject  # noqa: E402
from utils.io_utils import print_report  # noqa: E402


class _Timer:
    def __init__(self, device):
        self.cuda = device.type == "cuda"
        self.times: dict[str, float] = {}

    def __call__(self, name, fn):
        if self.cuda:
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            out = fn()
            b.record()
            torch.cuda.synchronize()
            ms = a.elapsed_time(b)
        else:
            t = time.perf_counter()
            out = fn()
            ms = (time.perf_counter() - t) * 1000
        self.times[name] = self.times.get(name, 0.0) + ms
        return out


@torch.no_grad()
def breakdown(r: FusedRenderer, views, windows, expr, bg, code, device) -> dict[str, float]:
    t = _Timer(device)
    fa = t("face audio code", lambda: r.face_net.encode_audio(windows))
    ma = t("mouth audio code", lambda: r.mouth_net.encode_audio(windows))
    fm = t("face motion net", lambda: r.face_net(r.face_points, fa, expr, code))
    mm = t("mouth motion net", lambda: r.mouth_net(r.mouth_points, ma, code))
    face = t("face rasterize (+SH, deform)", lambda: render_face(r.face, fm, views, r.backend))
    mouth = t("mouth rasterize (+SH, deform)", lambda: render_mouth(r.mouth, mm, views, r.backend))
    t("composite", lambda: composite(face, mouth, bg).clamp_(0, 1))
    return t.times


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-S", "--source_path", required=True)
    p.add_argument("-M", "--model_path", required=True)
    p.add_argument("--resolution", type=int, default=512)
    p.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--frames", type=int, default=256, help="frames rendered per batch size")
    p.add_argument("--backend", default="auto")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = restore_model(args.model_path)  # the inputs the model was trained with (features, expression)
    r = FusedRenderer.from_checkpoint(args.model_path, device, model.exp_method, args.backend)
    codes = tuple(r.audio_to_mouth.names) if r.uses_mouth_codes else ()
    data = load_subject(args.source_path, "train", args.resolution, model.audio_extractor, model.exp_method,
                        device=device, progress=False, expression_input=model.expression_input,
                        mouth_code_names=codes)
    if r.uses_mouth_codes:
        data.attach_mouth_model(r.audio_to_mouth)  # the frames' own codes, standardised
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    lines = [f"# Fused render loop: {data.width}x{data.height}, {device} "
             f"({torch.cuda.get_device_name() if device.type == 'cuda' else 'cpu'}), "
             f"face {r.face.num_points} + mouth {r.mouth.num_points} Gaussians", "",
             "| batch | FPS (render only) | ms/frame | " + " | ".join(
                 ["face audio code", "mouth audio code", "face motion net", "mouth motion net",
                  "face rasterize (+SH, deform)", "mouth rasterize (+SH, deform)", "composite"]) + " |",
             "|---:|---:|---:|" + "---:|" * 7]
    for bsz in args.batch_sizes:
        batch = data.batch(list(range(min(bsz, data.num_frames))))
        bsz = batch["viewmats"].shape[0]
        views = Views(batch["viewmats"], batch["Ks"], data.width, data.height)
        args_r = (views, batch["audio_windows"], batch["expression"], batch["background"], batch.get("mouth_code"))
        for _ in range(3):
            r.render(*args_r)
        sync()
        n_calls = max(args.frames // bsz, 1)
        t0 = time.perf_counter()
        for _ in range(n_calls):
            r.render(*args_r)
        sync()
        fps = n_calls * bsz / (time.perf_counter() - t0)
        parts = breakdown(r, *args_r, device)
        lines.append(f"| {bsz} | {fps:.0f} | {1000 / fps:.2f} | "
                     + " | ".join(f"{v / bsz:.3f}" for v in parts.values()) + " |")
    lines.append("")
    lines.append("Breakdown columns: ms per frame of each part, timed separately (one batch, synchronised).")
    print_report(lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

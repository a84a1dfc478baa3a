"""Does a trained model move the mouth with its driving signal? A check on the subject's own frames.

    python scripts/lip_motion.py -S data/<ID> -M output/<ID>            # train split, the run's resolution
    python scripts/lip_motion.py -S data/<ID> -M output/<ID> --split val --json out.json

Renders every frame with its true camera and background, driven by the frame's own audio, mouth code
and expression ("true"), and again with the audio, the mouth code, the expression or all taken from
another frame (a fixed random permutation). In the lips box it reports
- `lips_l1` (true drive) and `lips_l1_shuffled` (both shuffled): a model that uses its drive is closer
  to the video with the frame's own; `drive_gain` = 1 - lips_l1 / lips_l1_shuffled (0: the drive
  changes nothing); `audio_gain`, `mouth_code_gain` and `expression_gain`: the same with only that
  input shuffled (models with mouth codes: the code the audio-to-mouth model predicts from new audio
  is what moves the lips). For new audio, audio and mouth codes are new (expressions replay the
  training video), so audio_gain and mouth_code_gain are what carry over to it;
- `motion_r`: the correlation, over frames and lips-box pixels, between the render's frame-to-frame
  changes and the video's (each minus its own mean over frames); head motion alone explains part of it,
  which `motion_r_shuffled` shows.
Needs no face tracker, so it runs anywhere training runs (the demo's MediaPipe lip check does not).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from utils.io_utils import save_json  # noqa: E402


def _union_box(rects) -> tuple[int, int, int, int]:
    """The rectangle covering every frame's lips box: (r0, r1, c0, c1)."""
    return int(rects[:, 0].min()), int(rects[:, 1].max()), int(rects[:, 2].min()), int(rects[:, 3].max())


def lip_motion(data, renderer, batch_size: int = 16, seed: int = 0) -> dict:
    """Lip-motion scores of `renderer` (FusedRenderer) on the frames of `data` (SubjectData)."""
    import torch

    from gaussian_renderer.render import Views

    n = data.num_frames
    if renderer.uses_mouth_codes:
        data.attach_mouth_model(renderer.audio_to_mouth)  # the frames' own codes, standardised
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    r0, r1, c0, c1 = _union_box(data.batch(list(range(n)))["lips_rect"].cpu())
    crops = {"gt": [], "true": [], "shuffled": []}
    l1 = {"true": 0.0, "shuffled": 0.0, "audio": 0.0, "expression": 0.0, "mouth_code": 0.0}
    box_pixels = 0.0
    with torch.no_grad():
        for s in range(0, n, batch_size):
            ids = list(range(s, min(n, s + batch_size)))
            b = data.batch(ids)
            other = data.batch(perm[ids].tolist())
            views = Views(b["viewmats"], b["Ks"], data.width, data.height)
            box = b["masks"]["lips_box"]
            box_pixels += float(box.sum()) * 3
            crops["gt"].append(b["image"][:, r0:r1, c0:c1].cpu())
            drives = {"true": (b, b, b), "shuffled": (other, other, other), "audio": (other, b, b),
                      "expression": (b, other, b), "mouth_code": (b, b, other)}
            for name, (aud, exp, code) in drives.items():
                image = renderer.render(views, aud["audio_windows"], exp["expression"], b["background"],
                                        code.get("mouth_code"))
                l1[name] += float(((image - b["image"]).abs() * box).sum())
                if name in crops:
                    crops[name].append(image[:, r0:r1, c0:c1].cpu())
    moving = {k: torch.cat(v) - torch.cat(v).mean(0, keepdim=True) for k, v in crops.items()}
    corr = lambda a, b: float((a * b).sum() / (a.norm() * b.norm()).clamp(min=1e-12))
    gain = lambda name: round(1.0 - l1["true"] / max(l1[name], 1e-12), 4)
    return {"frames": n, "lips_l1": round(l1["true"] / box_pixels, 5),
            "lips_l1_shuffled": round(l1["shuffled"] / box_pixels, 5), "drive_gain": gain("shuffled"),
            "audio_gain": gain("audio"), "expression_gain": gain("expression"),
            "mouth_code_gain": gain("mouth_code") if renderer.uses_mouth_codes else None,
            "motion_r": round(corr(moving["true"], moving["gt"]), 4),
            "motion_r_shuffled": round(corr(moving["shuffled"], moving["gt"]), 4)}


def parse_args(argv: list[str] | None = None) -> tuple:
    """(ModelParams: the model's saved settings with the flags typed now on top, the other flags)."""
    from arguments import ModelParams, add_group, restore_from_args

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_group(p, ModelParams, suppress_defaults=True, defaults_from="default: the training run's")
    p.add_argument("--split", default="train", choices=["train", "val"])
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--json", type=Path, default=None, help="also write the scores to this JSON file")
    args = p.parse_args(argv)
    if not getattr(args, "model_path", ""):
        raise ValueError("give the processed subject (-S data/<ID>) and the trained model (-M output/<ID>)")
    return restore_from_args(args), args


def main(argv: list[str] | None = None) -> int:
    try:
        model, args = parse_args(argv)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not model.source_path:
        print("error: give the processed subject (-S data/<ID>) and the trained model (-M output/<ID>)", file=sys.stderr)
        return 2
    from scene.models.fused_renderer import FusedRenderer
    from scene.data.dataset import load_subject
    from utils.general_utils import resolve_device

    device = resolve_device(model.device)
    try:
        renderer = FusedRenderer.from_checkpoint(model.model_path, device, model.exp_method, model.backend)
        data = load_subject(model.source_path, args.split, model.resolution, model.audio_extractor, model.exp_method,
                            device=device, progress=False, expression_input=model.expression_input,
                            mouth_code_names=tuple(renderer.audio_to_mouth.names) if renderer.uses_mouth_codes else ())
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    scores = lip_motion(data, renderer, args.batch_size)
    print(json.dumps(scores))
    if args.json:
        save_json(args.json, scores)
    return 0


if __name__ == "__main__":
    sys.exit(main())  # no MediaPipe here: no native log lines to quiet

"""Metrics of a rendered video against its ground truth (upstream's `metrics.py pred.mp4 gt.mp4`).

    python scripts/metrics.py output/<ID>/test/ours_None/renders/out.mp4 output/<ID>/test/ours_None/gt/out.mp4

Prints a markdown table: full-frame PSNR and SSIM, LMD on the mouth landmarks (MediaPipe; frames
without a detected face are counted, not skipped silently) and the mouth-opening correlation.
`--json out.json` also writes the numbers. The face-crop PSNR/SSIM need the face masks and are
written by `synthesize_fuse.py --eval` (metrics.json beside the videos).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from utils.io_utils import save_json  # noqa: E402
from data_utils.lip_tracking import landmark_metrics  # noqa: E402
from utils.metrics import FrameMetrics, markdown_table  # noqa: E402
from utils.video_io import iter_frames  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pred", type=Path, help="rendered video")
    p.add_argument("gt", type=Path, help="ground-truth video")
    p.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = p.parse_args(argv)
    for path in (args.pred, args.gt):
        if not path.is_file():
            print(f"error: video does not exist: {path}", file=sys.stderr)
            return 1
    frame_metrics = FrameMetrics()
    for pred, gt in zip(iter_frames(args.pred), iter_frames(args.gt)):
        to_t = lambda a: torch.from_numpy(a.copy()).float().div(255)[None]
        frame_metrics.add(to_t(pred), to_t(gt))
    result = {k: v for k, v in frame_metrics.summary().items() if not k.startswith("face") and "face_box" not in k}
    result.update({k: v for k, v in landmark_metrics(iter_frames(args.pred), iter_frames(args.gt)).items() if k != "frames"})
    print(markdown_table(result), end="")
    if args.json:
        save_json(args.json, result)
    return 0


if __name__ == "__main__":
    from utils.quiet_logs import quiet_third_party_logs

    quiet_third_party_logs()  # MediaPipe / TFLite / absl lines off the terminal
    sys.exit(main())

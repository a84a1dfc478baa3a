"""Time the preprocessing pipeline step by step and print a markdown table (never pass/fail).

    python scripts/bench_preprocess.py ../shared/data/video/cnn2.mp4            # every step, fresh folder
    python scripts/bench_preprocess.py ../shared/data/video/cnn2.mp4 --compact --keep /tmp/cnn2
    python scripts/bench_preprocess.py VIDEO --smoothing                         # + pose smoothing trade-off

The video is linked (not copied) into a fresh data/<ID>/ folder under a temp dir, `data_utils/process.py`
runs in a child process (so its peak RSS is its own), and the per-step wall time, CPU time and the
process's peak RSS after each step come from the run's process_log.json. CPU time is the steadier
number on a shared machine.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def smoothing_table(data_dir: Path, windows=(1, 5, 7, 9, 11, 15, 21)) -> str:
    """Reprojection error vs jitter for several Savitzky-Golay windows on the run's landmarks."""
    sys.path.insert(0, str(REPO))
    import numpy as np

    from data_utils.head_pose import build_canonical, fit_rigid, reprojection_errors
    from data_utils.landmarks import load_landmarks
    from data_utils.mesh_topology import RIGID
    from data_utils.pose_math import pose_jitter, smooth_poses

    meta = json.loads((data_dir / "head_pose.json").read_text())
    w, h = (json.loads((data_dir / "frames.json").read_text())[k] for k in ("width", "height"))
    pts = load_landmarks(data_dir).astype(np.float64)
    obs = pts[:, RIGID, :2]
    rigid, R, t, _ = fit_rigid(build_canonical(pts)[RIGID], obs, meta["focal"], w / 2, h / 2)
    rows = ["| window (frames) | reprojection median px | p95 px | rotation jitter deg | translation jitter mm |",
            "|---|---|---|---|---|"]
    for win in windows:
        Rs, ts = smooth_poses(R, t, win)
        err = reprojection_errors(rigid, Rs, ts, meta["focal"], w / 2, h / 2, obs)
        jr, jt = pose_jitter(Rs, ts)
        rows.append(f"| {win} | {np.median(err):.3f} | {np.percentile(err, 95):.3f} | {jr:.3f} | {jt:.2f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("video", type=Path)
    p.add_argument("--keep", type=Path, default=None, help="run in this folder (kept) instead of a temp dir")
    p.add_argument("--smoothing", action="store_true", help="also print the pose smoothing trade-off table")
    args, extra = p.parse_known_args(argv)
    video = args.video.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        name = video.stem
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        link = d / f"{name}.mp4"
        if not link.exists():
            link.symlink_to(video)
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, str(REPO / "data_utils" / "process.py"), str(link), *extra])
        wall = time.perf_counter() - t0
        if res.returncode != 0:
            print(f"process.py failed with exit code {res.returncode}", file=sys.stderr)
            return res.returncode
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        log = json.loads((d / "process_log.json").read_text())
        n = json.loads((d / "frames.json").read_text())["n_frames"]
        print(f"\n{video.name}: {n} frames, flags {' '.join(extra) or '(none)'}\n")
        print("| task | step | wall s | CPU s | peak RSS so far MiB |")
        print("|---|---|---|---|---|")
        for s in log["steps"]:
            print(f"| {s['task']} | {s['step']} | {s['seconds']:.1f} | {s.get('cpu_seconds', float('nan')):.1f} | "
                  f"{s['peak_rss_mb']:.0f} |")
        cpu = sum(s.get("cpu_seconds", 0.0) for s in log["steps"])
        print(f"| | **total** | **{wall:.1f}** | **{cpu:.1f}** | **{peak:.0f}** |")
        pose = json.loads((d / "head_pose.json").read_text()) if (d / "head_pose.json").is_file() else None
        if pose:
            print(f"\nhead pose: focal {pose['focal']:.0f} px, camera {pose['distance_m']:.2f} m, reprojection median "
                  f"{pose['reproj_median_px_raw']:.2f} px raw / {pose['reproj_median_px']:.2f} px smoothed, jitter "
                  f"{pose['jitter_rot_deg_raw']:.3f} -> {pose['jitter_rot_deg']:.3f} deg, "
                  f"{pose['jitter_trans_mm_raw']:.2f} -> {pose['jitter_trans_mm']:.2f} mm, MediaPipe rotation "
                  f"agreement {pose.get('mediapipe_rotation_agreement_deg', float('nan')):.2f} deg")
            if args.smoothing:
                print("\n" + smoothing_table(d))
    return 0


if __name__ == "__main__":
    sys.exit(main())

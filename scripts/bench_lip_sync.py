"""Lip-sync benchmark: does a rendered mouth follow the real mouth of whoever spoke the audio?

    # 1. driving audio cut from a real clip (features of the first 30 s of data/cnn2's own track)
    python scripts/bench_lip_sync.py driver data/cnn2 --seconds 30 --out drivers/cnn2_30s
    # 2. render a model with it (any machine; a GPU is fast): the model of A driven by B's voice
    python synthesize_fuse.py -S data/german20s -M output/german20s --use_train --audio drivers/cnn2_30s_ph.npy
    # 3. score renders against real videos (CPU, MediaPipe): NAME=RENDER.mp4:REAL.mp4
    python scripts/bench_lip_sync.py score \
        "german20s <- cnn2=output/german20s/train/ours_None/renders/cnn2_30s.mp4:data/cnn2/cnn2.mp4" \
        "cnn2 val=output/cnn2/test/ours_None/renders/out.mp4:output/cnn2/test/ours_None/gt/out.mp4" \
        --out docs/lip_sync_runs

    # 4. a picture: the render's mouth over the real one, in the pauses and on the widest vowels
    python scripts/bench_lip_sync.py sheet RENDER.mp4 REAL.mp4 --out docs/sheet.jpg
    # 5. colour fringes: share of magenta and green pixels of renders next to real frames
    python scripts/bench_lip_sync.py fringes output/cnn2/test/ours_None/renders/out.mp4 output/cnn2/test/ours_None/gt/out.mp4

For every pair (the first min(len) frames of both): mouth opening per frame (inner-lip gap over the
outer eye-corner distance, data_utils.lip_tracking.mouth_openings), Pearson r at lag 0, the best r
within +-4 frames and its lag, the amplitude ratio std(render) / std(real), and the chance level
(mean |r| at lags of 1-3 s). Prints a markdown table, writes scores.json and one plot per pair (both openings
over time) into --out. Cross-driven: the real video is the driver's own (B's mouth saying B's words).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def make_driver(subject: Path, seconds: float, out: Path, kinds: list[str]) -> list[Path]:
    """Cut the first `seconds` of a processed subject's aud.wav and extract its features (out_<postfix>.npy)."""
    import numpy as np
    import soundfile

    from data_utils.audio_features import extract_features, feature_path, load_audio, save_features

    audio = load_audio(subject / "aud.wav")
    cut = audio[: int(round(seconds * 16000))]
    out.parent.mkdir(parents=True, exist_ok=True)
    wav = out.with_suffix(".wav")
    soundfile.write(wav, cut.astype(np.float32), 16000)
    return [wav] + [save_features(feature_path(wav, kind), extract_features(cut, kind)) for kind in kinds]


def score_pairs(pairs: list[tuple[str, Path, Path]], out: Path | None) -> list[dict]:
    """Scores of every (name, render, real) pair; plots into `out` when given."""
    from data_utils.lip_tracking import mouth_openings
    from utils.lip_sync import sync_scores

    rows = []
    for name, render, real in pairs:
        for p in (render, real):
            if not p.is_file():
                raise FileNotFoundError(f"{p} does not exist")
        r_open, t_open = mouth_openings(render), mouth_openings(real)
        scores = {"name": name, "render": str(render), "real": str(real), **sync_scores(r_open, t_open)}
        rows.append(scores)
        if out is not None:
            _plot(r_open, t_open, scores, out / f"{_slug(name)}.png")
    return rows


MAGENTA_MIN, GREEN_MIN = 60, 40  # (R+B)/2 - G > 60 is magenta, G - (R+B)/2 > 40 is green


def colour_fringes(video: Path) -> dict:
    """Share (%) of magenta and green pixels over all frames of `video`: a render's fringes vs real frames."""
    import numpy as np

    from utils.video_io import iter_frames

    magenta = green = total = 0
    for frame in iter_frames(video):
        f = frame.astype(np.int16)
        rb, g = (f[..., 0] + f[..., 2]) / 2, f[..., 1]
        magenta += int((rb - g > MAGENTA_MIN).sum())
        green += int((g - rb > GREEN_MIN).sum())
        total += f.shape[0] * f.shape[1]
    if total == 0:
        raise ValueError(f"no frames could be read from {video}")
    return {"video": str(video), "magenta_pct": round(100 * magenta / total, 4), "green_pct": round(100 * green / total, 4)}


def mouth_sheet(render: Path, real: Path, out: Path, n: int = 4, size: int = 160) -> Path:
    """Mouth crops of `render` (top row) over `real` (bottom row) at the n most closed, then the n widest
    real mouths (frames at least 1 s apart), each crop around the mouth found in that frame (JPEG)."""
    import cv2
    import numpy as np

    from data_utils.landmarks import LegacyDetector, quiet_native_stderr
    from data_utils.lip_tracking import mouth_openings
    from utils.io_utils import atomic_path
    from utils.video_io import iter_frames

    opening = mouth_openings(real)
    total = min(len(opening), sum(1 for _ in iter_frames(render)))
    order = np.argsort(np.nan_to_num(opening[:total], nan=np.nanmedian(opening)))

    def spaced(candidates):
        picked = []
        for i in candidates:
            if all(abs(int(i) - j) >= 25 for j in picked):
                picked.append(int(i))
            if len(picked) == n:
                break
        return picked

    frames = spaced(order) + spaced(order[::-1])
    wanted = set(frames)
    grab = lambda v: {i: f for i, f in enumerate(iter_frames(v)) if i in wanted}
    rendered, truth = grab(render), grab(real)
    with quiet_native_stderr():
        detector = LegacyDetector(max_faces=1)
    tiles = []
    try:
        for i in frames:
            row = []
            for img in (rendered[i], truth[i]):
                face = detector(img, i)
                if face is None:
                    crop = img
                else:  # a square around the lips (MediaPipe 61/291 corners, 0/17 outer midpoints)
                    p = face.points[[61, 291, 0, 17], :2]
                    c, half = p.mean(0), 0.9 * np.ptp(p[:, 0])
                    y0, x0 = int(max(c[1] - half, 0)), int(max(c[0] - half, 0))
                    crop = img[y0:int(c[1] + half), x0:int(c[0] + half)]
                row.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_CUBIC))
            tiles.append(np.concatenate(row, 0))
    finally:
        detector.close()
    sheet = np.concatenate(tiles, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    return out


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def _plot(rendered, real, scores: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from utils.io_utils import atomic_path

    n = min(len(rendered), len(real))
    t = np.arange(n) / 25.0
    fig, ax = plt.subplots(figsize=(9, 2.4), dpi=100)
    ax.plot(t, real[:n], color="0.45", lw=1.2, label="real mouth (the speaker)")
    ax.plot(t, rendered[:n], color="tab:red", lw=1.2, label="rendered mouth")
    ax.set_xlabel("seconds")
    ax.set_ylabel("lip gap / eye distance")
    ax.set_title(f"{scores['name']}: r = {scores['r']:.2f} (best {scores['best_r']:.2f} at lag {scores['best_lag']}), "
                 f"amplitude {scores['amplitude']:.2f}, chance {scores['chance']}", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def markdown(rows: list[dict]) -> str:
    lines = ["| pair | frames (scored) | r (lag 0) | best r (lag) | amplitude | chance |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['frames']} ({r['frames_scored']}) | {r['r']:.3f} | "
                     f"{r['best_r']:.3f} ({r['best_lag']:+d}) | {r['amplitude']:.2f} | {r['chance']} |")
    return "\n".join(lines) + "\n"


def _pair(text: str) -> tuple[str, Path, Path]:
    name, _, paths = text.rpartition("=")
    render, _, real = paths.partition(":")
    if not name or not real:
        raise argparse.ArgumentTypeError(f"expected NAME=RENDER.mp4:REAL.mp4, got {text!r}")
    return name, Path(render), Path(real)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("driver", help="cut a subject's audio and extract the features that drive a render")
    d.add_argument("subject", type=Path, help="processed subject folder (its aud.wav)")
    d.add_argument("--seconds", type=float, default=30.0)
    d.add_argument("--out", type=Path, required=True, help="output stem: <out>.wav, <out>_ph.npy, <out>_mel.npy")
    d.add_argument("--kinds", default="phoneme,mel", help="feature kinds to extract")
    m = sub.add_parser("sheet", help="the render's mouth over the real one at the most closed and widest real mouths")
    m.add_argument("render", type=Path)
    m.add_argument("real", type=Path)
    m.add_argument("--out", type=Path, required=True, help="output .jpg")
    m.add_argument("--n", type=int, default=4, help="frames of each kind")
    f = sub.add_parser("fringes", help="share of magenta and green pixels in videos")
    f.add_argument("videos", nargs="+", type=Path)
    s = sub.add_parser("score", help="score renders against real videos")
    s.add_argument("pairs", nargs="+", type=_pair, help="NAME=RENDER.mp4:REAL.mp4")
    s.add_argument("--out", type=Path, default=None, help="folder for scores.json, scores.md and the plots")
    args = p.parse_args(argv)
    try:
        if args.cmd == "driver":
            for path in make_driver(args.subject, args.seconds, args.out, args.kinds.split(",")):
                print(path)
            return 0
        if args.cmd == "sheet":
            print(mouth_sheet(args.render, args.real, args.out, args.n))
            return 0
        if args.cmd == "fringes":
            print("| video | magenta % | green % |\n|---|---:|---:|")
            for v in args.videos:
                r = colour_fringes(v)
                print(f"| {r['video']} | {r['magenta_pct']:.4f} | {r['green_pct']:.4f} |")
            return 0
        rows = score_pairs(args.pairs, args.out)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    table = markdown(rows)
    print(table)
    if args.out is not None:
        from utils.io_utils import save_json, save_text

        save_json(args.out / "scores.json", rows)
        save_text(args.out / "scores.md", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

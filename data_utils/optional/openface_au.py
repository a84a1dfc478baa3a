"""Import an OpenFace 2.x `FeatureExtraction` CSV as `au.csv`.

OpenFace writes column names after the first with a leading space (` AU45_r`); DEGSTalk's reader
wants them without (its issue #1), TalkingGaussian's with. We accept either on input and write
OpenFace's own spelling, with the rows matched to the extracted frame count.

    FeatureExtraction -f data/<ID>/<ID>.mp4 -out_dir /tmp/of -aus
    python data_utils/process.py data/<ID>/<ID>.mp4 --task 7 --openface_csv /tmp/of/<ID>.csv
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from data_utils.frames import PreprocessError
from utils.io_utils import save_text

log = logging.getLogger(__name__)

REQUIRED_AUS = ["AU01_r", "AU04_r", "AU05_r", "AU06_r", "AU07_r", "AU25_r", "AU45_r"]
MAX_ROW_MISMATCH = 2  # frames OpenFace may differ by at the ends of a video


def read_openface_csv(path: Path) -> tuple[list[str], np.ndarray]:
    """(column names with whitespace stripped, float rows [T, C])."""
    path = Path(path)
    if not path.is_file():
        raise PreprocessError(f"OpenFace CSV does not exist: {path}")
    with open(path) as f:
        header = [h.strip() for h in f.readline().split(",")]
    missing = [c for c in REQUIRED_AUS if c not in header]
    if missing:
        raise PreprocessError(f"{path} lacks the columns {', '.join(missing)}: run FeatureExtraction with -aus")
    try:
        rows = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    except ValueError as e:
        raise PreprocessError(f"cannot parse the rows of {path}: {e}") from e
    if rows.shape[1] != len(header):
        raise PreprocessError(f"{path}: {rows.shape[1]} values a row but {len(header)} column names")
    return header, rows


def import_openface_csv(src: Path, dst: Path, n_frames: int | None = None) -> str:
    """Write `dst` in OpenFace's spelling (leading spaces) with exactly `n_frames` rows.

    A row count off by at most MAX_ROW_MISMATCH is fixed (last row repeated or extra rows dropped)
    with a warning; a larger mismatch is an error.
    """
    header, rows = read_openface_csv(src)
    if n_frames is not None and len(rows) != n_frames:
        if abs(len(rows) - n_frames) > MAX_ROW_MISMATCH:
            raise PreprocessError(f"{src} has {len(rows)} rows but the video has {n_frames} frames at 25 fps: "
                                  f"run OpenFace on the 25 fps video")
        log.warning("%s has %d rows for %d frames: padded/cut to match", src, len(rows), n_frames)
        rows = rows[:n_frames] if len(rows) > n_frames else np.concatenate([rows, np.repeat(rows[-1:], n_frames - len(rows), 0)])
    ints = {"frame", "face_id", "success"}
    lines = [", ".join(header)]
    for r in rows:
        lines.append(", ".join(f"{int(v)}" if h in ints else f"{v:g}" for h, v in zip(header, r)))
    save_text(dst, "\n".join(lines) + "\n")
    au25 = rows[:, header.index("AU25_r")]
    return f"au.csv imported from OpenFace ({len(rows)} rows, AU25 p95 {np.percentile(au25, 95):.2f})"

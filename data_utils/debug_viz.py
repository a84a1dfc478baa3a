"""Task 9 (--debug): a contact sheet and a pose/AU track plot to eyeball the preprocessing.

- `debug/contact_sheet.png`: evenly sampled frames with the parsing overlay (when parsing/ exists),
  the 478 landmarks (grey), the 68 iBUG points (yellow) and the head pose axes (x red, y green,
  z blue, 5 cm) projected through the camera of transforms_*.json exactly as the trainer does.
- `debug/tracks.png`: head rotation (raw and smoothed), translation, and the AU tracks over time.
"""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from data_utils.frames import frame_count, read_frame
from data_utils.mesh_topology import MP_TO_IBUG68
from utils.io_utils import atomic_path, load_json

log = logging.getLogger(__name__)

AXIS_LEN_M = 0.05


def load_cameras(data_dir: Path) -> tuple[dict[int, np.ndarray], float, float, float] | None:
    """img_id -> c2w [4, 4] (OpenGL) from both transforms files, plus (focal, cx, cy)."""
    d = Path(data_dir)
    cams, meta = {}, None
    for name in ("transforms_train.json", "transforms_val.json"):
        if (d / name).is_file():
            meta = load_json(d / name)
            cams.update({f["img_id"]: np.array(f["transform_matrix"]) for f in meta["frames"]})
    if meta is None:
        return None
    return cams, float(meta["focal_len"]), float(meta["cx"]), float(meta["cy"])


def project_trainer_style(points: np.ndarray, c2w: np.ndarray, focal: float, cx: float, cy: float) -> np.ndarray:
    """World points [K, 3] -> pixels [K, 2] the way the trainer does: flip c2w columns 1, 2 (OpenGL ->
    OpenCV), invert to w2c, u = f X/Z + cx, v = f Y/Z + cy."""
    c2w = c2w.copy()
    c2w[:3, 1:3] *= -1
    w2c = np.linalg.inv(c2w)
    cam = points @ w2c[:3, :3].T + w2c[:3, 3]
    return focal * cam[:, :2] / cam[:, 2:3] + np.array([cx, cy])


def draw_frame(data_dir: Path, i: int, cams=None) -> np.ndarray:
    """One annotated RGB frame."""
    rgb = read_frame(data_dir, i)
    parsing_png = Path(data_dir) / "parsing" / f"{i}.png"
    if parsing_png.is_file():
        par = cv2.cvtColor(cv2.imread(str(parsing_png)), cv2.COLOR_BGR2RGB)
        rgb = cv2.addWeighted(rgb, 0.6, par, 0.4, 0)
    lm_path = Path(data_dir) / "ori_imgs" / f"{i}.npy"
    if lm_path.is_file():
        pts = np.load(lm_path)[:, :2]
        for x, y in pts:
            cv2.circle(rgb, (int(round(x)), int(round(y))), 1, (200, 200, 200), -1, cv2.LINE_AA)
        for x, y in pts[MP_TO_IBUG68]:
            cv2.circle(rgb, (int(round(x)), int(round(y))), 2, (255, 220, 0), -1, cv2.LINE_AA)
    if cams is not None and i in cams[0]:
        c2w, focal, cx, cy = cams[0][i], *cams[1:]
        axes = np.array([[0, 0, 0], [AXIS_LEN_M, 0, 0], [0, AXIS_LEN_M, 0], [0, 0, AXIS_LEN_M]], np.float64)
        uv = project_trainer_style(axes, c2w, focal, cx, cy)
        o = tuple(int(v) for v in uv[0].round())
        for k, color in ((1, (255, 0, 0)), (2, (0, 255, 0)), (3, (0, 0, 255))):
            cv2.line(rgb, o, tuple(int(v) for v in uv[k].round()), color, 2, cv2.LINE_AA)
    cv2.putText(rgb, str(i), (6, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)
    return rgb


def contact_sheet(data_dir: Path, n: int = 12, cols: int = 4, tile: int = 256) -> np.ndarray:
    """Grid of `n` evenly spaced annotated frames, each `tile` px wide. RGB uint8."""
    total = frame_count(data_dir)
    cams = load_cameras(data_dir)
    tiles = []
    for i in np.linspace(0, total - 1, min(n, total)).round().astype(int):
        img = draw_frame(data_dir, int(i), cams)
        h = int(round(img.shape[0] * tile / img.shape[1]))
        tiles.append(cv2.resize(img, (tile, h), interpolation=cv2.INTER_AREA))
    while len(tiles) % cols:
        tiles.append(np.zeros_like(tiles[0]))
    return np.vstack([np.hstack(tiles[r:r + cols]) for r in range(0, len(tiles), cols)])


def plot_tracks(data_dir: Path, out: Path) -> bool:
    """Pose and AU tracks over time; False when neither track_params.pt nor au.csv exists."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = Path(data_dir)
    has_pose, has_au = (d / "track_params.pt").is_file(), (d / "au.csv").is_file()
    if not (has_pose or has_au):
        return False
    fig, axes = plt.subplots(3, 1, figsize=(12, 9), sharex=True)
    if has_pose:
        from utils.io_utils import load_checkpoint

        tp = load_checkpoint(d / "track_params.pt")
        t = np.arange(len(tp["euler"])) / 25.0
        for k, name in enumerate(("pitch (x)", "yaw (y)", "roll (z)")):
            axes[0].plot(t, np.degrees(tp["euler_raw"][:, k].numpy()), lw=0.5, alpha=0.5, color=f"C{k}")
            axes[0].plot(t, np.degrees(tp["euler"][:, k].numpy()), lw=1, color=f"C{k}", label=name)
            axes[1].plot(t, 100 * tp["trans"][:, k].numpy(), lw=1, color=f"C{k}", label="xyz"[k])
        axes[0].set_ylabel("rotation (deg)\nthin: raw")
        axes[1].set_ylabel("translation (cm)")
        axes[0].legend(loc="upper right", fontsize=8)
        axes[1].legend(loc="upper right", fontsize=8)
        stats = tp.get("stats", {})
        axes[0].set_title(f"focal {stats.get('focal', 0):.0f} px, reprojection median "
                          f"{stats.get('reproj_median_px', float('nan')):.2f} px")
    if has_au:
        with open(d / "au.csv") as f:
            header = [h.strip() for h in f.readline().split(",")]
        au = np.loadtxt(d / "au.csv", delimiter=",", skiprows=1, ndmin=2)
        t = np.arange(len(au)) / 25.0
        for k, name in enumerate(header):
            if name.startswith("AU"):
                axes[2].plot(t, au[:, k], lw=0.8, label=name)
        axes[2].set_ylabel("AU intensity")
        axes[2].legend(loc="upper right", fontsize=8, ncol=7)
    axes[2].set_xlabel("time (s)")
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
    return True


def run_debug(data_dir: Path, force: bool = False) -> str:
    """Write debug/contact_sheet.png and debug/tracks.png (always redrawn: they are cheap)."""
    data_dir = Path(data_dir)
    sheet = contact_sheet(data_dir)
    out = data_dir / "debug" / "contact_sheet.png"
    with atomic_path(out) as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    plotted = plot_tracks(data_dir, data_dir / "debug" / "tracks.png")
    return f"debug: {out}" + (f" and {data_dir / 'debug' / 'tracks.png'}" if plotted else "")

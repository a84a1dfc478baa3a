"""Does a rendered talking head move its lips with its audio? Scores and pictures of lip tracks.

The tracks are measured by data_utils.lip_tracking (MediaPipe). Against a real video of the same
speech (the benchmark, docs/lip_sync.md):

    rendered = mouth_openings("render.mp4")              # [T] inner-lip gap / eye-corner distance
    real = mouth_openings("speaker.mp4")                 # the real mouth of whoever spoke the audio
    sync_scores(rendered, real)                          # r at lag 0, best lag, amplitude, chance level

Against the audio alone (the demo's lip check, any voice, no video needed):

    track = measure_lips("result.mp4", "speech.wav")     # LipTrack: inner-lip gap and loudness per frame
    track.summary()                                      # {"lip_loudness_r": 0.75, ...}
    plot_lip_track(track, "result_lips.png")             # the two curves over time
    contact_sheet("result.mp4", "sheet.jpg", frames=track.spanning(6))

The lip check is the Pearson r between the inner-lip gap (pixels of the video) and the audio's
loudness per frame. A head whose lips follow speech scores well above 0.3; the same video against
unrelated speech scores near 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

FPS = 25.0


def _r_at_lag(pred: np.ndarray, real: np.ndarray, lag: int) -> float:
    """Pearson r of pred[t + lag] with real[t] over the frames where both exist (nan if < 10)."""
    if lag >= 0:
        a, b = pred[lag:], real[:len(real) - lag]
    else:
        a, b = pred[:lag], real[-lag:]
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 10 or a[ok].std() == 0 or b[ok].std() == 0:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def sync_scores(rendered: np.ndarray, real: np.ndarray, max_lag: int = 4,
                chance_lags: tuple[float, float] = (1.0, 3.0)) -> dict:
    """How well a rendered mouth follows the real one: both [T] openings (NaN = no face), same frames.

    Returns r at lag 0; the best r within +-max_lag frames and its lag (positive: the render is late);
    the amplitude ratio std(rendered) / std(real); the chance level: the mean |r| at lags of
    1-3 s both ways (what unrelated motion of the same two signals scores); frame counts.
    """
    n = min(len(rendered), len(real))
    pred, real = np.asarray(rendered[:n], np.float64), np.asarray(real[:n], np.float64)
    lags = {lag: _r_at_lag(pred, real, lag) for lag in range(-max_lag, max_lag + 1)}
    finite = {k: v for k, v in lags.items() if np.isfinite(v)}
    best = max(finite, key=finite.get) if finite else 0
    lo, hi = (int(round(s * FPS)) for s in chance_lags)
    chance = [abs(_r_at_lag(pred, real, s * lag)) for lag in range(lo, hi + 1) for s in (1, -1)]
    chance = [c for c in chance if np.isfinite(c)]
    ok = np.isfinite(pred) & np.isfinite(real)
    amp = float(np.nanstd(pred[ok]) / np.nanstd(real[ok])) if ok.sum() > 2 and np.nanstd(real[ok]) > 0 else float("nan")
    return {"r": round(lags[0], 4), "best_r": round(finite.get(best, float("nan")), 4), "best_lag": int(best),
            "amplitude": round(amp, 4), "chance": round(float(np.mean(chance)), 4) if chance else None,
            "frames": int(n), "frames_scored": int(ok.sum())}


@dataclass
class LipTrack:
    gaps: np.ndarray  # [T] inner-lip gap in video pixels, NaN where no face was found
    loudness: np.ndarray  # [T] in [0, 1]

    @property
    def found(self) -> np.ndarray:
        return ~np.isnan(self.gaps)

    @property
    def r(self) -> float:
        ok = self.found
        if ok.sum() <= 2 or np.std(self.gaps[ok]) == 0 or np.std(self.loudness[ok]) == 0:
            return float("nan")
        return float(np.corrcoef(self.gaps[ok], self.loudness[ok])[0, 1])

    def summary(self) -> dict:
        ok = self.found
        return {"lip_loudness_r": round(self.r, 3), "frames": int(len(self.gaps)),
                "frames_without_face": int((~ok).sum()),
                "mouth_gap_px_p5_p95": [round(float(v), 2) for v in np.nanpercentile(self.gaps, [5, 95])]
                if ok.any() else None}

    def spanning(self, n: int) -> list[int]:
        """`n` frames from the most closed to the most open mouth (by gap quantile), in time order."""
        ok = np.flatnonzero(self.found)
        if len(ok) == 0:
            return np.linspace(0, len(self.gaps) - 1, n).astype(int).tolist()
        order = ok[np.argsort(self.gaps[ok], kind="stable")]
        picks = order[np.linspace(0, len(order) - 1, min(n, len(order))).round().astype(int)]
        return sorted(set(picks.tolist()))


def plot_lip_track(track: LipTrack, out: str | Path, fps: float = 25.0, title: str = "") -> Path:
    """PNG of the lip gap and the loudness over time (each scaled to its own range)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from utils.io_utils import atomic_path

    t = np.arange(len(track.gaps)) / fps
    fig, ax = plt.subplots(figsize=(9, 2.6), dpi=110)
    ax.plot(t, track.loudness, color="0.6", lw=1.2)
    ax.set_ylabel("audio loudness", color="0.45")
    ax.set_xlabel("seconds")
    ax2 = ax.twinx()
    ax2.plot(t, track.gaps, color="tab:red", lw=1.4)
    ax2.set_ylabel("inner-lip gap (px)", color="tab:red")
    ax.set_title(title or f"lip gap vs loudness: r = {track.r:.2f}", fontsize=10)
    fig.tight_layout()
    out = Path(out)
    with atomic_path(out, suffix=out.suffix) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return out


def contact_sheet(video: str | Path, out: str | Path, frames: list[int] | None = None, n: int = 6,
                  height: int = 192) -> Path:
    """A row of frames of `video` (`frames`, else `n` evenly spaced) and under it their mouths enlarged (JPEG)."""
    import cv2

    from utils.io_utils import atomic_path
    from utils.video_io import iter_frames, probe_video

    if frames is None:
        info = probe_video(video)
        total = max(int(round(info.duration * info.fps)), 1)
        frames = np.linspace(total * 0.1, total * 0.9, n).astype(int).tolist()
    wanted = set(frames)
    picked = [f for i, f in enumerate(iter_frames(video)) if i in wanted]
    if not picked:
        raise ValueError(f"no frames could be read from {video}")
    h, w = picked[0].shape[:2]
    top = [cv2.resize(f, (height * w // h, height), interpolation=cv2.INTER_AREA) for f in picked]
    # the mouth sits in the lower-middle of a head-and-shoulders crop
    y0, y1, x0, x1 = int(0.5 * h), int(0.72 * h), int(0.32 * w), int(0.68 * w)
    mouth = [cv2.resize(f[y0:y1, x0:x1], (top[0].shape[1], top[0].shape[1] * (y1 - y0) // (x1 - x0)),
                        interpolation=cv2.INTER_CUBIC) for f in picked]
    sheet = np.concatenate([np.concatenate(top, 1), np.concatenate(mouth, 1)], 0)
    out = Path(out)
    with atomic_path(out) as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    return out

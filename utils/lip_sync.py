"""Does a rendered talking head move its lips with its audio? Measured on the video alone.

    track = measure_lips("result.mp4", "speech.wav")     # MediaPipe inner-lip gap and loudness per frame
    track.summary()                                      # {"lip_loudness_r": 0.75, ...}
    plot_lip_track(track, "result_lips.png")             # the two curves over time
    contact_sheet("result.mp4", "sheet.jpg", frames=track.spanning(6))

The score is the Pearson r between the gap between the inner lips (MediaPipe face mesh points 13 and
14, in pixels of the video) and the audio's loudness per frame. A head whose lips follow speech
scores well above 0.3; the same video against unrelated speech scores near 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

UPPER_INNER_LIP, LOWER_INNER_LIP = 13, 14  # MediaPipe face mesh indices


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


def measure_lips(video: str | Path, audio: str | Path) -> LipTrack:
    """MediaPipe's inner-lip gap on every frame of `video` and the loudness of `audio` per frame."""
    import mediapipe as mp

    from data_utils.audio_features import load_audio
    from data_utils.landmarks import upscaled_for_detection
    from data_utils.sample.speech import loudness_track
    from utils.video_io import iter_frames

    gaps = []
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=True) as mesh:
        for frame in iter_frames(video):
            res = mesh.process(upscaled_for_detection(frame)[0])  # normalised coordinates: no scale back
            lm = res.multi_face_landmarks[0].landmark if res.multi_face_landmarks else None
            gaps.append(np.nan if lm is None else (lm[LOWER_INNER_LIP].y - lm[UPPER_INNER_LIP].y) * frame.shape[0])
    gaps = np.array(gaps, np.float64)
    return LipTrack(gaps=gaps, loudness=loudness_track(load_audio(audio), 16000, len(gaps)).astype(np.float64))


def lip_sync_check(video: str | Path, audio: str | Path) -> dict:
    """`measure_lips(video, audio).summary()`."""
    return measure_lips(video, audio).summary()


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

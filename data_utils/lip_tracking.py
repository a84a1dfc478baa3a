"""Lips measured on any video with MediaPipe's face mesh: no processed subject needed.

    openings = mouth_openings("render.mp4")            # [T] inner-lip gap / eye-corner distance, NaN without a face
    landmark_metrics(render_frames, gt_frames)         # LMD and mouth-opening correlation (synthesize_fuse.py --eval)
    track = measure_lips("result.mp4", "speech.wav")   # utils.lip_sync.LipTrack: lip gap and loudness per frame
    lip_sync_check("result.mp4", "speech.wav")         # the demo's lip check: track.summary()

Mouth opening = the gap between the inner lips (mesh points 13 and 14) over the distance between the
outer eye corners (33 and 263): scale-free, so a render and a video of another person compare.
Scoring and showing these tracks (sync_scores, LipTrack, plots, contact sheets) is in utils.lip_sync.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from data_utils.mesh_topology import EYE_CORNERS, LIP_INNER_MID, LIPS_INNER, LIPS_OUTER
from utils.lip_sync import LipTrack

LIPS = LIPS_OUTER + LIPS_INNER  # [40] mesh indices whose mean-centred positions LMD compares
OUTER_EYE_CORNERS = (EYE_CORNERS[0], EYE_CORNERS[3])  # 33, 263


def mouth_track(frames) -> tuple[list[np.ndarray | None], np.ndarray]:
    """Per frame (iterable of RGB uint8): mean-centred lip landmarks [40, 2] in the frame's pixels (None
    without a face) and the mouth opening ([T], NaN without a face)."""
    from data_utils.landmarks import LegacyDetector, quiet_native_stderr, upscaled_for_detection

    with quiet_native_stderr():
        detector = LegacyDetector(max_faces=1)
    lips, openings = [], []
    try:
        for i, frame in enumerate(frames):
            big, scale = upscaled_for_detection(frame)  # small renders, e.g. --fast's 128 px
            face = detector(big, i)
            if face is None:
                lips.append(None)
                openings.append(np.nan)
                continue
            pts = face.points[:, :2] / scale  # pixels of the frame as given
            lip = pts[LIPS]
            lips.append(lip - lip.mean(0))
            gap = np.linalg.norm(pts[LIP_INNER_MID[0]] - pts[LIP_INNER_MID[1]])
            eyes = np.linalg.norm(pts[OUTER_EYE_CORNERS[0]] - pts[OUTER_EYE_CORNERS[1]])
            openings.append(gap / max(eyes, 1e-6))
    finally:
        detector.close()
    return lips, np.array(openings, np.float64)


def mouth_openings(video) -> np.ndarray:
    """Mouth opening of every frame of `video` (path or iterable of RGB uint8 frames): [T], NaN without a face."""
    from utils.video_io import iter_frames

    return mouth_track(iter_frames(video) if isinstance(video, (str, Path)) else video)[1]


def landmark_metrics(pred_frames, gt_frames) -> dict:
    """LMD and mouth-opening correlation between two frame sequences (iterables of RGB uint8).

    LMD: mean distance of the mean-centred lip landmarks (pixels); frames where either video has no
    detected face are counted and reported, never silently skipped. The correlation is Pearson r of
    the mouth opening over time, render vs ground truth.
    """
    pred_lips, pred_open = mouth_track(pred_frames)
    gt_lips, gt_open = mouth_track(gt_frames)
    n = min(len(pred_lips), len(gt_lips))
    both = [i for i in range(n) if pred_lips[i] is not None and gt_lips[i] is not None]
    lmd = [float(np.linalg.norm(pred_lips[i] - gt_lips[i], axis=1).mean()) for i in both]
    po, go = pred_open[both], gt_open[both]
    corr = float(np.corrcoef(po, go)[0, 1]) if len(both) > 2 and po.std() > 0 and go.std() > 0 else None
    return {"lmd": float(np.mean(lmd)) if lmd else None, "mouth_open_corr": corr, "frames": n,
            "frames_detected_both": len(both),
            "frames_no_face_pred": sum(l is None for l in pred_lips[:n]),
            "frames_no_face_gt": sum(l is None for l in gt_lips[:n])}


def measure_lips(video: str | Path, audio: str | Path) -> LipTrack:
    """MediaPipe's inner-lip gap on every frame of `video` and the loudness of `audio` per frame."""
    import mediapipe as mp

    from data_utils.audio.decode import SAMPLE_RATE, load_audio
    from data_utils.audio.loudness import loudness_track
    from data_utils.landmarks import upscaled_for_detection
    from utils.video_io import iter_frames

    upper, lower = LIP_INNER_MID
    gaps = []
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=True) as mesh:
        for frame in iter_frames(video):
            res = mesh.process(upscaled_for_detection(frame)[0])  # normalised coordinates: no scale back
            lm = res.multi_face_landmarks[0].landmark if res.multi_face_landmarks else None
            gaps.append(np.nan if lm is None else (lm[lower].y - lm[upper].y) * frame.shape[0])
    gaps = np.array(gaps, np.float64)
    loudness = loudness_track(load_audio(audio), SAMPLE_RATE, len(gaps)).astype(np.float64)
    return LipTrack(gaps=gaps, loudness=loudness)


def lip_sync_check(video: str | Path, audio: str | Path) -> dict:
    """The demo's lip check, `measure_lips(video, audio).summary()`: r of the lip gap with the loudness."""
    return measure_lips(video, audio).summary()

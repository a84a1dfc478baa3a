"""Landmark metrics (LMD, mouth-opening correlation) on a real face, also at the demo's 128 px."""
import cv2
import numpy as np
import pytest

from data_utils.lip_tracking import landmark_metrics


@pytest.mark.parametrize("size", [128, 512])
def test_landmark_metrics_find_the_face_and_score_a_video_against_itself(size):
    from data_utils.sample.portrait import load_portrait

    face = load_portrait(512).rgb
    frames = [cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA)] * 3
    shifted = [np.roll(f, size // 32, axis=1) for f in frames]  # lips are mean-centred: a shift costs nothing
    m = landmark_metrics(frames, shifted)
    assert m["frames_detected_both"] == 3
    assert m["lmd"] < 0.01 * size  # detector jitter only (a different mouth is several pixels off)

"""`python data_utils/process.py` on a clip prints only our own lines: step summaries, our warnings,
progress bars, the final line; no MediaPipe / TFLite / absl start-up lines."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.data_utils.test_process import cut_clip

REPO = Path(__file__).resolve().parents[2]
THIRD_PARTY = re.compile(r"inference_feedback_manager|XNNPACK|TensorFlow Lite|absl::|^[IWEF]\d{4} |\.cc:\d+\]|gl_context")
OURS = [re.compile(p) for p in (
    r"^\[\d [a-z ]+\] [a-z ]+: ",                     # [3 landmarks] landmarks: 20 frames, ...
    r"^done: \d+ tasks \(\d+ steps\) in [\d.]+ s",
    r"^WARNING: ",                                    # our logging format for warnings
    r"^[\w ()/]+: +\d+%\|",                           # tqdm bars: "landmarks (legacy):  40%|####..."
)]


@pytest.mark.slow
def test_process_prints_only_our_own_lines(tmp_path):
    video = cut_clip(tmp_path / "q" / "q.mp4", duration=0.8)
    res = subprocess.run([sys.executable, "data_utils/process.py", str(video), "--compact"], cwd=REPO,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    lines = [ln.strip() for ln in re.split(r"[\r\n]", res.stdout + res.stderr) if ln.strip()]
    assert any(ln.startswith("[5 parsing]") for ln in lines)  # the step that starts MediaPipe in worker processes
    noise = [ln for ln in lines if THIRD_PARTY.search(ln)]
    assert not noise, noise
    strangers = [ln for ln in lines if not any(p.search(ln) for p in OURS)]
    assert not strangers, strangers

"""utils/quiet_logs.py: native third-party log lines are dropped, in this process and its children;
our output, native errors and progress bars pass."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = r'''
import os, subprocess, sys
from utils.quiet_logs import quiet_third_party_logs
if sys.argv[1] == "on":
    quiet_third_party_logs()
noise = (b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
         b"W0000 00:00:1795662330.956869    4328 inference_feedback_manager.cc:114] Feedback manager requires a model\n"
         b"I0000 00:00:1795662330.1 12 gl_context.cc:357] GL version: 3.2\n"
         b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
os.write(2, noise)
print("[3 landmarks] ours on stdout", flush=True)
sys.stderr.write("bar:  50%|#####     | 1/2\r")
sys.stderr.flush()
os.write(2, b"E0000 00:00:1795662330.2 12 calculator.cc:9] a real native error\n")
subprocess.run([sys.executable, "-c", "import os; os.write(2, b'I0000 00:00:17.5 99 child.cc:1] child noise\\nchild: ours\\n')"])
print("WARNING: ours on stderr", file=sys.stderr)
'''


def _run(mode: str) -> str:
    res = subprocess.run([sys.executable, "-c", SCRIPT, mode], cwd=REPO, capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return (res.stdout + res.stderr).decode()  # bytes: keep the progress bar's \r


def test_native_noise_is_dropped_and_our_lines_pass():
    loud, quiet = _run("off"), _run("on")
    for noise in ("absl::InitializeLog", "inference_feedback_manager", "gl_context", "XNNPACK", "child noise"):
        assert noise in loud and noise not in quiet, noise
    for ours in ("[3 landmarks] ours on stdout", "bar:  50%|#####     | 1/2\r", "a real native error", "child: ours",
                 "WARNING: ours on stderr"):
        assert ours in quiet, ours

"""Keep third-party native log lines off the terminal; our own output passes unchanged.

MediaPipe's C++ code and the TensorFlow Lite runtime inside it write straight to file descriptor 2,
in this process and in worker processes:

    INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    W0000 00:00:1795662330.956869    4328 inference_feedback_manager.cc:114] Feedback manager requires ...

Python's logging cannot see them. Each command-line tool calls `quiet_third_party_logs()` first: it
routes descriptor 2 through a pipe, and a thread forwards every line to the real stderr except those
that match `NOISE` (absl/glog INFO and WARNING lines and TFLite's start-up notes); native errors
(E/F lines) pass. Python's own `sys.stderr` (our messages, logging, tracebacks, progress bars) is
pointed straight at the real stderr, so it stays in order with stdout. Child processes (workers)
inherit the filtered descriptor. Only command-line entry points call it (`if __name__ ==
"__main__":`), never library code or tests.
"""
from __future__ import annotations

import atexit
import os
import re
import select
import sys
import threading

NOISE = re.compile(
    rb"^(?:[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w./-]+:\d+\] "   # absl / glog INFO and WARNING lines
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|INFO: Created TensorFlow Lite [\w ]*delegate for CPU\."
    rb"|INFO: Initialized TensorFlow Lite runtime\."
    rb"|WARNING: Logging before InitGoogleLogging\(\) is written to STDERR)")
ENV_DEFAULTS = {"GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2"}  # for the libraries that read them
_HOLD_S = 0.05  # how long a partial line that may be noise waits for its end

_state: dict = {}


def is_noise(line: bytes) -> bool:
    return NOISE.match(line.lstrip(b"\r")) is not None


def quiet_third_party_logs() -> None:
    """Filter descriptor 2 of this process (and its children) for the rest of its life; idempotent."""
    for key, value in ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if _state:
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):  # no usable stderr: nothing to filter
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    thread = threading.Thread(target=_forward, args=(read_end, saved), name="quiet-logs", daemon=True)
    thread.start()
    _state.update(saved=saved, thread=thread)
    atexit.register(_restore)
    encoding, errors = getattr(sys.stderr, "encoding", None) or "utf-8", getattr(sys.stderr, "errors", None)
    sys.stderr = open(os.dup(saved), "w", buffering=1, encoding=encoding, errors=errors or "backslashreplace")


def unfiltered_stderr() -> int | None:
    """The real stderr's descriptor while the filter is on (for a child that filters its own), else None."""
    return _state.get("saved")


def _forward(read_end: int, out: int) -> None:
    """Copy the pipe to `out`, dropping noise lines. A partial line goes out at once unless it could be
    the start of a noise line (it then waits up to _HOLD_S for its newline)."""
    pending = b""
    while True:
        ready, _, _ = select.select([read_end], [], [], _HOLD_S if pending else None)
        if not ready:  # a partial line sat there: it is no log line
            _write(out, pending)
            pending = b""
            continue
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b"\n")
        _write(out, b"".join(line + b"\n" for line in lines if not is_noise(line)))
        if pending and pending.lstrip(b"\r")[:1] not in (b"I", b"W"):
            _write(out, pending)  # e.g. a progress bar redrawn with \r
            pending = b""
    if pending and not is_noise(pending):
        _write(out, pending)
    os.close(read_end)


def _write(fd: int, data: bytes) -> None:
    while data:
        try:
            data = data[os.write(fd, data):]
        except InterruptedError:
            continue
        except OSError:  # the terminal went away: drop it
            return


def _restore() -> None:
    """At exit: put the real stderr back and let the thread forward what is left."""
    try:
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):
        pass
    os.dup2(_state["saved"], 2)  # closes our last write end of the pipe: the thread sees EOF
    _state["thread"].join(timeout=2.0)

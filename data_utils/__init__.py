"""Preprocessing: one module per step, each exposing `run_<step>(data_dir, force=False, **opts) -> str`.

`data_utils/process.py` is the driver that runs them in order on `data/<ID>/<ID>.mp4`. Beside them:
the built-in sample subject (`sample_subject.py`) and lip measurements on any video (`lip_tracking.py`).
Imports `utils` only (tests/test_layering.py).
"""

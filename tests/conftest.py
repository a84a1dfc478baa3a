"""Shared fixtures: the path to ../shared/data (real clips, absent in a user's clone) and tiny scenes."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_file(rel: str) -> Path:
    """Path to a file under ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / rel
    if not path.exists():
        pytest.skip(f"needs {rel} from ../shared/data (not present in this checkout)")
    return path


@pytest.fixture
def german_video() -> Path:
    return shared_file("video/german20s.mp4")


@pytest.fixture
def cnn_video() -> Path:
    return shared_file("video/cnn2.mp4")


@pytest.fixture
def audio_dir() -> Path:
    path = SHARED_DATA / "audio"
    if not path.is_dir():
        pytest.skip("needs ../shared/data/audio (not present in this checkout)")
    return path

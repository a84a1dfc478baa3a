"""The lent-GPU harness (scripts/device/README.md): its sweep files stay runnable with today's train.py."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SWEEPS = sorted((REPO / "scripts" / "device" / "sweeps").glob("*.txt"))


def _train_args(path: Path) -> list[tuple[str, list[str]]]:
    """(name, train.py arguments) of every line; the arguments are the last `|` field."""
    rows = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()  # sweep.sh drops comments the same way
        if line:
            fields = line.split("|")
            rows.append((fields[0].strip(), shlex.split(fields[-1])))
    return rows


def test_sweep_files_are_found():
    assert {p.name for p in SWEEPS} >= {"demo_audio.txt", "lip_sync_w4.txt"}


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_every_sweep_line_parses_with_train_py(path):
    import train

    parser = train.build_parser()
    for name, args in _train_args(path):
        _, unknown = parser.parse_known_args(["-s", "data/x", "-m", "output/x", *args])
        assert not unknown, f"{path.name}: {name} passes {unknown}, which train.py no longer accepts"

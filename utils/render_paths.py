"""Where synthesis writes: a new-audio render is named after its audio and never replaces a file silently.

    paths = claim_render_paths(Path("output/<ID>/train/ours_None/renders/speech.mp4"), overwrite=False)
    ... write paths.silent, paths.face, ...; mux the sound into paths.main ...
    paths.release()   # on failure: gives the claimed name back

A render of new audio is `<stem>.mp4` (the main output: the video with sound), with its companions
beside it: `<stem>_silent.mp4`, `<stem>_face.mp4`, `<stem>_mouth.mp4`, `<stem>_sheet.png`,
`<stem>_mouth_codes.npy`. By default `<stem>` is the audio file's stem (or the mouth codes' file) under
`<model>/train/ours_None/renders/`; `--out PATH` picks the main file. When any of these files exists,
the run stops before rendering, unless `overwrite`. The main name is claimed at once (an empty file
created exclusively), so two runs started together cannot both take it; every file is written
atomically, so a failed run leaves what was there before.
--eval and the training-split render keep their fixed names (renders/out*.mp4; see split_render_paths):
they are the model's own evaluation and are rewritten on each run.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class RenderPaths:
    """The files of one render. `main` is the video with sound; `silent` the same frames without it."""

    main: Path
    silent: Path
    face: Path
    mouth: Path
    sheet: Path
    codes: Path  # the mouth codes that drove the lips
    side: Path | None = None  # render | ground truth | error (renders with ground truth)
    gt: Path | None = None  # the ground-truth frames
    claimed: list[Path] = field(default_factory=list, compare=False)  # placeholders this run created
    made_dirs: list[Path] = field(default_factory=list, compare=False)  # folders it created, deepest last

    def release(self) -> None:
        """Give back claimed names that were never written (still the empty placeholder), and the folders
        made for them if they stayed empty: a failed run leaves the model folder as it found it."""
        for path in self.claimed:
            try:
                if path.stat().st_size == 0:
                    path.unlink()
            except FileNotFoundError:
                pass
        for folder in reversed(self.made_dirs):
            try:
                folder.rmdir()
            except OSError:  # not empty (or gone): keep it
                pass

    def written(self) -> list[Path]:
        """The files of this render that exist now, main first."""
        paths = [self.main, self.silent, self.face, self.mouth, self.sheet, self.codes, self.side, self.gt]
        return [p for p in paths if p is not None and p.is_file() and p.stat().st_size > 0]


def default_render_path(model_path: str | Path, stem: str) -> Path:
    """<model>/train/ours_None/renders/<stem>.mp4: a new render, named after what drives it."""
    return Path(model_path) / "train" / "ours_None" / "renders" / f"{stem}.mp4"


def render_paths(main: str | Path) -> RenderPaths:
    """The companions of a main output `<dir>/<stem>.mp4`."""
    main = Path(main)
    if main.suffix.lower() != ".mp4":
        raise ValueError(f"--out {main}: the output is an .mp4 video (e.g. {main.with_suffix('.mp4')})")
    beside = lambda tail: main.with_name(f"{main.stem}{tail}")  # noqa: E731
    return RenderPaths(main, beside("_silent.mp4"), beside("_face.mp4"), beside("_mouth.mp4"), beside("_sheet.png"),
                       beside("_mouth_codes.npy"))


def split_render_paths(out_dir: str | Path) -> RenderPaths:
    """The fixed layout of --eval and training-split renders under <model>/{test,train}/ours_None/."""
    out_dir = Path(out_dir)
    r = out_dir / "renders"
    return RenderPaths(r / "out_with_audio.mp4", r / "out.mp4", r / "out_face.mp4", r / "out_mouth.mp4",
                       out_dir / "contact_sheet.png", r / "mouth_codes.npy", side=r / "side_by_side.mp4",
                       gt=out_dir / "gt" / "out.mp4")


def claim_render_paths(main: str | Path, overwrite: bool = False) -> RenderPaths:
    """The paths of a new render at `main`, with `main` claimed; FileExistsError (one line) when taken.

    Without `overwrite`, an existing file among the render's paths stops the run before any work.
    """
    paths = render_paths(main)
    taken = [p for p in (paths.main, paths.silent, paths.face, paths.mouth, paths.sheet, paths.codes) if p.exists()]
    if taken and not overwrite:
        raise FileExistsError(f"{taken[0]} exists: pass --overwrite to replace it, or --out PATH.mp4 "
                              f"to write somewhere else")
    paths.made_dirs.extend(d for d in reversed(paths.main.parents) if not d.exists())
    paths.main.parent.mkdir(parents=True, exist_ok=True)
    if not paths.main.exists():
        try:
            os.close(os.open(paths.main, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            raise FileExistsError(f"{paths.main} was just taken by another run: pass --out PATH.mp4") from None
        paths.claimed.append(paths.main)
    return paths

"""Command-line parameter groups with upstream's flag names and defaults.

Each group is a dataclass; every field becomes `--name` (a field listed in `short` also gets `-x`
and `-X`, upstream's convention: `-s/-S` source_path, `-m/-M` model_path). Booleans are store_true
flags. The docstring line under each field is its --help text.

    parser = argparse.ArgumentParser()
    add_group(parser, ModelParams)
    args = parser.parse_args()
    model = extract_group(args, ModelParams)

`cfg_args.json` in the model folder stores the groups a training run used; `load_combined` merges it
with a later command line (flags the user typed win), like upstream's `get_combined_args` without eval.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Sequence, TypeVar

T = TypeVar("T")


@dataclass
class ModelParams:
    """What data and model a run uses."""

    sh_degree: int = 2
    """maximum spherical-harmonics degree of the Gaussians' colours"""
    source_path: str = ""
    """processed subject folder, e.g. data/<ID> (written by data_utils/process.py)"""
    model_path: str = ""
    """output folder for checkpoints, PLYs, logs and renders, e.g. output/<ID>"""
    images: str = "images"
    """unused; kept for upstream compatibility"""
    resolution: int = -1
    """render/training resolution: -1 = native; N > 0 = scale frames so the longer side is N pixels"""
    white_background: bool = False
    """render over white instead of black in synthesis"""
    data_device: str = "cpu"
    """where frames are cached: cpu (default) or cuda"""
    eval: bool = False
    """use the val split (transforms_val.json) for rendering / metrics"""
    audio: str = ""
    """new audio for synthesis: a .wav/.mp3/.flac file or a precomputed feature .npy"""
    init_num: int = 10000
    """number of random Gaussians a branch starts from (the face stage uses 2000)"""
    audio_extractor: str = "phoneme"
    """audio features: phoneme (offline default), mel, pocketsphinx, deepspeech, hubert"""
    exp_method: str = "3dmm"
    """face-branch expression condition: 3dmm (52-d from 3dmm.pt) or au (6-d from au.csv)"""
    expression_input: str = "upper_face"
    """what of the 3dmm expression the face net sees: upper_face (brows, eyes, eyelids), eyelids, all (upstream: the mouth too)"""
    mouth_input: str = "codes"
    """how audio reaches the lips: codes (audio -> audio-to-mouth model -> mouth codes -> both fields) or none (upstream: only the motion nets' audio path)"""
    direct_audio: str = "on"
    """the motion nets' own audio path (upstream's): on, or off (the lips follow the mouth codes alone)"""
    mouth_code_set: str = "opening,jawOpen"
    """the mouth codes the fields read: a comma-separated list (opening, jawOpen, mouthClose, mouthFunnel, mouthPucker, mouthRollLower, mouthRollUpper, mouthShrugLower, mouthLowerDown, mouthSmile, mouthStretch, mouthPress) or all; the default two are the ones audio predicts well (docs/lip_sync.md)"""
    mouth_features: str = "phoneme,mel"
    """comma-separated audio features the audio-to-mouth model reads (preprocessing writes phoneme and mel)"""
    backend: str = "auto"
    """rasterizer: auto (gsplat on CUDA, torch otherwise), gsplat, torch"""
    device: str = "auto"
    """compute device: auto (cuda when available), cuda, cpu"""

    short = ("source_path", "model_path", "images", "resolution", "white_background")

    @property
    def mouth_code_names(self) -> tuple[str, ...]:
        """The chosen mouth codes (empty: all available)."""
        return () if self.mouth_code_set == "all" else tuple(n.strip() for n in self.mouth_code_set.split(","))

    @property
    def mouth_feature_kinds(self) -> tuple[str, ...]:
        return tuple(k.strip() for k in self.mouth_features.split(",") if k.strip())


@dataclass
class PipelineParams:
    """Rendering switches (upstream's, kept so old command lines still parse)."""

    convert_SHs_python: bool = False
    """unused: SH are always evaluated in PyTorch"""
    compute_cov3D_python: bool = False
    """unused: covariances are always computed in the rasterizer"""
    debug: bool = False
    """extra checks and logging"""

    short = ()


@dataclass
class OptimizationParams:
    """Optimiser and densification schedule (3DGS / TalkingGaussian defaults)."""

    iterations: int = 50000
    """training iterations of the mouth and face stages"""
    position_lr_init: float = 0.00016
    """initial learning rate of Gaussian centres (times the scene extent)"""
    position_lr_final: float = 0.0000016
    """final learning rate of Gaussian centres (times the scene extent)"""
    position_lr_delay_mult: float = 0.01
    """warm-up multiplier of the position learning rate"""
    position_lr_max_steps: int = 45000
    """steps of the log-linear position learning-rate decay"""
    feature_lr: float = 0.0025
    """learning rate of the SH DC colour (rest: /20) and of the per-Gaussian embedding"""
    opacity_lr: float = 0.05
    """learning rate of opacities (the fuse stage uses 0.001)"""
    scaling_lr: float = 0.003
    """learning rate of log-scales"""
    rotation_lr: float = 0.001
    """learning rate of quaternions"""
    embedding_lr: float = 0.0025
    """learning rate of the per-Gaussian embedding (upstream's unused embeding_lr was 0.01)"""
    percent_dense: float = 0.005
    """clone Gaussians smaller than this fraction of the scene extent, split larger ones"""
    lambda_dssim: float = 0.2
    """weight of (1 - SSIM) in the photometric loss"""
    densification_interval: int = 100
    """iterations between densify/prune steps"""
    opacity_reset_interval: int = 3000
    """unused: opacity reset is disabled, as upstream"""
    densify_from_iter: int = 500
    """first iteration of densification"""
    densify_until_iter: int = 45000
    """last iteration of densification"""
    densify_grad_threshold: float = 0.0002
    """view-space gradient threshold for densification (the face stage uses 0.0005)"""
    random_background: bool = False
    """unused; kept for upstream compatibility"""
    motion_eps: float = 1e-15
    """Adam epsilon of the motion networks (upstream 1e-8: their early gradients fall below it; 3DGS uses 1e-15)"""
    raw_audio_features: bool = False
    """feed the audio features as they are (upstream); by default they are standardised per channel"""
    motion_lr_scale: float = 5.0
    """multiplier of the motion networks' learning rates (upstream: 1; 5 learns lip motion, docs/short_schedule.md)"""
    train_background: str = "random"
    """background colour of the mouth and face stages: random (a new colour per frame, no colour can fake transparency) or green (upstream)"""
    code_noise: float = 0.5
    """noise on the frames' own mouth codes while training the fields, in units of the audio-to-mouth model's error on each code"""
    predicted_code_share: float = 0.5
    """share of frames driven by the audio-to-mouth model's predicted codes at the end of the mouth and face stages (ramps up from 0)"""

    short = ()


def _flag_names(group: type, name: str) -> list[str]:
    names = [f"--{name}"]
    if name in getattr(group, "short", ()):
        names += [f"-{name[0]}", f"-{name[0].upper()}"]
    return names


def _field_help(group: type) -> dict[str, str]:
    """Field docstrings (the string literal under each field) from the class source."""
    import ast
    import inspect
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(group)))
    except (OSError, TypeError):
        return {}
    body = tree.body[0].body
    helps = {}
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(getattr(nxt, "value", None), ast.Constant):
            helps[node.target.id] = str(nxt.value.value)
    return helps


def add_group(parser: argparse.ArgumentParser, group: type, suppress_defaults: bool = False) -> None:
    """Add one argparse flag per dataclass field of `group` (upstream names and short flags)."""
    helps = _field_help(group)
    arg_group = parser.add_argument_group(group.__name__, (group.__doc__ or "").strip())
    for f in fields(group):
        default = argparse.SUPPRESS if suppress_defaults else f.default
        kwargs: dict[str, Any] = {"default": default, "help": helps.get(f.name, "") + (f" (default: {f.default})" if not suppress_defaults else "")}
        if f.type in (bool, "bool"):
            arg_group.add_argument(*_flag_names(group, f.name), action="store_true", **kwargs)
        else:
            typ = {"int": int, "float": float, "str": str}.get(f.type if isinstance(f.type, str) else f.type.__name__, str)
            arg_group.add_argument(*_flag_names(group, f.name), type=typ, **kwargs)


def extract_group(args: argparse.Namespace, group: type[T]) -> T:
    """Build a `group` dataclass from the parsed flags (fields absent from args keep their default)."""
    values = {f.name: getattr(args, f.name) for f in fields(group) if hasattr(args, f.name)}
    return group(**values)


def save_cfg_args(model_path: str | Path, args: argparse.Namespace) -> Path:
    """Write the resolved command line to <model_path>/cfg_args.json (atomically)."""
    from utils.io_utils import save_json

    return save_json(Path(model_path) / "cfg_args.json", {k: v for k, v in vars(args).items() if _jsonable(v)})


def _jsonable(v: Any) -> bool:
    return isinstance(v, (str, int, float, bool, type(None), list, tuple))


# Options added after models were already trained: a cfg_args.json without the key was written by a
# run that behaved the old way (the face net saw the mouth shapes of the expression).
LEGACY_VALUES = {"expression_input": "all", "mouth_input": "none"}


def typed_flags(parser: argparse.ArgumentParser, argv: Sequence[str]) -> set[str]:
    """Destinations of the flags actually present in `argv` (not those left at their defaults)."""
    typed = argparse.ArgumentParser(add_help=False)
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            kw = dict(dest=action.dest, default=argparse.SUPPRESS)
            if isinstance(action, argparse._StoreTrueAction):
                typed.add_argument(*action.option_strings, action="store_true", **kw)
            else:
                typed.add_argument(*action.option_strings, nargs=action.nargs, **kw)
    return set(vars(typed.parse_known_args(list(argv))[0]))


def load_combined(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse `argv`, then fill every flag the user did not type from <model_path>/cfg_args.json.

    Precedence: typed flags > the training run's cfg_args.json > the parser defaults. Only the
    parameter groups' fields are taken from the file: a training flag that shares its name with one
    of the calling script's own (`--fast`, `--batch_size`) means something else there.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    typed = typed_flags(parser, argv)
    cfg_file = Path(args.model_path) / "cfg_args.json" if getattr(args, "model_path", "") else None
    if cfg_file is not None and cfg_file.is_file():
        saved = {**LEGACY_VALUES, **json.loads(cfg_file.read_text())}
        shared = {f.name for group in (ModelParams, PipelineParams, OptimizationParams) for f in fields(group)}
        for key, value in saved.items():
            if key in shared and key not in typed and hasattr(args, key):
                setattr(args, key, value)
    return args


def group_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)

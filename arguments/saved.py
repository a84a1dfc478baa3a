"""The resolved configuration saved with a model (`<model>/cfg_args.json`) and read back.

Format 2 (written since the presets): `{"format": 2, "preset": NAME, **TrainConfig.to_dict()}`, i.e. the
run settings at the top level and the groups under "model" and "opt"; the same dict is the "config" of
every checkpoint. Format 1 (no "format" key) was the flat argparse namespace of train.py; it still loads.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from arguments.groups import ModelParams, OptimizationParams, TrainConfig, storage_from_data_device

CFG_FILE = "cfg_args.json"
FORMAT = 2

# Options added after models were already trained: a saved configuration without the key was written
# by a run that behaved the old way (the face net saw the mouth shapes of the expression, no mouth codes,
# the motion nets' audio path on).
LEGACY_VALUES = {"expression_input": "all", "mouth_input": "none", "direct_audio": "on"}


def save_config(model_path: str | Path, cfg: TrainConfig, preset: str = "default") -> Path:
    """Write `cfg` to <model_path>/cfg_args.json (atomically)."""
    from utils.io_utils import save_json

    return save_json(Path(model_path) / CFG_FILE, {"format": FORMAT, "preset": preset, **cfg.to_dict()})


def config_from_dict(saved: dict[str, Any]) -> TrainConfig:
    """The TrainConfig of a saved dict of either format."""
    if "format" not in saved:
        saved = _from_format1(saved)
    elif saved["format"] > FORMAT:
        raise ValueError(f"configuration format {saved['format']} is newer than this code reads ({FORMAT}): update it")
    return TrainConfig.from_dict({**saved, "model": {**LEGACY_VALUES, **saved.get("model", {})}})


def load_config(model_path: str | Path) -> TrainConfig:
    """The configuration a model was trained with."""
    path = Path(model_path) / CFG_FILE
    if not Path(model_path).is_dir():
        raise FileNotFoundError(f"Model folder does not exist: {model_path}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: train.py writes it beside the checkpoints (copy it with them)")
    return config_from_dict(json.loads(path.read_text()))


def restore_model(model_path: str | Path, typed: dict[str, Any] | None = None) -> ModelParams:
    """The model's saved ModelParams, with the values in `typed` (flags given now) on top."""
    return dataclasses.replace(load_config(model_path).model, **(typed or {}))


def restore_from_args(args) -> ModelParams:
    """restore_model for a command line whose ModelParams flags were added with suppress_defaults: the
    ModelParams flags present in the parsed `args` are the ones typed now."""
    names = {f.name for f in dataclasses.fields(ModelParams)}
    return restore_model(args.model_path, {k: v for k, v in vars(args).items() if k in names})


def _from_format1(flat: dict[str, Any]) -> dict[str, Any]:
    """train.py's flat namespace (flags of every group, None for unset stage lengths) -> format 2."""
    def pick(group: type) -> dict[str, Any]:
        return {f.name: flat[f.name] for f in dataclasses.fields(group) if flat.get(f.name) is not None}

    model = pick(ModelParams)
    if "data_device" in flat:  # the storage switch's old name
        model["frame_storage"] = storage_from_data_device(flat["data_device"])
    run = {k: v for k, v in pick(TrainConfig).items() if k not in TrainConfig.internal}
    return {"format": FORMAT, "preset": "fast" if flat.get("fast") else "default", "model": model,
            "opt": pick(OptimizationParams), "backend": model.get("backend", "auto"), **run}

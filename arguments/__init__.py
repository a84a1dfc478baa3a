"""One configuration tree for training and synthesis, with upstream's flag names.

    groups.py   the dataclasses: TrainConfig (a training run) holds ModelParams (what the model is)
                and OptimizationParams; SynthesisParams (a render). The string under each field is
                its --help text; the defaults are the `default` preset.
    presets.py  the named presets (default, fast, paper) as data, and resolve(): defaults < preset <
                flags typed now; settle_for_clip(): the choices left "auto" until the clip's length is known.
    cli.py      argparse flags generated from the fields (each CLI picks the fields it uses).
    saved.py    <model>/cfg_args.json: the resolved TrainConfig, saved by train.py and restored by
                synthesize_fuse.py (the older flat format still loads).

    parser = argparse.ArgumentParser()
    add_group(parser, ModelParams, only=("source_path", "model_path"))
    cfg = resolve("fast", {"face_iterations": 3000})
    cfg = settle_for_clip(cfg, train_frames)   # the "auto" choices (train.py, once it knows the clip)
    save_config("output/x", cfg, "fast"); load_config("output/x") == cfg
"""
from arguments.cli import add_group, extract_group, field_help, flag_fields
from arguments.groups import ModelParams, OptimizationParams, SynthesisParams, TrainConfig, storage_from_data_device
from arguments.presets import (PRESETS, SHORT_CLIP_FRAMES, SUMMARY, auto_choice_note, build_config, flag_names, resolve,
                               settle_for_clip)
from arguments.saved import (CFG_FILE, LEGACY_VALUES, config_from_dict, load_config, restore_from_args, restore_model,
                             save_config)

__all__ = ["CFG_FILE", "LEGACY_VALUES", "PRESETS", "SHORT_CLIP_FRAMES", "SUMMARY", "ModelParams",
           "OptimizationParams", "SynthesisParams", "TrainConfig", "add_group", "auto_choice_note", "build_config",
           "config_from_dict", "extract_group", "field_help", "flag_fields", "flag_names", "load_config", "resolve",
           "restore_from_args", "restore_model", "save_config", "settle_for_clip", "storage_from_data_device"]

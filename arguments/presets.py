"""Named presets: values that differ from the dataclass defaults (arguments/groups.py), by flag name.

    cfg = resolve("fast", {"face_iterations": 3000})   # defaults < preset < flags typed now
    cfg = settle_for_clip(cfg, train_frames=454)        # the "auto" choices, once the clip's length is known

`train.py --preset NAME` picks one (`--fast` is `--preset fast`); flags typed on the command line win.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from arguments.cli import flag_fields
from arguments.groups import ModelParams, OptimizationParams, TrainConfig

PRESETS: dict[str, dict[str, Any]] = {
    # Ours: lips driven by mouth codes, random training backgrounds, faster motion learning rates.
    "default": {},
    # A short low-resolution schedule that still learns lip motion (docs/short_schedule.md); the face
    # field at most 5000 Gaussians (bounds the CPU time). Minutes on a CPU.
    "fast": {"resolution": 128, "mouth_iterations": 600, "face_iterations": 2000, "fuse_iterations": 200,
             "init_num": 2000, "face_init_num": 1000, "face_max_points": 5000},
    # Upstream's values (TalkingGaussian / DEGSTalk, reference/upstream-facts.md): 50000 frames a stage,
    # one frame a step, green background. Switches off our additions: mouth codes (the lips follow the
    # motion nets' audio path alone), the upper-face-only expression input, standardised audio features,
    # the 5x motion learning rates and Adam eps 1e-15 (upstream: AdamW eps 1e-8), random backgrounds.
    # Kept: the scene-extent floor (min_extent: without it a still head's tiny camera spread prunes
    # every Gaussian) and the offline audio features (upstream's DeepSpeech: --audio_extractor deepspeech).
    "paper": {"iterations": 50000, "batch_size": 1, "train_background": "green", "mouth_input": "none",
              "direct_audio": "on", "expression_input": "all", "raw_audio_features": True, "motion_lr_scale": 1.0,
              "motion_eps": 1e-8},
}

SUMMARY = {
    "default": "our defaults (mouth codes, random backgrounds, 50000 frames a stage)",
    "fast": "minutes on a CPU: 128 px, 600/2000/200 steps, face <= 5000 Gaussians",
    "paper": "upstream's values: green background, no mouth codes, upstream's motion learning rates",
}

GROUPS = (ModelParams, OptimizationParams, TrainConfig)


def flag_names() -> dict[str, type]:
    """{flag name: the group that holds it} for every configuration flag (names are unique)."""
    return {f.name: group for group in GROUPS for f in flag_fields(group)}


def build_config(values: dict[str, Any]) -> TrainConfig:
    """A TrainConfig from {flag name: value} (absent flags keep their dataclass default)."""
    owner = flag_names()
    unknown = set(values) - set(owner)
    if unknown:
        raise ValueError(f"unknown configuration key(s): {', '.join(sorted(unknown))}")
    part = {g: {k: v for k, v in values.items() if owner[k] is g} for g in GROUPS}
    return TrainConfig(model=ModelParams(**part[ModelParams]), opt=OptimizationParams(**part[OptimizationParams]),
                       **part[TrainConfig])


def resolve(preset: str, typed: dict[str, Any]) -> TrainConfig:
    """The configuration of a run: dataclass defaults < the preset's values < the flags typed now."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return build_config({**PRESETS[preset], **typed})


# Under this many training frames (40 s) the motion nets' own audio path memorises the clip: german20s
# (454 frames) driven by another voice moved its lips with r 0.24 / -0.01 with it, 0.56 / 0.56 without
# it; cnn2 (1617 frames) keeps it (face-crop PSNR 1.2 dB higher with it), docs/lip_sync.md.
SHORT_CLIP_FRAMES = 1000


def settle_for_clip(cfg: TrainConfig, train_frames: int, resumed: ModelParams | None = None) -> TrainConfig:
    """`cfg` with its "auto" choices made for a training split of `train_frames` frames.

    direct_audio auto: off on a short clip (the lips then follow the mouth codes alone), else on;
    expression_input auto: eyelids where the audio path is off (the brows and eyes of the training video
    would otherwise take over the lips: they move with speech), else upper_face. Values typed stay;
    `resumed` (the saved settings of a run being continued) keeps the choices that run started with.
    """
    m = cfg.model
    direct = m.direct_audio
    if direct == "auto":
        direct = resumed.direct_audio if resumed else (
            "off" if cfg.mouth_codes and train_frames < SHORT_CLIP_FRAMES else "on")
    expression = m.expression_input
    if expression == "auto":
        expression = resumed.expression_input if resumed else ("eyelids" if direct == "off" else "upper_face")
    return dataclasses.replace(cfg, model=dataclasses.replace(m, direct_audio=direct, expression_input=expression))


def auto_choice_note(typed: TrainConfig, settled: TrainConfig, train_frames: int) -> str | None:
    """One line saying what "auto" chose when that differs from a long clip's choice, else None."""
    if typed.model.direct_audio != "auto" or settled.model.direct_audio != "off":
        return None
    return (f"{train_frames} training frames (under {SHORT_CLIP_FRAMES // 25} s): the lips follow the mouth codes "
            f"alone (--direct_audio off, --expression_input {settled.model.expression_input}); on a clip this short "
            "the motion nets' audio path memorises the frames and other voices barely move the lips")

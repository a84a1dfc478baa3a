"""The configuration tree: what a model is (ModelParams), how it is optimised (OptimizationParams), how
a training run goes (TrainConfig, the root that holds the other two) and what a render does
(SynthesisParams).

The string under each field is its --help text (arguments/cli.py reads it). Defaults here are the
`default` preset; arguments/presets.py holds the others.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass
class ModelParams:
    """What data and model a run uses (saved with the model, restored by synthesis)."""

    sh_degree: int = 2
    """maximum spherical-harmonics degree of the Gaussians' colours"""
    source_path: str = ""
    """processed subject folder, e.g. data/<ID> (written by data_utils/process.py)"""
    model_path: str = ""
    """output folder for checkpoints, PLYs, logs and renders, e.g. output/<ID>"""
    resolution: int = -1
    """render/training resolution: -1 = native; N > 0 = scale frames so the longer side is N pixels"""
    frame_storage: str = "auto"
    """where training frames are served from: auto (the device when they fit), device, disk (bounded host RAM)"""
    init_num: int = 10000
    """number of random Gaussians the mouth field starts from"""
    audio_extractor: str = "phoneme"
    """audio features: phoneme (offline default), mel, pocketsphinx, deepspeech, hubert"""
    exp_method: str = "3dmm"
    """face-branch expression condition: 3dmm (52-d from 3dmm.pt) or au (6-d from au.csv)"""
    expression_input: str = "auto"
    """what of the 3dmm expression the face net sees: auto (eyelids when the direct audio path is off, else upper_face), upper_face (brows, eyes, eyelids), eyelids, all (upstream: the mouth too)"""
    mouth_input: str = "codes"
    """how audio reaches the lips: codes (audio -> audio-to-mouth model -> mouth codes -> both fields) or none (upstream: only the motion nets' audio path)"""
    direct_audio: str = "auto"
    """the motion nets' own audio path (upstream's): auto (off when the training split is under 40 s, where that path memorises the clip; else on), on, or off (the lips follow the mouth codes alone)"""
    mouth_code_set: str = "opening,jawOpen"
    """the mouth codes the fields read: a comma-separated list (opening, jawOpen, mouthClose, mouthFunnel, mouthPucker, mouthRollLower, mouthRollUpper, mouthShrugLower, mouthLowerDown, mouthSmile, mouthStretch, mouthPress) or all; the default two are the ones audio predicts well (docs/lip_sync.md)"""
    mouth_features: str = "phoneme,mel"
    """comma-separated audio features the audio-to-mouth model reads (preprocessing writes phoneme and mel)"""
    backend: str = "auto"
    """rasterizer: auto (gsplat on CUDA, torch otherwise), gsplat, torch"""
    device: str = "auto"
    """compute device: auto (cuda when available), cuda, cpu"""

    short = ("source_path", "model_path", "resolution")  # upstream's -s/-S, -m/-M, -r/-R

    def __post_init__(self):
        if self.mouth_input not in ("codes", "none"):
            raise ValueError(f"--mouth_input must be codes or none, got {self.mouth_input!r}")
        if self.direct_audio not in ("auto", "on", "off"):
            raise ValueError(f"--direct_audio must be auto, on or off, got {self.direct_audio!r}")
        if self.expression_input not in ("auto", "upper_face", "eyelids", "all"):
            raise ValueError(f"--expression_input must be auto, upper_face, eyelids or all, got {self.expression_input!r}")

    @property
    def mouth_code_names(self) -> tuple[str, ...]:
        """The chosen mouth codes (empty: all available)."""
        return () if self.mouth_code_set == "all" else tuple(n.strip() for n in self.mouth_code_set.split(","))

    @property
    def mouth_feature_kinds(self) -> tuple[str, ...]:
        return tuple(k.strip() for k in self.mouth_features.split(",") if k.strip())


@dataclass
class OptimizationParams:
    """Optimiser settings (3DGS / TalkingGaussian defaults; densification follows each stage's schedule)."""

    iterations: int = 50000
    """frames each of the mouth and face stages sees (their steps: iterations / batch_size; fuse: a fifth)"""
    position_lr_init: float = 0.00016
    """initial learning rate of Gaussian centres (times the scene extent)"""
    position_lr_final: float = 0.0000016
    """final learning rate of Gaussian centres (times the scene extent)"""
    position_lr_delay_mult: float = 0.01
    """warm-up multiplier of the position learning rate"""
    position_lr_max_steps: int = 45000
    """steps of the log-linear position learning-rate decay (scaled with the stage length)"""
    feature_lr: float = 0.0025
    """learning rate of the SH DC colour (rest: /20)"""
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
    densify_grad_threshold: float = 0.0002
    """view-space gradient threshold for densifying the mouth field (the face field uses 0.0005)"""
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


@dataclass
class TrainConfig:
    """Training run (what train.py resolves, saves as cfg_args.json and hands the trainer)."""

    model: ModelParams = field(default_factory=ModelParams)
    opt: OptimizationParams = field(default_factory=OptimizationParams)
    mouth_iterations: int | None = None
    """mouth stage length in steps (unset: iterations / batch_size)"""
    face_iterations: int | None = None
    """face stage length in steps (unset: iterations / batch_size)"""
    fuse_iterations: int | None = None
    """fuse stage length in steps (unset: iterations / batch_size / 5)"""
    face_init_num: int = 2000
    """number of random Gaussians the face field starts from"""
    face_max_points: int = 0
    """stop densifying the face field at this many Gaussians (0: no limit); bounds CPU time"""
    batch_size: int = 1
    """frames per step (upstream: 1); B > 1 shortens the default stage lengths to the same number of frames, several times faster on a GPU"""
    max_minutes: float = 0.0
    """save a checkpoint and stop after this many minutes (rerun to resume); 0 = no limit"""
    lpips_weights: str = ""
    """folder with alexnet-owt-7be5be79.pth and lpips' alex.pth; without them LPIPS terms are skipped"""
    seed: int = 0
    """random seed of the initial Gaussians, the frame sampler and torch"""
    face_grad_threshold: float = 0.0005
    """view-space gradient threshold for densifying the face field (upstream's train_xx.sh value)"""
    fuse_opacity_lr: float = 0.001
    """learning rate of the face opacities in the fuse stage (upstream's train_xx.sh value)"""
    stop_after: int = 0
    """> 0: save and stop after this many iterations of this invocation (chunks, tests)"""
    min_extent: float = 0.1
    """metres; floor of the camera-spread "scene extent" (see scene/training/trainer.py build_branch)"""
    lips_steps: int = 1500
    """optimiser steps of the audio-to-mouth model (each of its fits)"""
    log_every: int = 10
    """iterations between progress and TensorBoard scalars"""
    image_every: int = 1000
    """iterations between TensorBoard images"""
    backend: str = "auto"
    """rasterizer of this run (train.py copies model.backend)"""
    device: str = "cpu"
    """resolved compute device of this run (train.py resolves model.device)"""

    # settings of the code, saved with the model but not command-line flags
    internal = ("model", "opt", "face_grad_threshold", "fuse_opacity_lr", "stop_after", "min_extent", "lips_steps",
                "log_every", "image_every", "backend", "device")

    def __post_init__(self):
        if self.batch_size < 1:
            raise ValueError("--batch_size must be >= 1")
        steps = max(self.opt.iterations // self.batch_size, 1)  # stage lengths count steps of batch_size frames
        self.mouth_iterations = self.mouth_iterations or steps
        self.face_iterations = self.face_iterations or steps
        self.fuse_iterations = self.fuse_iterations or max(steps // 5, 1)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """The inverse of to_dict (keys this version does not know are dropped)."""
        known = {f.name for f in dataclasses.fields(cls)}
        run = {k: v for k, v in d.items() if k in known and k not in ("model", "opt")}
        return cls(model=from_values(ModelParams, d.get("model", {})),
                   opt=from_values(OptimizationParams, d.get("opt", {})), **run)

    @property
    def mouth_codes(self) -> bool:
        """Do the fields read mouth codes (audio -> audio-to-mouth model -> codes -> fields)?"""
        return self.model.mouth_input == "codes"


@dataclass
class SynthesisParams:
    """What synthesize_fuse.py renders and writes."""

    eval: bool = False
    """render the val split (transforms_val.json) with metrics against its frames"""
    audio: str = ""
    """new audio: a .wav/.mp3/.flac file or a precomputed feature .npy"""
    use_train: bool = False
    """render over the training split's poses/backgrounds"""
    fast: bool = False
    """only renders/out.mp4 (+ audio), no extra videos or landmark metrics"""
    dilate: bool = False
    """dilate the mouth alpha (13x13) before compositing"""
    batch_size: int = 8
    """frames rendered per batch"""
    max_frames: int = 0
    """render at most this many frames (0 = all)"""
    mouth_codes: str = ""
    """drive the lips with these mouth codes ([frames, M] .npy, raw units, e.g. an edited <stem>_mouth_codes.npy or renders/mouth_codes.npy of an earlier render) instead of predicting them from the audio"""
    lip_gain: float = 1.5
    """widen (> 1) or narrow (< 1) the lips' movement: the predicted mouth codes' distance from a closed mouth is scaled by this (1: as predicted, and renders open only 0.5-0.75x as wide as the real speaker; 1.5: cnn2 amplitude 0.61 -> 0.95, r 0.64 -> 0.68; docs/lip_sync.md)"""
    lpips_weights: str = ""
    """--eval: also LPIPS, with the weights in this folder (alexnet-owt-7be5be79.pth, lpips' alex.pth); without it LPIPS is listed as skipped"""
    out: str = ""
    """new-audio render: the mp4 with sound (default: <model>/train/ours_None/renders/<audio stem>.mp4); companions are named beside it"""
    overwrite: bool = False
    """replace an existing new-audio render of that name"""
    quiet: bool = False
    """only warnings"""


def storage_from_data_device(value: str) -> str:
    """Upstream's --data_device (where frames live) as our frame_storage: cpu was our default (auto)."""
    return "auto" if value == "cpu" else "device"


def from_values(group: type, values: dict):
    """A `group` dataclass from the entries of `values` that are its fields (the rest are ignored)."""
    known = {f.name for f in dataclasses.fields(group)}
    return group(**{k: v for k, v in values.items() if k in known})

"""The audio-to-mouth model: per-frame mouth codes from audio, the lips' explicit path.

Audio reaches the lips in two steps (DESIGN.md, "Lip sync"):

    audio features (phoneme posteriors + log-mel) --AudioToMouth--> mouth codes [T, M]
    mouth codes --face / mouth motion nets--> Gaussians --> frame

The codes are what the video's own frames show (scene.data.frame_features.mouth_codes: the inner-lip
opening, jawOpen and the mouth blendshapes), so the model is trained directly on every training
frame (dense targets: seconds on a CPU) and early-stopped on the val split:

    feats = mouth_audio_features({"phoneme": ph, "mel": mel})    # [T, F] from [T, 16, C] windows
    model, report = fit_audio_to_mouth(feats, codes, names, train_rows, val_rows)
    codes = model.predict(feats)                                    # [T, M] raw mouth codes

Shapes: T frames at 25 fps, F input channels (2 steps of every feature kind per frame), M codes.
The model is the mean of a few small temporal convolutions (receptive field +-7 frames, about
+-0.3 s) with input dropout and noise: more capacity fits one speaker's minute and transfers worse to
other voices. Its members are the nets of a k-fold split of the training frames (each also predicts
the frames it never saw: the out-of-fold codes the fields learn to follow) and one net on all of them;
their mean generalises better than any one (docs/lip_sync.md). Outputs are standardised codes (the
training split's mean and std, kept in the model), so the motion nets see well-conditioned inputs
whatever the code's units.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor, nn


log = logging.getLogger(__name__)

MIN_TRAIN_FRAMES = 8
MIN_CALIBRATION_FRAMES = 50  # val frames needed to calibrate the amplitude on them (else: out-of-fold)
CLIP_STATS_PRIOR = 100  # frames: how much the training clip's input statistics weigh against a new clip's
# speech_activity (scene/data/mouth_features.py) gates the codes:
SILENT, SPEAKING = 0.02, 0.10  # activity at or below SILENT closes the mouth; from SPEAKING on the codes are free


@dataclass
class FitConfig:
    """How the model is trained (defaults measured on cnn2 / german20s, docs/lip_sync.md)."""

    hidden: int = 64  # channels of the two temporal convolutions
    dropout: float = 0.3  # on the inputs and between layers
    input_noise: float = 0.3  # Gaussian noise on the standardised inputs while training
    steps: int = 1500  # optimiser steps at most (early stopping keeps the best val checkpoint)
    patience: int = 400  # stop after this many steps without a better val score
    eval_every: int = 25
    batch: int = 16  # random clips of `clip` frames per step
    clip: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-3
    opening_weight: float = 4.0  # the inner-lip opening (code 0) counts this much in the loss
    folds: int = 4  # out-of-fold predictions of the training frames (what the fields train on)
    seed: int = 0


def temporal_conv(in_dim: int, out_dim: int, hidden: int = 64, dropout: float = 0.3) -> nn.Sequential:
    """[B, F, T] -> [B, M, T], receptive field +-7 frames: Conv(k5) -> Conv(k5, dilation 2) -> Conv(k3) -> Conv(k1)."""
    return nn.Sequential(
        nn.Dropout(dropout),
        nn.Conv1d(in_dim, hidden, 5, padding=2), nn.GELU(), nn.Dropout(dropout),
        nn.Conv1d(hidden, hidden, 5, padding=4, dilation=2), nn.GELU(), nn.Dropout(dropout),
        nn.Conv1d(hidden, hidden, 3, padding=1), nn.GELU(),
        nn.Conv1d(hidden, out_dim, 1),
    )


class AudioToMouth(nn.Module):
    """Mean of `members` temporal conv nets: standardised features [B, F, T] -> standardised codes [B, M, T].

    Buffers carry the input and code statistics, so the saved state is all it needs.
    """

    def __init__(self, in_dim: int, names: list[str], hidden: int = 64, dropout: float = 0.3, members: int = 1):
        super().__init__()
        self.names = list(names)
        self.in_dim, self.hidden, self.dropout = in_dim, hidden, dropout
        m = len(self.names)
        self.members = nn.ModuleList(temporal_conv(in_dim, m, hidden, dropout) for _ in range(members))
        self.register_buffer("input_mean", torch.zeros(in_dim))
        self.register_buffer("input_scale", torch.ones(in_dim))
        self.register_buffer("code_mean", torch.zeros(m))
        self.register_buffer("code_std", torch.ones(m))
        self.register_buffer("gain", torch.ones(m))  # amplitude calibration of predictions (see calibrate)
        # std of (own - predicted) standardised codes on unseen frames: how far a prediction is off per code
        self.register_buffer("residual_std", torch.ones(m))
        # the (standardised) code of a closed mouth, and whether predictions are gated towards it in silence
        self.register_buffer("closed_code", torch.zeros(m))
        self.register_buffer("silence_gate", torch.tensor(False))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # models from before the silence gate: no gate
        state_dict.setdefault(prefix + "closed_code", torch.zeros(len(self.names)))
        state_dict.setdefault(prefix + "silence_gate", torch.tensor(False))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def num_codes(self) -> int:
        return len(self.names)

    @torch.no_grad()
    def set_stats(self, feats: Tensor, codes: Tensor) -> None:
        """Input and code statistics of the training frames ([T, F], [T, M])."""
        std = feats.std(0)
        self.input_mean.copy_(feats.mean(0))
        self.input_scale.copy_(1.0 / (std + 1e-3 * float(std.max()) + 1e-8))
        self.code_mean.copy_(codes.mean(0))
        self.code_std.copy_(codes.std(0).clamp(min=1e-6))

    def standardise_inputs(self, feats: Tensor, per_clip: bool = False) -> Tensor:
        """[T, F] -> standardised with the training statistics, or (per_clip) with the clip's own.

        Per clip, other voices and microphones land where the training voice did; a short clip's own
        statistics are unreliable, so they are blended with the training ones (weight T / (T + 100)).
        """
        if not per_clip:
            return (feats - self.input_mean) * self.input_scale
        w = len(feats) / (len(feats) + CLIP_STATS_PRIOR)
        mean = w * feats.mean(0) + (1 - w) * self.input_mean
        train_std = 1.0 / self.input_scale
        std = (w * feats.var(0, unbiased=False) + (1 - w) * train_std ** 2).sqrt()
        return (feats - mean) / (std + 1e-3 * std.max() + 1e-8)

    def normalise(self, codes: Tensor) -> Tensor:
        """Raw codes [..., M] -> standardised (what the motion nets read)."""
        return (codes - self.code_mean) / self.code_std

    def denormalise(self, z: Tensor) -> Tensor:
        return z * self.code_std + self.code_mean

    def forward(self, x: Tensor) -> Tensor:  # [B, F, T] standardised -> [B, M, T] standardised
        return torch.stack([net(x) for net in self.members]).mean(0)

    @torch.no_grad()
    def predict(self, feats: Tensor | np.ndarray, calibrated: bool = True, standardised: bool = False,
                per_clip: bool = True, activity: np.ndarray | None = None) -> Tensor:
        """Mouth codes of a whole clip: feats [T, F] -> [T, M] (raw units unless `standardised`).

        With `calibrated`, predictions are scaled about the mean by `gain` (regression shrinks them
        toward the mean; see calibrate); `per_clip`: see standardise_inputs. `activity` [T]
        (speech_activity) closes the mouth where there is no speech: a talking head's training video has
        few long pauses, so the net alone leaves the mouth half open in them.
        """
        feats = torch.as_tensor(feats, dtype=self.input_mean.dtype, device=self.input_mean.device)
        if feats.dim() != 2 or feats.shape[1] != self.in_dim:
            raise ValueError(f"audio-to-mouth inputs must be [T, {self.in_dim}], got {tuple(feats.shape)}")
        was_training = self.training
        self.eval()
        z = self(self.standardise_inputs(feats, per_clip).T[None])[0].T  # [T, M]
        self.train(was_training)
        if calibrated:
            z = z * self.gain
        if activity is not None and bool(self.silence_gate):
            act = torch.as_tensor(np.asarray(activity), dtype=z.dtype, device=z.device)[:, None]  # [T, 1]
            speaking = ((act - SILENT) / (SPEAKING - SILENT)).clamp(0.0, 1.0)
            z = self.closed_code + speaking * (z - self.closed_code)
        return z if standardised else self.denormalise(z)

    # ---- saving: plain tensors, lists and numbers (loads with torch.load(weights_only=True)) -------
    def export(self) -> dict:
        return {"names": self.names, "in_dim": self.in_dim, "hidden": self.hidden, "dropout": self.dropout,
                "members": len(self.members), "state": {k: v.detach().cpu() for k, v in self.state_dict().items()}}

    @classmethod
    def from_export(cls, blob: dict) -> "AudioToMouth":
        model = cls(int(blob["in_dim"]), list(blob["names"]), int(blob["hidden"]), float(blob["dropout"]),
                    int(blob["members"]))
        model.load_state_dict(blob["state"])
        return model.eval()


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r of two 1-D series (nan when either is constant)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _train_net(feats: Tensor, z: Tensor, train_rows: np.ndarray, val_rows: np.ndarray,
               cfg: FitConfig, seed: int) -> tuple[nn.Module, float, int]:
    """One member net on `train_rows`, the state of the best val opening r kept. feats/z are standardised."""
    device = feats.device
    gen = torch.Generator(device=device).manual_seed(seed)
    torch.manual_seed(seed)
    m = z.shape[1]
    model = temporal_conv(feats.shape[1], m, cfg.hidden, cfg.dropout).to(device)
    opt = torch.optim.AdamW(model.parameters(), cfg.lr, weight_decay=cfg.weight_decay)
    weight = torch.ones(m, device=device)
    weight[0] = cfg.opening_weight
    weight = weight / weight.sum()
    x_all = feats.T[None]  # [1, F, T]
    segments = _runs(np.sort(train_rows))
    clip = min(cfg.clip, max(len(s) for s in segments))
    starts = torch.from_numpy(np.concatenate([s[: len(s) - clip + 1] for s in segments if len(s) >= clip])).to(device)
    real_val = z[val_rows, 0].cpu().numpy()
    best = (-np.inf, copy.deepcopy(model.state_dict()), 0)
    for step in range(1, cfg.steps + 1):
        model.train()
        pick = starts[torch.randint(len(starts), (cfg.batch,), generator=gen, device=device)]
        rows = pick[:, None] + torch.arange(clip, device=device)  # [B, clip]
        x = feats[rows].transpose(1, 2)  # [B, F, clip]
        x = x + cfg.input_noise * torch.randn(x.shape, generator=gen, device=device)
        err = (model(x) - z[rows].transpose(1, 2)) ** 2  # [B, M, clip]
        loss = (err.mean((0, 2)) * weight).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % cfg.eval_every == 0 or step == cfg.steps:
            model.eval()
            with torch.no_grad():
                pred = model(x_all)[0, 0].cpu().numpy()
            score = pearson(pred[val_rows], real_val) if len(val_rows) else -float(loss)
            if np.isfinite(score) and score > best[0]:
                best = (score, copy.deepcopy(model.state_dict()), step)
            elif step - best[2] >= cfg.patience:
                break
    model.load_state_dict(best[1])
    return model.cpu().eval(), float(best[0]), best[2]


def _runs(rows: np.ndarray) -> list[np.ndarray]:
    """Split sorted frame rows into runs of consecutive frames (clips never cross a gap)."""
    cuts = np.flatnonzero(np.diff(rows) != 1) + 1
    return np.split(rows, cuts)


def fit_audio_to_mouth(feats: np.ndarray, codes: np.ndarray, names: list[str], train_rows: np.ndarray,
                       val_rows: np.ndarray, cfg: FitConfig | None = None, device: str | torch.device = "cpu",
                       activity: np.ndarray | None = None) -> tuple[AudioToMouth, dict]:
    """Train the model on the training frames, early-stopped on the val frames.

    Args:
        feats: [T, F] per-frame inputs of the whole clip (mouth_audio_features).
        codes: [T, M] mouth codes of every frame (scene.data.frame_features.mouth_codes); code 0 is the opening.
        train_rows, val_rows: frame indices of the two splits.
        device: where the nets train (a GPU takes seconds; the model comes back on the CPU).
        activity: [T] speech activity of the clip (speech_activity): the report's val predictions are
            gated with it, as synthesis gates them.
    Returns:
        the model (on the CPU, eval mode, with `gain` calibrated), and a report: val r and amplitude
        per code, out-of-fold predictions of the training frames (`oof_codes` [len(train_rows), M],
        raw units; what the fields learn to follow), the best step, the config.
    """
    cfg = cfg or FitConfig()
    feats_t = torch.as_tensor(feats, dtype=torch.float32)
    codes_t = torch.as_tensor(codes, dtype=torch.float32)
    assert feats_t.dim() == 2 and codes_t.shape == (len(feats_t), len(names)), (feats_t.shape, codes_t.shape)
    train_rows, val_rows = np.asarray(train_rows, np.int64), np.asarray(val_rows, np.int64)
    if len(train_rows) < MIN_TRAIN_FRAMES:
        raise ValueError(f"the audio-to-mouth model needs at least {MIN_TRAIN_FRAMES} training frames, "
                         f"got {len(train_rows)}")
    blocks = np.array_split(np.arange(len(train_rows)), cfg.folds) if cfg.folds > 1 else []
    model = AudioToMouth(feats_t.shape[1], names, cfg.hidden, cfg.dropout, members=len(blocks) + 1)
    model.set_stats(feats_t[train_rows], codes_t[train_rows])
    x, z = model.standardise_inputs(feats_t), model.normalise(codes_t)

    # out-of-fold predictions: each block of training frames predicted by a member that never saw it
    oof = torch.zeros(len(train_rows), len(names))
    steps = []
    x_dev, z_dev = x.to(device), z.to(device)
    for k, block in enumerate(blocks):
        rest = np.setdiff1d(np.arange(len(train_rows)), block)
        net, _, step = _train_net(x_dev, z_dev, train_rows[rest], val_rows, cfg, cfg.seed + 1 + k)
        with torch.no_grad():
            oof[block] = net(x.T[None])[0].T[train_rows[block]]
        model.members[k].load_state_dict(net.state_dict())
        steps.append(step)
    net, _, step = _train_net(x_dev, z_dev, train_rows, val_rows, cfg, cfg.seed)
    model.members[-1].load_state_dict(net.state_dict())
    steps.append(step)
    model.eval()
    # as synthesis --eval does: the whole clip in, the val frames' codes out
    val_pred = model.predict(feats_t, calibrated=False, standardised=True)[val_rows] if len(val_rows) else None
    if val_pred is not None and len(val_rows) >= MIN_CALIBRATION_FRAMES:
        calibrate(model, val_pred, z[val_rows])
    elif blocks:
        calibrate(model, oof, z[train_rows])
    unseen = (oof * model.gain, z[train_rows]) if blocks else (val_pred * model.gain, z[val_rows])
    model.residual_std.copy_((unseen[1] - unseen[0]).std(0))
    opening = z[train_rows, 0]  # a closed mouth: the mean code of the training frames least open
    model.closed_code.copy_(z[train_rows][opening <= torch.quantile(opening, 0.1)].mean(0))
    model.silence_gate.fill_(True)
    report = {"names": list(names), "train_frames": int(len(train_rows)), "val_frames": int(len(val_rows)),
              "best_steps": steps, "config": asdict(cfg), "gain": model.gain.tolist(), "per_code": {}}
    for j, name in enumerate(names):
        row = {"oof_r": round(pearson(oof[:, j].numpy(), z[train_rows, j].numpy()), 4),
               "residual_std": round(float(model.residual_std[j]), 4)}
        if val_pred is not None:
            real = z[val_rows, j].numpy()
            row["val_r"] = round(pearson(val_pred[:, j].numpy(), real), 4)
            row["val_amplitude"] = round(float(val_pred[:, j].std() / max(real.std(), 1e-9)), 4)
            row["val_amplitude_calibrated"] = round(float(val_pred[:, j].std() * model.gain[j] / max(real.std(), 1e-9)), 4)
        report["per_code"][name] = row
    report["val_opening_r"] = report["per_code"][names[0]].get("val_r")
    if activity is not None and len(val_rows):  # as synthesis predicts: calibrated and closed in silence
        gated = model.predict(feats_t, standardised=True, activity=activity)[val_rows, 0].numpy()
        report["val_opening_r_gated"] = round(pearson(gated, z[val_rows, 0].numpy()), 4)
    report["oof_codes"] = model.denormalise(oof * model.gain).numpy()
    return model, report


@torch.no_grad()
def calibrate(model: AudioToMouth, pred: Tensor, real: Tensor, max_gain: float = 3.0) -> None:
    """Per-code gain that gives predictions of unseen frames the amplitude (std) of the real codes.

    A regression predicts the expected code, which moves less than the real one (the mouth would
    barely open); the gain undoes that shrinkage. `pred` must come from frames the model never
    trained on: the final model's val frames (early stopping looked at them, training did not), or
    with too few of those, the out-of-fold predictions (their fold models saw less data and shrink more).
    """
    ratio = real.std(0) / pred.std(0).clamp(min=1e-6)
    model.gain.copy_(ratio.clamp(1.0, max_gain))


# ----------------------------------------------------------------------------- saved with the model
ARTIFACT = "audio_to_mouth.pt"  # in the model folder, beside the field checkpoints


def save_audio_to_mouth(path, model: AudioToMouth, kinds: list[str], report: dict,
                        oof_aud_ids: np.ndarray, oof_codes: np.ndarray):
    """Write the model, the feature kinds it reads, its report and the out-of-fold codes (plain data)."""
    from utils.io_utils import save_torch

    return save_torch(path, {"model": model.export(), "features": list(kinds), "report": report,
                             "oof_aud_ids": torch.as_tensor(np.asarray(oof_aud_ids, np.int64)),
                             "oof_codes": torch.as_tensor(np.asarray(oof_codes, np.float32))})


def load_audio_to_mouth(path) -> tuple[AudioToMouth, dict]:
    """(model, the saved dict) from save_audio_to_mouth's file."""
    from pathlib import Path

    from utils.io_utils import load_checkpoint

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: train the audio-to-mouth model first "
                                f"(python train.py -s data/<ID> -m {path.parent} --stage lips)")
    blob = load_checkpoint(path)  # data only (weights_only); a crafted file is refused in one line
    return AudioToMouth.from_export(blob["model"]), blob


def predicted_for(blob: dict, aud_ids: np.ndarray) -> np.ndarray | None:
    """The saved out-of-fold codes of frames `aud_ids` ([N, M]); None unless every frame has one."""
    index = {int(a): k for k, a in enumerate(blob["oof_aud_ids"].tolist())}
    if not all(int(a) in index for a in aud_ids):
        return None
    return blob["oof_codes"].numpy()[[index[int(a)] for a in aud_ids]]

"""Inference renderer of a trained model: face field over mouth field over the frame's background.

Built once from the trained branches; everything that does not change between frames is computed
once (grid lookups and the per-point attention terms of both motion networks, activated Gaussian
parameters), so a batch of B frames costs two audio encodings, two batched offset predictions,
two rasterizer calls and one composite:

    renderer = FusedRenderer.from_checkpoint("output/<ID>", device="cuda")
    codes = renderer.mouth_codes(mouth_features)            # [T, M] from audio (models with mouth codes)
    images = renderer.render(views, audio_windows, expression, background, renderer.normalise(codes[rows]))
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gaussian_renderer.render import Views, composite, render_face, render_mouth
from scene.models.audio_to_mouth import ARTIFACT, AudioToMouth, load_audio_to_mouth
from scene.models.gaussian_model import GaussianModel
from scene.models.motion_net import FaceMotionNet, MouthMotionNet
from utils.io_utils import load_checkpoint


def _latest_checkpoint(model_path: Path) -> tuple[Path, dict]:
    """The fuse checkpoint, or the face + mouth checkpoints when fusion has not run."""
    fuse = model_path / "chkpnt_fuse_latest.pth"
    if fuse.is_file():
        return fuse, load_checkpoint(fuse)["branches"]
    branches = {}
    for stage in ("face", "mouth"):
        path = model_path / f"chkpnt_{stage}_latest.pth"
        if not path.is_file():
            raise FileNotFoundError(f"No trained model in {model_path}: {path.name} is missing "
                                    f"(train it with: python train.py -s data/<ID> -m {model_path})")
        branches[stage] = load_checkpoint(path)["branches"][stage]
    return model_path / "chkpnt_face_latest.pth", branches


def _net_from_state(kind: str, state: dict, exp_method: str) -> torch.nn.Module:
    """Rebuild a motion net with the sizes its weights imply."""
    audio_in = state["audio_net.encoder_conv.0.weight"].shape[1]  # Conv1d(C -> 32): C audio channels
    code = state.get("mouth_encode_net.layers.0.weight")  # Linear(M -> hidden): M mouth codes (ours)
    mouth_dim = 0 if code is None else code.shape[1]
    if kind == "face":
        net = FaceMotionNet(audio_in_dim=audio_in, exp_method=exp_method, mouth_dim=mouth_dim)
    else:
        net = MouthMotionNet(audio_in_dim=audio_in, use_jaw=any(k.startswith("jaw_net") for k in state),
                             mouth_dim=mouth_dim)
    net.load_state_dict(state)
    return net.eval().requires_grad_(False)


class FusedRenderer:
    def __init__(self, face: GaussianModel, face_net: FaceMotionNet, mouth: GaussianModel, mouth_net: MouthMotionNet,
                 backend: str = "auto", audio_to_mouth: AudioToMouth | None = None, mouth_features: list[str] = ()):
        self.face, self.face_net, self.mouth, self.mouth_net = face, face_net, mouth, mouth_net
        self.backend = backend
        self.audio_to_mouth = audio_to_mouth  # None: a model whose lips follow the motion nets' audio path only
        self.mouth_feature_kinds = list(mouth_features)  # what audio_to_mouth reads (e.g. phoneme, mel)
        if face_net.mouth_dim and audio_to_mouth is None:
            raise ValueError("the model reads mouth codes but has no audio-to-mouth model")
        with torch.no_grad():
            self.face_points = face_net.point_features(face_net.encode_points(face.means, face.embeddings))
            self.mouth_points = mouth_net.point_features(mouth_net.encode_points(mouth.means, mouth.embeddings))

    @property
    def audio_channels(self) -> int:
        return self.face_net.audio_net.dim_in

    @property
    def uses_mouth_codes(self) -> bool:
        return bool(self.face_net.mouth_dim)

    def mouth_codes(self, features, activity=None) -> Tensor:
        """Raw mouth codes [T, M] of a clip from its audio-to-mouth inputs [T, F] (mouth_audio_features)
        and its speech activity [T] (speech_activity; closes the mouth in silence)."""
        return self.audio_to_mouth.predict(features, activity=activity).to(self.face.means.device)

    def widen(self, codes: np.ndarray, gain: float) -> np.ndarray:
        """Raw codes [T, M] with their distance from the closed mouth scaled by `gain`: a closed mouth stays
        closed, open ones open wider (models from before the silence gate: from the mean code)."""
        a2m = self.audio_to_mouth
        centre = a2m.denormalise(a2m.closed_code).cpu().numpy()
        return (centre + gain * (np.asarray(codes, np.float32) - centre)).astype(np.float32)

    def normalise(self, codes: Tensor) -> Tensor:
        """Raw codes [..., M] -> what the motion nets read."""
        return self.audio_to_mouth.normalise(torch.as_tensor(codes, dtype=torch.float32).to(
            self.audio_to_mouth.code_mean.device))

    @classmethod
    def from_checkpoint(cls, model_path: str | Path, device: str | torch.device = "cpu", exp_method: str = "3dmm",
                        backend: str = "auto") -> "FusedRenderer":
        model_path = Path(model_path)
        if not model_path.is_dir():
            raise FileNotFoundError(f"Model folder does not exist: {model_path}")
        _, branches = _latest_checkpoint(model_path)
        face = GaussianModel.restore(branches["face"]["gaussians"], device).requires_grad_(False)
        mouth = GaussianModel.restore(branches["mouth"]["gaussians"], device).requires_grad_(False)
        face_net = _net_from_state("face", branches["face"]["net"], exp_method).to(device)
        mouth_net = _net_from_state("mouth", branches["mouth"]["net"], exp_method).to(device)
        a2m, kinds = None, []
        if face_net.mouth_dim:
            a2m, blob = load_audio_to_mouth(model_path / ARTIFACT)
            a2m, kinds = a2m.to(device), blob["features"]
        return cls(face, face_net, mouth, mouth_net, backend, a2m, kinds)

    @torch.no_grad()
    def render(self, views: Views, audio_windows: Tensor, expression: Tensor, background: Tensor,
               mouth_code: Tensor | None = None, dilate: bool = False, parts: bool = False) -> Tensor | dict:
        """B frames: audio_windows [B,8,C,W], expression [B,E], background [B,H,W,3], mouth_code [B,M]
        (standardised, `normalise`; models with mouth codes) -> [B,H,W,3] in [0,1].

        With parts=True returns a dict with the fused image and the face / mouth layers.
        """
        face_motion = self.face_net.deform(self.face_points, audio_windows, expression, mouth_code)
        mouth_motion = self.mouth_net.deform(self.mouth_points, audio_windows, mouth_code)
        face = render_face(self.face, face_motion, views, self.backend)
        mouth = render_mouth(self.mouth, mouth_motion, views, self.backend)
        image = composite(face, mouth, background, dilate=dilate).clamp_(0.0, 1.0)
        if not parts:
            return image
        return {"image": image, "face": face["image"].clamp(0, 1), "mouth": mouth["image"].clamp(0, 1),
                "mouth_over_bg": (mouth["image"] + background * (1 - mouth["alpha"])).clamp(0, 1)}

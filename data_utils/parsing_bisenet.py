"""Optional parsing backend: BiSeNet face parsing (19 CelebAMask-HQ classes), the paper's choice.

The network re-implements the architecture of face-parsing.PyTorch in plain torch (no torchvision) with
the same module names, so its released checkpoint ``79999_iter.pth`` loads as is: a ResNet-18 context
path (1/8, 1/16, 1/32 features, attention refinement on the last two, global context), and in place of
a separate spatial path the ResNet's own 1/8 feature (that repository's design, and its checkpoint's
key layout), fused by a feature fusion module and classified at 1/8 then upsampled. Only the main head
is used for inference. Pre-processing as upstream: RGB resized to 512x512 bilinear, ImageNet mean/std,
argmax, labels resized back with nearest neighbour.

Weights are never downloaded: pass ``weights=`` / ``--weights`` or put the file at
``<repo>/.cache/models/79999_iter.pth``.
"""
from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from data_utils.parsing import BACKGROUND, CLOTH, FACE, HAIR, MOUTH, NECK, labels_to_parsing
from utils.io_utils import load_checkpoint

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WEIGHTS = REPO / ".cache" / "models" / "79999_iter.pth"
N_CLASSES = 19
INPUT_SIZE = 512
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# CelebAMask-HQ class -> our region, as DEGSTalk colours them: skin, brows, eyes, glasses, nose, lips
# and hat are face; ears, earrings and hair are hair; 11 (inner mouth) is mouth; 14 neck, 15 necklace
# are neck; 16 cloth; 0 background.
CLASS_TO_REGION = np.array([
    BACKGROUND,                                   # 0 background
    FACE, FACE, FACE, FACE, FACE, FACE,           # 1 skin, 2-3 brows, 4-5 eyes, 6 eyeglasses
    HAIR, HAIR, HAIR,                             # 7-8 ears, 9 earring
    FACE,                                         # 10 nose
    MOUTH,                                        # 11 inner mouth
    FACE, FACE,                                   # 12-13 lips
    NECK, NECK,                                   # 14 neck, 15 necklace
    CLOTH,                                        # 16 cloth
    HAIR,                                         # 17 hair
    FACE,                                         # 18 hat
], dtype=np.uint8)
assert len(CLASS_TO_REGION) == N_CLASSES


# ----------------------------------------------------------------------------- building blocks
class ConvBNReLU(nn.Module):
    def __init__(self, c_in: int, c_out: int, ks: int = 3, stride: int = 1, padding: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, ks, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs, projection shortcut when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if c_in != c_out or stride != 1:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(shortcut + y)


def _stage(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(c_in, c_out, stride), BasicBlock(c_out, c_out, 1))


class Resnet18(nn.Module):
    """ResNet-18 trunk returning the 1/8, 1/16 and 1/32 features (128, 256, 512 channels)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _stage(64, 64, 1)
        self.layer2 = _stage(64, 128, 2)
        self.layer3 = _stage(128, 256, 2)
        self.layer4 = _stage(256, 512, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.layer1(self.maxpool(F.relu(self.bn1(self.conv1(x)))))
        feat8 = self.layer2(x)
        feat16 = self.layer3(feat8)
        return feat8, feat16, self.layer4(feat16)


class AttentionRefinementModule(nn.Module):
    """Conv, then channel attention from the globally pooled feature."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = ConvBNReLU(c_in, c_out)
        self.conv_atten = nn.Conv2d(c_out, c_out, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x)
        atten = torch.sigmoid(self.bn_atten(self.conv_atten(F.adaptive_avg_pool2d(feat, 1))))
        return feat * atten


class ContextPath(nn.Module):
    """ResNet-18 with global context and refined 1/32 and 1/16 features brought up to 1/8 and 1/16."""

    def __init__(self):
        super().__init__()
        self.resnet = Resnet18()
        self.arm16 = AttentionRefinementModule(256, 128)
        self.arm32 = AttentionRefinementModule(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128)
        self.conv_head16 = ConvBNReLU(128, 128)
        self.conv_avg = ConvBNReLU(512, 128, ks=1, padding=0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feat8, feat16, feat32 = self.resnet(x)
        context = self.conv_avg(F.adaptive_avg_pool2d(feat32, 1))  # [B, 128, 1, 1]
        up32 = self.arm32(feat32) + F.interpolate(context, feat32.shape[2:], mode="nearest")
        up32 = self.conv_head32(F.interpolate(up32, feat16.shape[2:], mode="nearest"))
        up16 = self.arm16(feat16) + up32
        up16 = self.conv_head16(F.interpolate(up16, feat8.shape[2:], mode="nearest"))
        return feat8, up16, up32  # 1/8 (spatial detail), 1/8 (context), 1/16 (context)


class FeatureFusionModule(nn.Module):
    """Concatenate spatial and context features, 1x1 conv, add a channel-attention-weighted copy."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.convblk = ConvBNReLU(c_in, c_out, ks=1, padding=0)
        self.conv1 = nn.Conv2d(c_out, c_out // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(c_out // 4, c_out, 1, bias=False)

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        feat = self.convblk(torch.cat([spatial, context], dim=1))
        atten = torch.sigmoid(self.conv2(F.relu(self.conv1(F.adaptive_avg_pool2d(feat, 1)))))
        return feat + feat * atten


class BiSeNetOutput(nn.Module):
    def __init__(self, c_in: int, c_mid: int, n_classes: int):
        super().__init__()
        self.conv = ConvBNReLU(c_in, c_mid)
        self.conv_out = nn.Conv2d(c_mid, n_classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    """BiSeNet as in face-parsing.PyTorch; forward returns the main logits [B, n_classes, H, W]
    (the two auxiliary training heads exist so that checkpoints load; ``aux=True`` returns all three)."""

    def __init__(self, n_classes: int = N_CLASSES):
        super().__init__()
        self.cp = ContextPath()
        self.ffm = FeatureFusionModule(256, 256)
        self.conv_out = BiSeNetOutput(256, 256, n_classes)
        self.conv_out16 = BiSeNetOutput(128, 64, n_classes)
        self.conv_out32 = BiSeNetOutput(128, 64, n_classes)

    def forward(self, x: torch.Tensor, aux: bool = False):
        H, W = x.shape[2:]
        feat8, cp8, cp16 = self.cp(x)
        up = lambda t: F.interpolate(t, (H, W), mode="bilinear", align_corners=True)  # noqa: E731
        out = up(self.conv_out(self.ffm(feat8, cp8)))
        if not aux:
            return out
        return out, up(self.conv_out16(cp8)), up(self.conv_out32(cp16))


# ----------------------------------------------------------------------------- loading and inference
def load_bisenet(weights: str | Path | None = None, device: str | torch.device = "cpu") -> BiSeNet:
    """BiSeNet with the user's checkpoint (state dict of face-parsing.PyTorch; a DataParallel
    'module.' prefix is accepted). One-line FileNotFoundError naming the file when it is missing."""
    path = Path(weights) if weights is not None else DEFAULT_WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(
            f"BiSeNet weights not found: {path}. Put face-parsing.PyTorch's 79999_iter.pth at "
            f"{DEFAULT_WEIGHTS} or give its path (process.py --bisenet_weights PATH), or use the default "
            f"MediaPipe parsing (process.py --parsing mediapipe)")
    state = load_checkpoint(path)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    net = BiSeNet(N_CLASSES)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise ValueError(f"{path} is not a 19-class face-parsing BiSeNet checkpoint ({first})") from e
    return net.to(device).eval()


class BiSeNetParser:
    """Callable frame -> parsing image (upstream colours), holding one loaded network."""

    def __init__(self, net: BiSeNet, device: str | torch.device = "cpu"):
        self.net = net.to(device).eval()
        self.device = torch.device(device)
        self._mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)

    @classmethod
    def from_weights(cls, weights: str | Path | None = None, device: str | torch.device = "cpu") -> "BiSeNetParser":
        return cls(load_bisenet(weights, device), device)

    @torch.no_grad()
    def classes(self, rgb: np.ndarray) -> np.ndarray:
        """CelebAMask-HQ class ids [H, W] uint8 of one RGB uint8 frame [H, W, 3]."""
        H, W = rgb.shape[:2]
        assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8, (rgb.shape, rgb.dtype)
        small = cv2.resize(rgb, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
        x = torch.from_numpy(small).to(self.device).permute(2, 0, 1)[None].float() / 255.0  # [1, 3, 512, 512]
        logits = self.net((x - self._mean) / self._std)  # [1, 19, 512, 512]
        cls = logits.argmax(1)[0].to(torch.uint8).cpu().numpy()
        return cv2.resize(cls, (W, H), interpolation=cv2.INTER_NEAREST)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """Parsing image [H, W, 3] uint8 RGB in the upstream colour code."""
        return labels_to_parsing(CLASS_TO_REGION[self.classes(rgb)])

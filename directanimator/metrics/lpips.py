"""LPIPS (Zhang et al. 2018, v0.1, AlexNet backbone) in pure torch, loading the published weights.

torchvision (which the ``lpips`` package needs for its backbone) does not import beside the CPU torch of this
project, so the AlexNet feature stack is written out here with torchvision's module layout: its state-dict keys
and shapes are those of ``alexnet-owt-7be5be79.pth`` (``features.0.weight [64, 3, 11, 11]`` ...), which loads into
it unchanged. The linear layers are the official ones (``lin0.model.1.weight [1, 64, 1, 1]`` ... ``lin4``, the
``weights/v0.1/alex.pth`` of the lpips wheel).

The distance, for images in [-1, 1]: scale each by LPIPS's fixed shift/scale, take the five ReLU outputs of
AlexNet, unit-normalise every feature vector over channels, square the differences, weight the channels with
``lin{k}``, average over the image and sum over the five layers.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from ..progress import ProgressFn, report
from .weights import check_layout, load_state_dict

__all__ = ["AlexNetFeatures", "LPIPS", "LPIPS_SHIFT", "LPIPS_SCALE", "load_lpips"]

#: LPIPS's input scaling layer (v0.1): ``(x - shift) / scale`` for x in [-1, 1].
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
#: Channels of AlexNet's five ReLU outputs that LPIPS compares.
ALEX_CHANNELS = (64, 192, 384, 256, 256)
# The ReLU indices of torchvision's ``alexnet().features`` that end LPIPS's five slices.
_SLICE_ENDS = (2, 5, 8, 10, 12)


class AlexNetFeatures(nn.Module):
    """torchvision's ``alexnet().features`` (same indices, so ``features.N.weight`` keys load unchanged); returns
    the five ReLU outputs LPIPS uses."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),       # 0, 1
            nn.MaxPool2d(kernel_size=3, stride=2),                                             # 2
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),               # 3, 4
            nn.MaxPool2d(kernel_size=3, stride=2),                                             # 5
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),              # 6, 7
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),              # 8, 9
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),              # 10, 11
            nn.MaxPool2d(kernel_size=3, stride=2),                                             # 12
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs, start = [], 0
        for end in _SLICE_ENDS:
            for layer in self.features[start:end]:
                x = layer(x)
            outs.append(x)
            start = end
        return outs


class _Lin(nn.Module):
    """One LPIPS channel weighting (``linK.model.1.weight``: the lpips package's dropout + 1x1 conv layout)."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, kernel_size=1, bias=False))

    def forward(self, x):
        return self.model(x)


class LPIPS(nn.Module):
    """LPIPS v0.1 with the AlexNet backbone. ``forward(a, b)``: float images ``[N, 3, H, W]`` in [-1, 1] -> ``[N]``."""

    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1), persistent=False)
        self.net = AlexNetFeatures()
        for k, c in enumerate(ALEX_CHANNELS):
            self.add_module(f"lin{k}", _Lin(c))
        self.eval().requires_grad_(False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        fa = self.net((a - self.shift) / self.scale)
        fb = self.net((b - self.shift) / self.scale)
        total = 0.0
        for k, (xa, xb) in enumerate(zip(fa, fb)):
            na = xa / (xa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            nb = xb / (xb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + getattr(self, f"lin{k}")((na - nb) ** 2).mean(dim=(2, 3))
        return total.flatten()

    @torch.no_grad()
    def video_distance(self, a: np.ndarray, b: np.ndarray, batch_size: int = 8,
                       progress: ProgressFn | None = None) -> np.ndarray:
        """Per-frame LPIPS ``[T]`` of two uint8 videos ``[T, H, W, 3]`` of one shape."""
        device = self.shift.device
        out = []
        for i in range(0, len(a), batch_size):
            ta = torch.from_numpy(np.ascontiguousarray(a[i : i + batch_size])).to(device).permute(0, 3, 1, 2)
            tb = torch.from_numpy(np.ascontiguousarray(b[i : i + batch_size])).to(device).permute(0, 3, 1, 2)
            out.append(self(ta.float() / 127.5 - 1.0, tb.float() / 127.5 - 1.0).double().cpu())
            report(progress, min(i + batch_size, len(a)) / len(a), "LPIPS")
        return torch.cat(out).numpy()


def load_lpips(alexnet_path: str | os.PathLike, lin_path: str | os.PathLike, device: str | torch.device = "cpu") -> LPIPS:
    """LPIPS with torchvision's AlexNet weights (``alexnet-owt-7be5be79.pth`` or its ``.safetensors``) and the
    official linear layers (lpips ``v0.1/alex.pth``); ``InputError`` naming the file for a wrong or damaged one."""
    model = LPIPS()
    model.net.load_state_dict(check_layout(load_state_dict(alexnet_path), model.net.state_dict(), alexnet_path))
    lins = nn.ModuleDict({f"lin{k}": getattr(model, f"lin{k}") for k in range(len(ALEX_CHANNELS))})
    lins.load_state_dict(check_layout(load_state_dict(lin_path), lins.state_dict(), lin_path))
    return model.to(device)

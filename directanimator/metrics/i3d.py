"""FVD's feature network in pure torch: Inception-v1 I3D (Carreira & Zisserman 2017, RGB stream, 400 Kinetics
classes) with the state-dict layout of the plain PyTorch port that common FVD implementations load as
``i3d_pretrained_400.pt`` (VideoGPT's FVD, ``common_metrics_on_video_quality``'s ``fvd/videogpt``).

Layout: units ``Conv3d_1a_7x7``, ``Conv3d_2b_1x1``, ``Conv3d_2c_3x3``, each a ``conv3d`` (no bias) + ``bn``
(BatchNorm3d, eps 1e-3); inception blocks ``Mixed_3b`` .. ``Mixed_5c`` with branches ``b0`` (1x1x1), ``b1a``/``b1b``
(1x1x1 then 3x3x3), ``b2a``/``b2b`` (1x1x1 then 3x3x3), ``b3b`` (1x1x1 after a 3x3x3 max pool), concatenated in that
order; ``logits.conv3d`` (1x1x1 with bias, 1024 -> 400). Convolutions and max pools pad like TensorFlow's "SAME"
(the port's dynamic padding, zeros, more at the end when odd); the head is a 2x7x7 average pool (stride 1, no
padding), the logits, and their mean over the remaining time steps.

FVD input convention (as those implementations preprocess): RGB scaled to [0, 1], the shorter side resized to 224
(bilinear), a centre 224x224 crop, then scaled to [-1, 1], shaped ``[N, 3, T, 224, 224]``; clips of 16 frames. The
FVD features are the 400 logits (averaged over time) of each clip.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..progress import ProgressFn, report
from .weights import check_layout, load_state_dict

__all__ = ["CLIP_FRAMES", "InceptionI3D", "load_i3d", "same_padding", "video_clips"]

#: Frames per FVD clip (what the paper's baselines report FVD on).
CLIP_FRAMES = 16
#: Output channels of each inception block's branches: b0, b1a, b1b, b2a, b2b, b3b.
_BLOCKS = {
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)),
    "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)),
    "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)),
    "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)),
    "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding of one axis: ``(before, after)`` so the output has ``ceil(size / stride)`` steps;
    the odd one goes after."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel, stride) -> torch.Tensor:
    pads = []
    for axis in (2, 1, 0):  # F.pad lists the last axis (W) first
        pads += same_padding(x.shape[2 + axis], kernel[axis], stride[axis])
    return F.pad(x, pads)


class _Unit(nn.Module):
    """Conv3d with SAME padding (+ BatchNorm3d and ReLU, or + bias for the logits): the port's ``Unit3D``."""

    def __init__(self, cin: int, cout: int, kernel=(1, 1, 1), stride=(1, 1, 1), logits: bool = False):
        super().__init__()
        self.kernel, self.stride, self.is_logits = tuple(kernel), tuple(stride), logits
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, stride=self.stride, bias=logits)
        if not logits:
            self.bn = nn.BatchNorm3d(cout, eps=0.001, momentum=0.01)

    def forward(self, x):
        x = self.conv3d(_pad_same(x, self.kernel, self.stride))
        return x if self.is_logits else F.relu(self.bn(x))


def _max_pool_same(x, kernel, stride):
    return F.max_pool3d(_pad_same(x, kernel, stride), kernel, stride)


class _Mixed(nn.Module):
    def __init__(self, cin: int, widths):
        super().__init__()
        c0, c1a, c1b, c2a, c2b, c3 = widths
        self.b0 = _Unit(cin, c0)
        self.b1a, self.b1b = _Unit(cin, c1a), _Unit(c1a, c1b, (3, 3, 3))
        self.b2a, self.b2b = _Unit(cin, c2a), _Unit(c2a, c2b, (3, 3, 3))
        self.b3b = _Unit(cin, c3)

    def forward(self, x):
        pooled = _max_pool_same(x, (3, 3, 3), (1, 1, 1))
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(pooled)], 1)


class InceptionI3D(nn.Module):
    """I3D (RGB) to its class logits. ``forward``: ``[N, 3, T, 224, 224]`` in [-1, 1] -> ``[N, classes]``;
    ``video_features``: uint8 videos -> FVD features of their 16-frame clips."""

    def __init__(self, classes: int = 400):
        super().__init__()
        self.Conv3d_1a_7x7 = _Unit(3, 64, (7, 7, 7), (2, 2, 2))
        self.Conv3d_2b_1x1 = _Unit(64, 64)
        self.Conv3d_2c_3x3 = _Unit(64, 192, (3, 3, 3))
        for name, (cin, widths) in _BLOCKS.items():
            setattr(self, name, _Mixed(cin, widths))
        self.logits = _Unit(1024, classes, logits=True)
        self.eval().requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv3d_1a_7x7(x)
        x = _max_pool_same(x, (1, 3, 3), (1, 2, 2))
        x = self.Conv3d_2c_3x3(self.Conv3d_2b_1x1(x))
        x = _max_pool_same(x, (1, 3, 3), (1, 2, 2))
        x = self.Mixed_3c(self.Mixed_3b(x))
        x = _max_pool_same(x, (3, 3, 3), (2, 2, 2))
        for name in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
            x = getattr(self, name)(x)
        x = _max_pool_same(x, (2, 2, 2), (2, 2, 2))
        x = self.Mixed_5c(self.Mixed_5b(x))
        x = F.avg_pool3d(x, (2, 7, 7), stride=1)
        return self.logits(x).mean(dim=(3, 4)).mean(dim=2)

    @staticmethod
    def preprocess(clip: np.ndarray) -> torch.Tensor:
        """A uint8 clip ``[T, H, W, 3]`` as the network's input ``[3, T, 224, 224]`` in [-1, 1] (shorter side to
        224, bilinear; centre crop)."""
        x = torch.from_numpy(np.ascontiguousarray(clip)).permute(0, 3, 1, 2).float() / 255.0
        h, w = x.shape[2:]
        scale = 224 / min(h, w)
        size = (224, math.ceil(w * scale)) if h < w else (math.ceil(h * scale), 224)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        top, left = (x.shape[2] - 224) // 2, (x.shape[3] - 224) // 2
        x = x[:, :, top : top + 224, left : left + 224]
        return (x.permute(1, 0, 2, 3) - 0.5) * 2

    @torch.no_grad()
    def video_features(self, frames: np.ndarray, batch_size: int = 4, progress: ProgressFn | None = None) -> np.ndarray:
        """FVD features ``[clips, classes]`` (float64) of a uint8 video ``[T, H, W, 3]``: one row per
        non-overlapping 16-frame clip (``video_clips``)."""
        clips = video_clips(frames)
        device = next(self.parameters()).device
        out = []
        for i in range(0, len(clips), batch_size):
            x = torch.stack([self.preprocess(c) for c in clips[i : i + batch_size]]).to(device)
            out.append(self(x).double().cpu())
            report(progress, min(i + batch_size, len(clips)) / len(clips), "FVD features")
        return torch.cat(out).numpy()


def video_clips(frames: np.ndarray, length: int = CLIP_FRAMES) -> list[np.ndarray]:
    """The non-overlapping ``length``-frame clips of a video from its first frame (a 49-frame video gives 3; the
    last frame is not used).

    Raises:
        InputError: the video has fewer than ``length`` frames.
    """
    if len(frames) < length:
        raise InputError(f"FVD needs videos of at least {length} frames (its clips), this one has {len(frames)}")
    return [frames[i : i + length] for i in range(0, len(frames) - length + 1, length)]


def load_i3d(path: str | os.PathLike, device: str | torch.device = "cpu") -> InceptionI3D:
    """I3D with ``i3d_pretrained_400.pt`` (read with ``torch.load(weights_only=True)``) or its ``.safetensors``;
    ``InputError`` naming the file for a wrong or damaged one."""
    model = InceptionI3D()
    expected = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    model.load_state_dict(check_layout(load_state_dict(path), expected, path), strict=False)
    return model.to(device)

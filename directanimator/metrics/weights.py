"""Where the evaluation networks' weights are found, and how they are loaded. Nothing is ever downloaded.

Each network needs files the field publishes (``WEIGHT_FILES``). They are looked for, in this order:

1. the folders given to the evaluator (``--weights-dir``, may be repeated);
2. the folders in the ``DIRECTANIMATOR_WEIGHTS`` environment variable (``os.pathsep``-separated);
3. the file's usual home: ``~/.insightface/models/buffalo_l`` for InsightFace's models, torch's hub cache
   (``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch/hub/checkpoints``) for torchvision's AlexNet, the
   installed ``lpips`` wheel's ``weights/v0.1`` folder (found without importing it) for the LPIPS layers, and the
   Hugging Face cache (``$HF_HOME/hub``, default ``~/.cache/huggingface/hub``) snapshots of ``yzd-v/DWPose`` for
   DWPose's two ONNX models.

In a weights folder a file may sit at the top or under its subfolder (``buffalo_l/w600k_r50.onnx``). A PyTorch
file ``NAME.pth`` is used as ``NAME.safetensors`` when that exists beside it (make one with
``python -m directanimator.metrics.convert_weights NAME.pth``; the same for ``NAME.pt``); a ``.pth`` / ``.pt`` is only ever read with
``torch.load(weights_only=True)``, which refuses pickled code.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..files import atomic_path

__all__ = ["ENV_VAR", "WEIGHT_FILES", "WeightFile", "check_layout", "convert", "find_weight", "how_to_get", "load_state_dict",
           "require_weight", "search_dirs"]

ENV_VAR = "DIRECTANIMATOR_WEIGHTS"


@dataclass(frozen=True)
class WeightFile:
    """One published weight file.

    Args:
        name: its file name as published.
        url: where to download it.
        subfolder: the folder it usually sits in (``buffalo_l`` for files of that zip), also tried inside each
            weights folder.
        note: how to get it out of what the url gives (unzip, which file of a wheel).
    """

    name: str
    url: str
    subfolder: str = ""
    note: str = ""

    def default_dirs(self) -> list[Path]:
        """The file's usual home folders (see the module docstring)."""
        if self.subfolder == "buffalo_l":
            return [Path("~/.insightface/models/buffalo_l").expanduser()]
        if self.name.startswith(("alexnet-", "pt_inception-")):  # where torch.hub / pytorch-fid cache them
            torch_home = Path(os.environ.get("TORCH_HOME", "~/.cache/torch")).expanduser()
            return [torch_home / "hub" / "checkpoints"]
        if self.subfolder == "dwpose":
            hub = Path(os.environ.get("HF_HOME", "~/.cache/huggingface")).expanduser() / "hub"
            return sorted((hub / "models--yzd-v--DWPose" / "snapshots").glob("*"))
        if self.subfolder == "lpips":
            spec = importlib.util.find_spec("lpips")  # finds the wheel without importing it (it needs torchvision)
            if spec is not None and spec.submodule_search_locations:
                return [Path(p) / "weights" / "v0.1" for p in spec.submodule_search_locations]
        return []

    def how_to_get(self) -> str:
        """One sentence: what to download and where to put it."""
        return how_to_get([self])


_BUFFALO_L = "https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip"
_BUFFALO_NOTE = "unzip it; InsightFace models are for non-commercial research use only"

WEIGHT_FILES = {
    "arcface": WeightFile("w600k_r50.onnx", _BUFFALO_L, "buffalo_l", _BUFFALO_NOTE),
    "scrfd": WeightFile("det_10g.onnx", _BUFFALO_L, "buffalo_l", _BUFFALO_NOTE),
    "alexnet": WeightFile("alexnet-owt-7be5be79.pth", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
    "inception": WeightFile("pt_inception-2015-12-05-6726825d.pth", "https://github.com/mseitzer/pytorch-fid/releases/"
                            "download/fid_weights/pt_inception-2015-12-05-6726825d.pth"),
    "lpips_alex": WeightFile("alex.pth", "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/"
                             "weights/v0.1/alex.pth", "lpips", "it also ships in the lpips wheel as "
                             "lpips/weights/v0.1/alex.pth"),
    # The plain PyTorch I3D state dict of VideoGPT's FVD (common_metrics_on_video_quality loads it from fvd/videogpt/).
    "i3d": WeightFile("i3d_pretrained_400.pt", "https://onedrive.live.com/download?cid=78EEF3EB6AE7DBCB&resid="
                      "78EEF3EB6AE7DBCB%21199&authkey=AApKdFHPXzWLNyI", "",
                      "the Kinetics-400 RGB I3D that VideoGPT's and common_metrics_on_video_quality's FVD load"),
    "dwpose_det": WeightFile("yolox_l.onnx", "https://huggingface.co/yzd-v/DWPose/resolve/main/yolox_l.onnx", "dwpose"),
    "dwpose_pose": WeightFile("dw-ll_ucoco_384.onnx", "https://huggingface.co/yzd-v/DWPose/resolve/main/"
                              "dw-ll_ucoco_384.onnx", "dwpose"),
}


def how_to_get(specs: list[WeightFile]) -> str:
    """What to download and where to put it, for some weight files (those from one download said once)."""
    parts = []
    for url in dict.fromkeys(spec.url for spec in specs):
        group = [spec for spec in specs if spec.url == url]
        names = " and ".join(spec.name for spec in group)
        sub = group[0].subfolder
        homes = " or ".join(str(d) + "/" for d in group[0].default_dirs())
        note = "; ".join(dict.fromkeys(spec.note for spec in group if spec.note))
        parts.append(f"download {url}{' (' + note + ')' if note else ''} and put {names} in "
                     f"<weights-dir>/{sub + '/' if sub else ''} (--weights-dir or ${ENV_VAR})"
                     f"{' or ' + homes if homes else ''}")
    return "; ".join(parts)


def search_dirs(weights_dirs=()) -> list[Path]:
    """The weights folders given plus those of ``$DIRECTANIMATOR_WEIGHTS``, in search order."""
    dirs = [Path(d).expanduser() for d in weights_dirs or ()]
    dirs += [Path(d).expanduser() for d in os.environ.get(ENV_VAR, "").split(os.pathsep) if d.strip()]
    return dirs


def find_weight(key: str, weights_dirs=()) -> Path | None:
    """Path of ``WEIGHT_FILES[key]`` (its ``.safetensors`` twin preferred for ``.pth`` files), or None."""
    spec = WEIGHT_FILES[key]
    names = [spec.name]
    for ext in (".pth", ".pt"):
        if spec.name.endswith(ext):
            names.insert(0, spec.name[: -len(ext)] + ".safetensors")
    folders = []
    for d in search_dirs(weights_dirs):
        folders += [d / spec.subfolder, d] if spec.subfolder else [d]
    folders += spec.default_dirs()
    for folder in folders:
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def require_weight(key: str, weights_dirs=(), metric: str = "") -> Path:
    """Like ``find_weight`` but raises ``InputError`` saying what to download and where to put it."""
    path = find_weight(key, weights_dirs)
    if path is None:
        spec = WEIGHT_FILES[key]
        raise InputError(f"{metric + ' needs ' if metric else ''}{spec.name}, not found: {spec.how_to_get()}")
    return path


def load_state_dict(path: str | os.PathLike) -> dict:
    """Tensors of a ``.safetensors`` file, or of a ``.pth`` read with ``torch.load(weights_only=True)``.

    Raises:
        InputError: the file is unreadable, truncated, or holds anything but tensors (one line naming it).
    """
    import torch

    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch/safetensors raise many types for a damaged file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot read the weights {path}: {reason[:200]}; download the file again") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{path} is not a state dict of tensors; download the published file again")
    return state


def check_layout(state: dict, expected: dict, path) -> dict:
    """The tensors of ``state`` that ``expected`` (a model's state dict) names, checked for presence and shape;
    extra entries (a classifier the metric does not use) are dropped.

    Raises:
        InputError: a tensor is missing or has another shape (one line naming the file and the tensor).
    """
    picked = {k: v for k, v in state.items() if k in expected}
    missing = sorted(set(expected) - set(picked))
    wrong = [k for k in picked if tuple(picked[k].shape) != tuple(expected[k].shape)]
    if missing or wrong:
        what = f"lacks {missing[0]}" if missing else (f"has {wrong[0]} of shape {tuple(picked[wrong[0]].shape)}, "
                                                       f"expected {tuple(expected[wrong[0]].shape)}")
        raise InputError(f"{path} is not the expected weight file: it {what}; download the published file again")
    return picked


def convert(src: str, dst: str | None = None) -> Path:
    """Write ``src`` (a ``.pth`` state dict) as ``.safetensors`` beside it (or to ``dst``), atomically."""
    from safetensors.torch import save_file

    src_path = Path(src)
    if not src_path.is_file():
        raise InputError(f"{src} does not exist; give the .pth file to convert")
    out = Path(dst) if dst else src_path.with_suffix(".safetensors")
    if out.suffix != ".safetensors":
        raise InputError(f"the output {out} must end in .safetensors")
    state = {k: v.contiguous() for k, v in load_state_dict(src_path).items()}
    with atomic_path(out, suffix=".safetensors") as tmp:
        save_file(state, str(tmp))
    return out

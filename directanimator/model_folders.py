"""Model folders: a local folder or a Hub repo id (local cache first) turned into a checked local folder, and
safetensors weights read from it. Nothing here unpickles a file or runs code from a folder: pickled weights are
refused with a message that says how to convert them."""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Callable

import torch
from huggingface_hub import snapshot_download
from safetensors import safe_open
from safetensors.torch import load_file

from directanimator.errors import InputError

__all__ = ["check_pipeline_folder", "load_safetensors_folder", "resolve_model_folder", "resolve_run_folder"]

#: What a training run writes beside its weights (``trainers.checkpoints.ARGS_FILE``).
RUN_ARGS_FILE = "training_args.json"

# the components of a pipeline folder that carry weights
_WEIGHTED_COMPONENTS = ("transformer", "vae", "text_encoder")


def _looks_like_repo_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not os.path.isabs(name) and not name.startswith(".")


def resolve_model_folder(
    path_or_repo: str | os.PathLike, subfolder: str | None = None, component: str | None = None,
    allow_download: bool | None = None,
) -> str:
    """Turn a local folder or a Hub repo id into a local folder, or raise an ``InputError`` that says what to do.

    Args:
        path_or_repo: local folder, or ``owner/name`` Hub repo id (looked up in the local Hugging Face cache first).
        subfolder: folder inside it to return (e.g. ``"transformer"``).
        component: ``"transformer"``: a folder with ``config.json`` (a pipeline folder's ``transformer/`` is used
            when ``subfolder`` is not given); ``"pipeline"``: a folder with ``model_index.json``; ``None``: any.
        allow_download: fetch a repo id that is not cached (default: unless ``HF_HUB_OFFLINE`` is set). Only
            ``*.json``, ``*.safetensors`` and tokenizer files are fetched.
    """
    path = os.fspath(path_or_repo)
    hint = (
        "download the weights (e.g. `huggingface-cli download <repo> --local-dir <folder>`) and pass that folder"
    )
    if not os.path.isdir(path):
        if os.path.exists(path):
            raise InputError(f"model path {path} is a file; pass the model folder (with {_marker(component)})")
        if not _looks_like_repo_id(path):
            raise InputError(f"model folder {path} does not exist; {hint}")
        path = _snapshot(path, allow_download, hint)
    if subfolder:
        path = os.path.join(path, subfolder)
    elif component == "transformer" and not os.path.isfile(os.path.join(path, "config.json")):
        if os.path.isfile(os.path.join(path, "transformer", "config.json")):
            path = os.path.join(path, "transformer")
    marker = _marker(component)
    if marker and not os.path.isfile(os.path.join(path, marker)):
        raise InputError(f"{path} has no {marker}, so it is not a {component} folder; {hint}")
    return path


def _marker(component: str | None) -> str | None:
    return {"transformer": "config.json", "pipeline": "model_index.json"}.get(component)


def _snapshot(repo_id: str, allow_download: bool | None, hint: str) -> str:
    patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken"]
    try:
        return snapshot_download(repo_id, local_files_only=True, allow_patterns=patterns)
    except Exception:
        pass
    if allow_download is None:
        allow_download = os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("1", "true", "yes", "on")
    if not allow_download:
        raise InputError(
            f"{repo_id} is neither a local folder nor in the Hugging Face cache and downloads are off "
            f"(HF_HUB_OFFLINE); {hint.replace('<repo>', repo_id)}"
        )
    try:
        return snapshot_download(repo_id, allow_patterns=patterns)
    except Exception as e:  # network, auth, missing repo: all need the user to act
        raise InputError(
            f"could not download {repo_id} ({type(e).__name__}); {hint.replace('<repo>', repo_id)}"
        ) from None


def load_safetensors_folder(folder: str, prefix: str = "diffusion_pytorch_model",
                            keep: Callable[[str], bool] | None = None) -> dict[str, torch.Tensor]:
    """Load a diffusers model folder's weights (single file or sharded with an index), safetensors only; with
    ``keep``, only the tensors whose name it accepts are read from disk (the others never enter memory).

    Raises ``InputError`` when the folder holds no safetensors weights (e.g. only pickled ``.bin`` files).
    """
    index = os.path.join(folder, f"{prefix}.safetensors.index.json")
    single = os.path.join(folder, f"{prefix}.safetensors")
    if os.path.isfile(single):
        files = [single]
    elif os.path.isfile(index):
        with open(index) as f:
            files = sorted({os.path.join(folder, v) for v in json.load(f)["weight_map"].values()})
    else:
        files = sorted(glob.glob(os.path.join(folder, "*.safetensors")))
    if not files:
        found = "only pickled .bin weights, which are not loaded for safety" if glob.glob(
            os.path.join(folder, "*.bin")) else "no weights"
        raise InputError(
            f"{folder} has {found}; put the model's *.safetensors files there (convert .bin with diffusers' "
            "save_pretrained(safe_serialization=True))"
        )
    state = {}
    for file in files:
        if not os.path.isfile(file):
            raise InputError(f"weight shard {file} is missing; download the complete model folder")
        if keep is None:
            state.update(load_file(file))
            continue
        with safe_open(file, framework="pt") as f:
            state.update({k: f.get_tensor(k) for k in f.keys() if keep(k)})
    return state


def check_pipeline_folder(folder: str, components: tuple[str, ...] | list[str] | None = None,
                          hint: str | None = None) -> None:
    """Every weighted component of ``model_index.json`` has safetensors weights, or an ``InputError`` says which.

    Args:
        folder: the pipeline folder.
        components: check these sub-folders of ``folder`` instead of the weighted components ``model_index.json``
            lists (which is then not needed): the trainers load a pipeline's ``vae/``, ``text_encoder/`` and
            ``transformer/`` one by one, and a lone model folder (a checkpoint's ``transformer/``) is checked as
            ``check_pipeline_folder(parent, [name])``.
        hint: what to do, instead of "download the whole model ..." (e.g. for a training run's checkpoint).
    """
    problems = []
    if components is None:
        try:
            with open(os.path.join(folder, "model_index.json")) as f:
                index = json.load(f)
        except (OSError, ValueError) as e:
            raise InputError(f"{folder}/model_index.json is unreadable ({e}); re-download the model folder") from None
        components = []
        for name in _WEIGHTED_COMPONENTS:
            if name in index:
                components.append(name)
            else:
                problems.append(f"{name} (not in model_index.json)")
    for name in components:
        sub = os.path.join(folder, name)
        if not os.path.isdir(sub):
            problems.append(f"{name}/ (missing)")
        elif not any(f.endswith(".safetensors") for f in os.listdir(sub)):
            has_bin = any(f.endswith((".bin", ".pt", ".pth", ".ckpt")) for f in os.listdir(sub))
            problems.append(f"{name}/ ({'only pickled weights, refused' if has_bin else 'no weights'})")
    if problems:
        hint = hint or ("download the whole model (safetensors files) into that folder, e.g. `huggingface-cli "
                        f"download <repo> --local-dir {folder}`")
        raise InputError(f"{folder} is not a complete DirectAnimator / CogVideoX I2V model: {', '.join(problems)}; "
                         f"{hint}")


def resolve_run_folder(path: str | os.PathLike) -> tuple[str, str] | None:
    """``(base pipeline folder, trained transformer folder)`` when ``path`` is a training run (the trainers'
    ``--output-dir``: ``transformer/`` + ``training_args.json``) or a ``checkpoints/checkpoint-<step>`` folder of
    one; None for anything else (a pipeline folder, a repo id). A run without a final ``transformer/`` uses its
    latest checkpoint. The base is the ``--pretrained`` pipeline recorded in ``training_args.json``: its VAE, text
    encoder, tokenizer and scheduler are used as they are (the trainers never change them).

    Raises:
        InputError: the run holds no weights yet, its arguments file is unreadable, or the base pipeline it was
            trained from is gone (the message names it and what to do).
    """
    p = os.fspath(path)
    if not os.path.isdir(p) or os.path.isfile(os.path.join(p, "model_index.json")):
        return None
    args_file = next((os.path.join(d, RUN_ARGS_FILE) for d in (p, os.path.dirname(os.path.abspath(p)),
                                                                os.path.dirname(os.path.dirname(os.path.abspath(p))))
                      if os.path.isfile(os.path.join(d, RUN_ARGS_FILE))), None)
    if args_file is None:
        return None
    transformer = os.path.join(p, "transformer")
    if not os.path.isfile(os.path.join(transformer, "config.json")):
        steps = sorted((int(n.split("-")[1]), n) for n in os.listdir(os.path.join(p, "checkpoints"))
                       if n.startswith("checkpoint-") and n.split("-")[1].isdigit()
                       and os.path.isfile(os.path.join(p, "checkpoints", n, "transformer", "config.json"))
                       ) if os.path.isdir(os.path.join(p, "checkpoints")) else []
        if not steps:
            raise InputError(f"training run {p} holds no transformer/ and no checkpoint yet; wait for a checkpoint, "
                             "or pass a pipeline folder")
        transformer = os.path.join(p, "checkpoints", steps[-1][1], "transformer")
    try:
        with open(args_file) as f:
            base = json.load(f).get("pretrained")
    except (OSError, ValueError, AttributeError) as exc:
        raise InputError(f"cannot read {args_file} ({type(exc).__name__}); it records the run's base pipeline: "
                         "restore it, or build a pipeline folder with the run's transformer/") from None
    if not base:
        raise InputError(f"{args_file} records no --pretrained base pipeline; build a pipeline folder with the "
                         "run's transformer/ and pass that")
    if not os.path.isdir(base) and not _looks_like_repo_id(base):
        raise InputError(f"training run {p} was trained from the base pipeline {base}, which no longer exists; put "
                         "that pipeline folder back (its VAE, text encoder and scheduler are needed) or pass a "
                         "pipeline folder")
    return resolve_model_folder(base, component="pipeline"), transformer

"""Training checkpoints: ``<output>/checkpoints/checkpoint-<step>`` with accelerate's state, a loadable
``transformer/`` (and ``transformer_ema/``) and ``trainer_state.json``, written to a temp folder and renamed; finding
the latest one, resolving a stage-1 run for Same2X, the final ``transformer/``, and the metrics log on resume."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import torch
from huggingface_hub import save_torch_state_dict

from directanimator.errors import InputError
from trainers.cli_checks import check_model_folder, loading, writing

__all__ = ["ARGS_FILE", "STATE_FILE", "latest_checkpoint", "resolve_same_id_checkpoint", "save_checkpoint",
           "save_final_transformer", "save_transformer", "truncate_metrics"]

logger = logging.getLogger("trainers")

STATE_FILE = "trainer_state.json"
ARGS_FILE = "training_args.json"


def latest_checkpoint(folder: str | os.PathLike) -> Path | None:
    """The checkpoint-<step> folder with the highest step in ``folder`` (temp folders ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = [p for p in folder.iterdir() if p.is_dir() and p.name.startswith("checkpoint-")
             and (p / STATE_FILE).is_file()]
    return max(found, key=lambda p: int(p.name.split("-")[1])) if found else None


def _owned_cpu(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` on the CPU, holding its own storage.

    DeepSpeed's ZeRO-3 gathered state dict takes ``param.cpu()``, which copies nothing on CPU processes: the values
    stay views into the flat buffer the parameters were gathered in, which safetensors refuses to write.
    """
    tensor = tensor.detach().to("cpu").contiguous()
    return tensor if tensor.untyped_storage().nbytes() == tensor.nbytes else tensor.clone()


def save_transformer(model, state_dict: dict, folder: Path) -> None:
    """Write a ``from_pretrained``-loadable transformer folder (config + safetensors shards) from a FULL state dict.

    diffusers' ``save_pretrained`` reads ``model.state_dict()`` itself, which under FSDP2 / ZeRO-3 holds only this
    process's shards; ``accelerator.get_state_dict`` gathers the whole one, written here in diffusers' layout.
    """
    folder.mkdir(parents=True, exist_ok=True)
    model.save_config(str(folder))
    tensors = {k: _owned_cpu(v) for k, v in state_dict.items()}
    save_torch_state_dict(tensors, folder, filename_pattern="diffusion_pytorch_model{suffix}.safetensors",
                          max_shard_size="10GB", metadata={"format": "pt"})


def _params_finite(model) -> bool:
    """Every parameter finite (this process's shards for FSDP2 DTensors)."""
    return all(bool(torch.isfinite(p.to_local() if hasattr(p, "to_local") else p).all()) for p in model.parameters())


def save_checkpoint(accelerator, transformer, ema, output_dir: Path, state: dict, total_limit: int) -> Path | None:
    """Write checkpoint-<step> atomically: save_state + transformer/ (+ transformer_ema/) + trainer_state.json."""
    unwrapped = accelerator.unwrap_model(transformer)
    finite = torch.tensor(1.0 if _params_finite(unwrapped) else 0.0, device=accelerator.device)
    if accelerator.reduce(finite, "min").item() < 1:
        logger.warning("weights are not finite at step %d: checkpoint NOT written", state["global_step"])
        return None
    folder = output_dir / "checkpoints"
    final = folder / f"checkpoint-{state['global_step']:07d}"
    tmp = folder / f".tmp-checkpoint-{state['global_step']:07d}"
    # a full disk: the half-written temp folder goes, the previous checkpoint stays, one error line says so
    with writing(f"checkpoint {final}", folder, partial=tmp, kept=lambda: _kept(output_dir)):
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp / "accelerate"))
        state_dict = accelerator.get_state_dict(transformer)
        if accelerator.is_main_process:
            save_transformer(unwrapped, state_dict, tmp / "transformer")
            if ema is not None:
                ema.store(unwrapped.parameters())
                ema.copy_to(unwrapped.parameters())
                unwrapped.save_pretrained(str(tmp / "transformer_ema"), safe_serialization=True)
                ema.restore(unwrapped.parameters())
            (tmp / STATE_FILE).write_text(json.dumps(state, indent=2))
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        keep = sorted((p for p in folder.iterdir() if p.name.startswith("checkpoint-")),
                      key=lambda p: int(p.name.split("-")[1]))
        for old in keep[: max(0, len(keep) - total_limit)]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def resolve_same_id_checkpoint(path: str) -> tuple[str, str | None]:
    """(transformer folder, pretrained pipeline recorded by stage 1 or None) of a stage-1 output/checkpoint."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"--same-id-checkpoint {path} does not exist; pass the stage-1 --output-dir")
    recorded = None
    for state in (p / ARGS_FILE, p.parent / ARGS_FILE, p.parent.parent / ARGS_FILE):
        if state.is_file():
            with loading(f"--same-id-checkpoint {path}: {state}", hint="pass --pretrained, or rerun stage 1"):
                recorded = json.loads(state.read_text()).get("pretrained")
            break
    if (p / "config.json").is_file():
        found = p
    elif (p / "transformer" / "config.json").is_file():
        found = p / "transformer"
    elif (latest := latest_checkpoint(p / "checkpoints")) is not None:
        found = latest / "transformer"
    else:
        raise InputError(f"--same-id-checkpoint {path} holds no transformer/ and no checkpoints/; pass the stage-1 "
                         "output")
    check_model_folder(found, hint="pass another checkpoint of the stage-1 run, or rerun stage 1")
    return str(found), recorded


def truncate_metrics(path: Path, step: int) -> None:
    """Drop metric lines past ``step`` (written by a run that died after its last checkpoint)."""
    if not path.is_file():
        return
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if _metric_step(ln) <= step]
    path.write_text("".join(ln + "\n" for ln in lines))


def _metric_step(line: str) -> float:
    """The step of a metrics.jsonl line; inf for a line cut short by a kill or a full disk (dropped on resume)."""
    try:
        return float(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return float("inf")


def _kept(output_dir: Path) -> str:
    """What a failed write leaves intact, for its error line."""
    last = latest_checkpoint(output_dir / "checkpoints")
    return (f"the last checkpoint {last} is intact: rerun with --resume latest" if last is not None
            else "no checkpoint was written yet")


def save_final_transformer(accelerator, transformer, output_dir: Path) -> Path:
    """Write ``<output>/transformer`` (the finished run's weights, gathered from every process) atomically, unless a
    weight is not finite; returns the folder."""
    final = output_dir / "transformer"
    unwrapped = accelerator.unwrap_model(transformer)
    state_dict = accelerator.get_state_dict(transformer)
    if accelerator.is_main_process and all(bool(torch.isfinite(v).all()) for v in state_dict.values()
                                           if v.is_floating_point()):
        tmp = output_dir / ".tmp-transformer"
        with writing(f"the final transformer {final}", output_dir, partial=tmp, kept=lambda: _kept(output_dir)):
            shutil.rmtree(tmp, ignore_errors=True)
            save_transformer(unwrapped, state_dict, tmp)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
    return final

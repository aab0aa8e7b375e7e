"""trainers.runs: the trainer command line, one trainer subprocess at a time, and the readers of a run's folder
(what the app's Train tab starts, stops and shows)."""

import json
import sys
import time

import pytest

from directanimator.errors import InputError
from trainers.runs import TrainerProcess, list_checkpoints, read_metrics, split_losses, trainer_command


def test_metrics_split_and_checkpoints(tmp_path):
    lines = [{"step": 1, "loss/denoise": 0.5, "loss/s2x": 0.2, "loss/total": 0.6, "lr": 1e-4},
             {"step": 2, "loss/denoise": 0.4, "loss/total": 0.4}]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + '\n{"step": 3, "loss/de')
    denoise, s2x = split_losses(read_metrics(tmp_path / "metrics.jsonl"))
    assert sorted(set(denoise["loss"])) == ["loss/denoise", "loss/total"] and list(s2x["value"]) == [0.2]
    for sub in ("checkpoints/checkpoint-0000010/transformer", "checkpoints/checkpoint-0000002/transformer",
                "transformer", ".tmp-transformer"):
        (tmp_path / sub).mkdir(parents=True)
        (tmp_path / sub / "config.json").write_text("{}")
        (tmp_path / sub / "diffusion_pytorch_model.safetensors").write_bytes(b"")
    found = [str(p).replace(str(tmp_path) + "/", "") for p in list_checkpoints(tmp_path)]
    assert found == ["checkpoints/checkpoint-0000002/transformer", "checkpoints/checkpoint-0000010/transformer",
                     "transformer"]


def test_trainer_process_start_stop_and_command(tmp_path):
    run = TrainerProcess()
    assert run.exit_code() is None and run.output_dir is None
    run.start([sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"], tmp_path / "run")
    assert run.running
    with pytest.raises(InputError, match="already going"):
        run.start([sys.executable, "-c", "pass"], tmp_path / "other")
    t0 = time.time()
    run.stop()
    assert run.exit_code() is not None and run.exit_code() != 0 and time.time() - t0 < 15 and not run.running
    assert (tmp_path / "run" / "train.log").read_text().startswith("$ ")
    cmd = trainer_command("trainers.same2x", "ds", "", "runs/stage1", tmp_path, 10, 1e-5, 2, 8, 0.25, 5,
                          same2x=True)
    assert cmd[1:3] == ["-m", "trainers.same2x"] and "--pretrained" not in cmd
    assert cmd[cmd.index("--align-depth") + 1] == "8" and cmd[cmd.index("--s2x-weight") + 1] == "0.25"
    with pytest.raises(InputError, match="same-ID run"):
        trainer_command("trainers.same2x", "ds", "", "", tmp_path, 10, 1e-5, 2, 8, 0.25, 5, same2x=True)


def test_runs_module_does_not_import_gradio():
    import subprocess

    code = "import sys, trainers.runs; assert 'gradio' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0

"""Bad inputs to the trainer CLIs: each ends with ONE `error: ...` line, exit status 2, and nothing half-written.

The CLIs' ``main(argv)`` run in-process on the tiny models of tests/test_trainers.py (its module fixture ``world``:
a tiny pipeline folder, a 3-clip dataset and a filled precompute cache).
"""

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from test_trainers import _args, _fill_cache, _settings, world  # noqa: F401  (world: the shared fixture)
from trainers.components import load_components
from trainers.same2x import main as same2x_main
from trainers.same_id import main as same_id_main

ROOT = Path(__file__).resolve().parents[1]


def one_error(capsys, *words) -> str:
    """The single `error:` line of the last command's stderr (its last line, no traceback), holding ``words``."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err[-3000:]
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and err.rstrip().splitlines()[-1] == errors[0], err[-3000:]
    for w in words:
        assert w in errors[0], errors[0]
    return errors[0]


def _pipe(world, *extra):
    return ["--pretrained", str(world / "pipe"), *extra]


@pytest.fixture(scope="module")
def run(world, tmp_path_factory):
    """A finished 2-step same-ID run with checkpoints at steps 1 and 2."""
    out = tmp_path_factory.mktemp("inputs") / "run"
    assert same_id_main(_args(world, out, *_pipe(world), "--max-steps", "2", "--checkpointing-steps", "1")) == 0
    return out


# ------------------------------------------------------------------------------------------------ numeric flags

SAME_ID_BAD = [
    ("--max-steps", "-1", "an integer >= 1"), ("--max-steps", "0", ">= 1"), ("--train-batch-size", "0", ">= 1"),
    ("--gradient-accumulation-steps", "0", ">= 1"), ("--learning-rate", "0", "> 0"),
    ("--learning-rate", "nan", "> 0"), ("--learning-rate", "fast", "a number > 0"),
    ("--lr-warmup-steps", "-1", ">= 0"), ("--checkpointing-steps", "0", ">= 1"),
    ("--checkpoints-total-limit", "0", ">= 1"), ("--num-frames", "0", ">= 1"), ("--long-side", "8", "in 32..2048"),
    ("--fps", "0", "> 0"), ("--lowpass", "1.5", "in [0, 1]"), ("--face-enlarge", "0.5", "in [1, 4]"),
    ("--grid", "-1", "in 0..256"), ("--max-skipped-clips", "-0.5", "in [0, 1]"),
    ("--caption-dropout", "2", "in [0, 1]"), ("--dataloader-num-workers", "-1", ">= 0"),
    ("--seed", "-1", "in 0..4294967295"), ("--adam-beta1", "1", "in [0, 1)"), ("--adam-beta2", "-0.1", "[0, 1)"),
    ("--adam-weight-decay", "-1", ">= 0"), ("--adam-epsilon", "0", "> 0"), ("--max-grad-norm", "0", "> 0"),
    ("--ema-decay", "1.5", "in [0, 1]"), ("--max-nan-steps", "0", ">= 1"), ("--validation-steps", "-5", ">= 0"),
    ("--validation-inference-steps", "0", ">= 1"), ("--max-steps", "1.5", "an integer"),
]


@pytest.mark.parametrize("flag, value, allowed", SAME_ID_BAD)
def test_same_id_numeric_flags_are_range_checked(world, tmp_path, capsys, flag, value, allowed):
    out = tmp_path / "out"
    assert same_id_main(_args(world, out, *_pipe(world), flag, value)) == 2
    one_error(capsys, f"error: {flag} must be", allowed, f"got ", value, "--help")
    assert not out.exists()


@pytest.mark.parametrize("flag, value, allowed", [("--align-depth", "0", ">= 1"), ("--s2x-weight", "-0.5", ">= 0"),
                                                  ("--s2x-weight", "inf", ">= 0")])
def test_same2x_numeric_flags_are_range_checked(world, tmp_path, capsys, flag, value, allowed):
    out = tmp_path / "out"
    assert same2x_main(_args(world, out, "--same-id-checkpoint", str(world / "pipe"), flag, value)) == 2
    one_error(capsys, f"error: {flag} must be", allowed, f"got {value}")
    assert not out.exists()


def test_negative_max_steps_trains_nothing_and_writes_nothing(world, tmp_path, capsys):
    """The sweep's case: `--max-steps -1` used to exit 0 with a final transformer/ that looked like a finished run."""
    out = tmp_path / "out"
    assert same_id_main(_args(world, out, *_pipe(world), "--max-steps", "-1")) == 2
    assert one_error(capsys) == ("error: --max-steps must be an integer >= 1, got -1 "
                                 "(see python -m trainers.same_id --help)")
    assert not out.exists()


def _cli(name):
    import importlib

    return importlib.import_module(f"trainers.{MODULES.get(name, name)}").main


# where the CLIs live (the experiments moved to trainers/experiments/)
MODULES = {name: f"experiments.{name}" for name in ("vae", "make_demo_pipeline", "reproduce", "reproduce_eval")}

OTHER_CLIS = [
    ("pseudo", ["--hub-dataset", "D", "--same-id-checkpoint", "C", "--output-dir", "{out}"],
     [("--per-clip", "0"), ("--min-mask-iou", "1.5"), ("--num-inference-steps", "0"), ("--guidance-scale", "-1"),
      ("--num-frames", "-9"), ("--long-side", "0"), ("--seed", "-3")]),
    ("vae", ["--hub-dataset", "D", "--output-dir", "{out}"],
     [("--max-steps", "0"), ("--batch-size", "0"), ("--image-batch-size", "0"), ("--learning-rate", "-1"),
      ("--image-fraction", "2"), ("--gray-fraction", "-1"), ("--kl-weight", "-1"), ("--warmup-steps", "-1"),
      ("--latent-channels", "0"), ("--norm-groups", "0"), ("--clip-frames", "0"), ("--size", "4")]),
    ("make_demo_pipeline", ["--vae", "V", "--out", "{out}"],
     [("--layers", "0"), ("--heads", "0"), ("--head-dim", "8"), ("--text-dim", "0"), ("--text-length", "0"),
      ("--frames", "0"), ("--size", "0"), ("--seed", "-1")]),
    ("synthetic", ["--out", "{out}"],
     [("--seed", "-1"), ("--fps", "0"), ("--crf", "52"), ("--frames", "1"), ("--identities", "-2"),
      ("--motions-per-identity", "0")]),
    ("reproduce", ["--out", "{out}"], [("--jobs", "0"), ("--seeds", "1,x"), ("--seeds", "-1")]),
    ("plot_metrics", ["{out}", "metrics.jsonl"], [("--smooth", "0")]),
]


@pytest.mark.parametrize("cli, base, flag, value", [(c, b, f, v) for c, b, bad in OTHER_CLIS for f, v in bad])
def test_every_trainer_cli_range_checks_its_numbers(tmp_path, capsys, cli, base, flag, value):
    out = tmp_path / "out"
    argv = [a.replace("{out}", str(out)) for a in base] + [flag, value]
    assert _cli(cli)(argv) == 2
    one_error(capsys, f"error: {flag} must be", f"python -m trainers.{MODULES.get(cli, cli)} --help")
    assert not out.exists()


def test_reproduce_eval_subcommands_range_check_too(tmp_path, capsys):
    main_eval = _cli("reproduce_eval")
    assert main_eval(["model", "P", "W", "B", "none", str(tmp_path / "x.json"), "--steps", "0"]) == 2
    one_error(capsys, "error: --steps must be an integer >= 1, got 0")
    assert main_eval(["pairs", "W", str(tmp_path / "p"), "--size", "16"]) == 2
    one_error(capsys, "error: --size must be an integer in 32..2048, got 16")
    assert main_eval(["nonsense"]) == 2
    one_error(capsys, "invalid choice")
    assert not any(tmp_path.iterdir())


def test_unknown_lr_scheduler_and_bad_output_dir(world, tmp_path, capsys):
    out = tmp_path / "out"
    assert same_id_main(_args(world, out, *_pipe(world), "--lr-scheduler", "warmup_cosine")) == 2
    one_error(capsys, "--lr-scheduler 'warmup_cosine' is not a schedule", "constant_with_warmup")
    assert not out.exists()
    (tmp_path / "file").write_text("x")
    assert same_id_main(_args(world, tmp_path / "file", *_pipe(world))) == 2
    one_error(capsys, f"--output-dir {tmp_path / 'file'} is a file")
    assert same_id_main(_args(world, tmp_path / "file" / "run", *_pipe(world))) == 2
    one_error(capsys, "cannot be made", "is a file")
    assert same_id_main(_args(world, out, *_pipe(world), cache=tmp_path / "file")) == 2
    one_error(capsys, "--cache-dir", "is a file")
    assert (tmp_path / "file").read_text() == "x" and not out.exists()


# ------------------------------------------------------------------------------------------------ model folders

def _copy_pipe(world, tmp_path) -> Path:
    pipe = tmp_path / "pipe"
    shutil.copytree(world / "pipe", pipe)
    return pipe


def test_pipeline_folder_without_weights_is_refused_before_loading(world, tmp_path, capsys):
    """The animate CLI's check (check_pipeline_folder), on every component the trainer loads."""
    pipe = _copy_pipe(world, tmp_path)
    for f in pipe.rglob("*.safetensors"):
        f.unlink()
    out = tmp_path / "out"
    assert same_id_main(_args(world, out, "--pretrained", str(pipe))) == 2
    one_error(capsys, f"{pipe} is not a complete DirectAnimator / CogVideoX I2V model",
              "vae/ (no weights)", "text_encoder/ (no weights)", "transformer/ (no weights)")
    assert not out.exists()


def test_pickle_only_weights_are_refused(world, tmp_path, capsys):
    pipe = _copy_pipe(world, tmp_path)
    (pipe / "transformer" / "diffusion_pytorch_model.safetensors").unlink()
    torch.save({}, pipe / "transformer" / "diffusion_pytorch_model.bin")
    out = tmp_path / "out"
    assert same_id_main(_args(world, out, "--pretrained", str(pipe))) == 2
    one_error(capsys, "transformer/ (only pickled weights, refused)")
    assert not out.exists()
    # --transformer: the same check on the folder given instead of the pipeline's own
    assert same_id_main(_args(world, out, *_pipe(world), "--transformer", str(pipe / "transformer"))) == 2
    one_error(capsys, "transformer/ (only pickled weights, refused)")
    assert not out.exists()


def test_same_id_checkpoint_without_weights_is_refused_by_same2x_and_pseudo(world, run, tmp_path, capsys):
    stage1 = tmp_path / "stage1"
    shutil.copytree(run, stage1)
    for f in stage1.rglob("*.safetensors"):
        if f.parent.name == "transformer":
            f.unlink()
    out = tmp_path / "out"
    assert same2x_main(_args(world, out, "--same-id-checkpoint", str(stage1))) == 2
    one_error(capsys, f"{stage1} is not a complete", "transformer/ (no weights)", "rerun stage 1")
    assert same2x_main(_args(world, out, "--same-id-checkpoint",
                                str(stage1 / "checkpoints" / "checkpoint-0000001"))) == 2
    one_error(capsys, "checkpoint-0000001 is not a complete", "transformer/ (no weights)")
    pseudo = _cli("pseudo")
    assert pseudo(["--hub-dataset", str(world / "ds"), "--same-id-checkpoint", str(stage1),
                   "--output-dir", str(out)]) == 2
    one_error(capsys, "transformer/ (no weights)")
    assert not out.exists()


def test_truncated_weights_are_one_clear_error(world, tmp_path, capsys):
    pipe = _copy_pipe(world, tmp_path)
    weights = pipe / "vae" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    out = tmp_path / "out"
    assert same_id_main(_args(world, out, "--pretrained", str(pipe))) == 2
    one_error(capsys, f"could not load the VAE in {pipe}/vae", "re-download it")
    assert not out.exists()


def test_make_demo_pipeline_refuses_a_weightless_vae(tmp_path, capsys):
    from directanimator.tiny import tiny_vae

    tiny_vae().save_pretrained(tmp_path / "vae", safe_serialization=True)
    (tmp_path / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    out = tmp_path / "pipe"
    assert _cli("make_demo_pipeline")(["--vae", str(tmp_path / "vae"), "--out", str(out)]) == 2
    one_error(capsys, "vae/ (no weights)", "trainers.experiments.vae wrote")
    assert not out.exists()


# ------------------------------------------------------------------------------------------------ datasets

def _write_ds(folder: Path, lines: list[bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metadata.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return folder


def _good_row(world, n=0) -> bytes:
    return (world / "ds" / "metadata.jsonl").read_bytes().splitlines()[n]


@pytest.mark.parametrize("case, words", [
    ("missing folder", ["is neither an existing folder nor a Hub repo id"]),
    ("no metadata", ["has no metadata.jsonl"]),
    ("malformed line", ["metadata.jsonl line 2: not valid JSON", "fix it and rerun"]),
    ("not utf-8", ["metadata.jsonl line 1: not UTF-8 text"]),
    ("clip missing", ["metadata.jsonl line 1 file_name: missing file 'clips/gone.mp4'"]),
    ("no clips", ["metadata.jsonl has no clips"]),
    ("no train clip", ["no clip has split 'train'"]),
])
def test_bad_datasets_are_one_line_and_write_nothing(world, tmp_path, capsys, case, words):
    ds = tmp_path / "ds"
    if case == "no metadata":
        ds.mkdir()
    elif case == "malformed line":
        shutil.copytree(world / "ds", ds)
        _write_ds(ds, [_good_row(world), b'{"file_name": "clips/001.mp4", "identity": '])
    elif case == "not utf-8":
        _write_ds(ds, [b'{"file_name": "clips/000.mp4", "identity": "\xff\xfe"}'])
    elif case == "clip missing":
        _write_ds(ds, [b'{"file_name": "clips/gone.mp4", "identity": "a"}'])
    elif case == "no clips":
        _write_ds(ds, [b""])
    elif case == "no train clip":
        shutil.copytree(world / "ds", ds)
        _write_ds(ds, [json.dumps({**json.loads(_good_row(world)), "split": "test"}).encode()])
    out = tmp_path / "out"
    assert same_id_main(_args(world, out, *_pipe(world), dataset=ds)) == 2
    line = one_error(capsys, *words)
    assert line.startswith("error: dataset ")
    assert not out.exists()


def test_zero_usable_clips_stops_before_the_run_folder(world, tmp_path, capsys):
    """Every clip's cue extraction failed (what precompute remembers beside the cache): one error, no run folder."""
    from trainers.dataset import load_dataset
    from trainers.precompute import Precomputer

    cache = tmp_path / "cache"
    c = load_components(str(world / "pipe"))
    pre = Precomputer(cache, _settings(), c.vae, c.tokenizer, c.text_encoder)
    for clip in load_dataset(world / "ds").clips:
        failed = pre.failure_path(pre.sample_key(clip))
        failed.parent.mkdir(parents=True, exist_ok=True)
        failed.write_text(f"{clip.file_name}: no person found in the reference image\n")
    out = tmp_path / "out"
    assert same_id_main(_args(world, out, *_pipe(world), cache=cache)) == 2
    one_error(capsys, "precompute: 3 of 3 clips have no usable cues", "no person found")
    assert not out.exists()


# ------------------------------------------------------------------------------------------------ --resume

def _resume(world, out, ckpt, *extra):
    return _args(world, out, *_pipe(world), "--max-steps", "3", "--checkpointing-steps", "1", "--resume", str(ckpt),
                 *extra)


@pytest.mark.parametrize("damage, words", [
    ("missing", ["does not exist", "or 'latest'"]),
    ("not a checkpoint", ["is not a checkpoint folder (no trainer_state.json)"]),
    ("cut before its state", ["is not a checkpoint folder (no trainer_state.json)"]),
    ("state unreadable", ["is damaged: trainer_state.json is unreadable", "resume from an earlier checkpoint"]),
    ("no accelerate state", ["is damaged: its accelerate/ training state is missing"]),
    ("truncated model state", ["could not load the checkpoint", "resume from an earlier checkpoint"]),
    ("truncated optimizer state", ["could not load the checkpoint", "resume from an earlier checkpoint"]),
    ("no transformer weights", ["transformer/ (no weights)"]),
])
def test_bad_resume_checkpoints(world, run, tmp_path, capsys, damage, words):
    ckpt = tmp_path / "checkpoint-0000001"
    if damage != "missing":
        shutil.copytree(run / "checkpoints" / "checkpoint-0000001", ckpt)
    if damage == "not a checkpoint":
        shutil.rmtree(ckpt)
        ckpt.mkdir()
        (ckpt / "notes.txt").write_text("x")
    elif damage == "cut before its state":  # a kill during save leaves the state file out (it is written last)
        (ckpt / "trainer_state.json").unlink()
    elif damage == "state unreadable":
        (ckpt / "trainer_state.json").write_text('{"global_step": 1, "micro')
    elif damage == "no accelerate state":
        shutil.rmtree(ckpt / "accelerate")
    elif damage == "truncated model state":
        f = ckpt / "accelerate" / "model.safetensors"
        f.write_bytes(f.read_bytes()[:1000])
    elif damage == "truncated optimizer state":
        f = ckpt / "accelerate" / "optimizer.bin"
        f.write_bytes(f.read_bytes()[:1000])
    elif damage == "no transformer weights":
        (ckpt / "transformer" / "diffusion_pytorch_model.safetensors").unlink()
    out = tmp_path / "out"
    assert same_id_main(_resume(world, out, ckpt)) == 2
    one_error(capsys, f"{ckpt}", *words)
    assert not out.exists()


def test_resume_latest_names_the_damaged_checkpoint_and_leaves_the_run_alone(world, run, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(run, out)
    (out / "checkpoints" / "checkpoint-0000002" / "trainer_state.json").write_text("{}")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert same_id_main(_resume(world, out, "latest")) == 2
    one_error(capsys, "--resume", "checkpoint-0000002 is damaged", "lacks global_step")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_resume_refuses_the_other_stages_checkpoint(world, run, tmp_path, capsys):
    out = tmp_path / "out"
    assert same2x_main(_args(world, out, "--same-id-checkpoint", str(run), "--align-depth", "1",
                                "--resume", str(run / "checkpoints" / "checkpoint-0000001"))) == 2
    one_error(capsys, "is a checkpoint of the same_id stage, this is the same2x stage")
    assert not out.exists()


def test_same2x_output_dir_must_not_be_the_stage1_folder(world, run, tmp_path, capsys):
    stage1 = tmp_path / "stage1"
    shutil.copytree(run, stage1)
    before = {p: p.read_bytes() for p in stage1.rglob("*") if p.is_file()}
    assert same2x_main(_args(world, stage1, "--same-id-checkpoint", str(stage1), "--align-depth", "1",
                                "--max-steps", "1")) == 2
    one_error(capsys, "holds the stage-1 model this run starts from")
    assert {p: p.read_bytes() for p in stage1.rglob("*") if p.is_file()} == before


def test_resume_after_a_metrics_line_cut_short(world, run, tmp_path):
    """A kill (or a full disk) in the middle of a metrics line must not stop the resume."""
    out = tmp_path / "run"
    shutil.copytree(run, out)
    with open(out / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 3, "loss/den')
    assert same_id_main(_resume(world, out, "latest")) == 0
    assert [json.loads(ln)["step"] for ln in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]


# ------------------------------------------------------------------------------------------------ the launch

def test_bad_accelerate_configuration_is_one_line(world, tmp_path):
    """What `accelerate launch --config_file X.yaml` hands the trainer (here: a DeepSpeed JSON that is not there)
    fails in the Accelerator: one line, before anything is written. A separate process: accelerate's state is a
    process-wide singleton."""
    out = tmp_path / "out"
    env = dict(os.environ, ACCELERATE_USE_DEEPSPEED="true", ACCELERATE_DEEPSPEED_CONFIG_FILE=str(tmp_path / "no.json"),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "trainers.same_id", *_args(world, out, *_pipe(world))], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.rstrip().splitlines()[-1]
    assert last.startswith("error: could not load the accelerate launch configuration") and "no.json" in last
    assert "configs/accelerate/" in last and not out.exists()


# ------------------------------------------------------------------------------------------------ full disk

def test_disk_full_while_checkpointing_keeps_the_previous_checkpoint(world, tmp_path, capsys, monkeypatch):
    import trainers.checkpoints as checkpoints

    real = checkpoints.save_transformer
    calls = []

    def fills_the_disk(model, state_dict, folder):
        calls.append(folder)
        if len(calls) == 2:  # the second checkpoint: half a file, then ENOSPC
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "diffusion_pytorch_model.safetensors").write_bytes(b"\0" * 1000)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(model, state_dict, folder)

    monkeypatch.setattr(checkpoints, "save_transformer", fills_the_disk)
    out = tmp_path / "out"
    args = _args(world, out, *_pipe(world), "--max-steps", "3", "--checkpointing-steps", "1")
    assert same_id_main(args) == 2
    one_error(capsys, "could not write checkpoint", "checkpoint-0000002", "No space left on device",
              "free disk space", "checkpoint-0000001 is intact: rerun with --resume latest")
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-0000001"]
    assert not (out / "transformer").exists()
    from directanimator.modeling import CueFusionTransformer3DModel

    CueFusionTransformer3DModel.from_pretrained(out / "checkpoints" / "checkpoint-0000001" / "transformer")
    # space again: the run continues from the kept checkpoint
    monkeypatch.setattr(checkpoints, "save_transformer", real)
    assert same_id_main(args + ["--resume", "latest"]) == 0
    assert (out / "transformer" / "config.json").is_file()


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1.6 MB tmpfs (root only; skipped where mounting is not allowed)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if shutil.which("mount") is None or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1600k", "tmpfs", str(mnt)],
                                                       capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_really_full_disk_while_checkpointing(world, tiny_disk, capsys):
    """A real full disk: torch.save says only "unexpected pos ..." (a RuntimeError), safetensors an I/O error."""
    out = tiny_disk / "out"
    assert same_id_main(_args(world, out, *_pipe(world), "--max-steps", "5", "--checkpointing-steps", "1")) == 2
    line = one_error(capsys, "could not write checkpoint", "checkpoint-0000002 (", "free disk space",
                     "checkpoint-0000001 is intact")
    assert "the disk is full" in line or "No space left on device" in line
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-0000001"]
    state = json.loads((out / "checkpoints" / "checkpoint-0000001" / "trainer_state.json").read_text())
    assert state["global_step"] == 1


# ------------------------------------------------------------------------------------------------ precompute

def _real_precomputer(world, cache):
    from trainers.dataset import load_dataset
    from trainers.precompute import Precomputer

    c = load_components(str(world / "pipe"))
    return Precomputer(cache, _settings(), c.vae, c.tokenizer, c.text_encoder), load_dataset(world / "ds").clips


@pytest.mark.parametrize("damage", ["cut short", "emptied", "tensors missing"])
def test_damaged_cache_entries_are_computed_again(world, tmp_path, monkeypatch, damage):
    from safetensors.torch import load_file, save_file

    from trainers.precompute import Precomputer, entry_problem, load_entry

    cache = tmp_path / "cache"
    _fill_cache(world / "ds", cache, world / "pipe")
    pre, clips = _real_precomputer(world, cache)
    target = pre.path_for(pre.sample_key(clips[1]))
    good = {k: v.clone() for k, v in load_entry(target).items()}  # load_entry maps the file it reads
    if damage == "cut short":
        target.write_bytes(target.read_bytes()[:-64])
    elif damage == "emptied":
        target.write_bytes(b"")
    else:
        save_file({"latents": good["latents"]}, target, metadata={"kind": '"sample"', "bucket": "[9, 32, 32]"})
    assert entry_problem(target, "sample") is not None
    made = []

    def compute_sample(self, clip, path, cues_dir=None):  # stands in for cue extraction + encoding
        from trainers.precompute import _atomic_save

        made.append(clip.file_name)
        _atomic_save(good, path, {"kind": "sample", "bucket": [9, 32, 32]})

    monkeypatch.setattr(Precomputer, "compute_sample", compute_sample)
    entries = pre.run(clips)
    assert made == [clips[1].file_name]  # only the damaged entry
    assert entry_problem(target, "sample") is None and len(entries) == 3
    assert all(torch.equal(load_file(target)[k], good[k]) for k in good)


def test_killed_while_writing_a_cache_entry(world, tmp_path, monkeypatch):
    """A kill in the middle of writing an entry (no cleanup runs) leaves a temp file that nothing reads; the next
    run computes that entry again and never trusts the half-written bytes."""
    from trainers.precompute import Precomputer, entry_problem

    cache = tmp_path / "cache"
    _fill_cache(world / "ds", cache, world / "pipe")
    pre, clips = _real_precomputer(world, cache)
    target = pre.path_for(pre.sample_key(clips[0]))
    target.unlink()
    script = f"""
import os, torch, safetensors.torch as st
from trainers import precompute
def dies_half_way(tensors, path, metadata=None):
    st.save_file(tensors, path, metadata=metadata)
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[: len(data) // 2])
    os._exit(9)  # SIGKILL-like: no finally, no except
precompute.save_file = dies_half_way
precompute._atomic_save({{"latents": torch.zeros(3, 4, 4, 4)}}, precompute.Path({str(target)!r}),
                        {{"kind": "sample", "bucket": [9, 32, 32]}})
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 9, proc.stderr[-2000:]
    assert not target.exists()  # only the temp file is left, under another name
    leftovers = [p for p in target.parent.iterdir() if p.name.startswith(f".{target.stem}.")]
    assert len(leftovers) == 1 and entry_problem(leftovers[0], "sample") is not None
    good = {k: torch.zeros(3, 4, 4, 4) for k in ("latents", "pose_latents", "face_latents", "body_mask", "face_mask",
                                                 "image_latents", "prompt_embeds")}
    made = []

    def compute_sample(self, clip, path, cues_dir=None):  # stands in for cue extraction + encoding
        from trainers.precompute import _atomic_save

        made.append(clip.file_name)
        _atomic_save(good, path, {"kind": "sample", "bucket": [9, 32, 32]})

    monkeypatch.setattr(Precomputer, "compute_sample", compute_sample)
    assert len(pre.run(clips)) == 3
    assert made == [clips[0].file_name] and entry_problem(target, "sample") is None


def test_atomic_save_leaves_nothing_when_the_write_fails(tmp_path, monkeypatch):
    from trainers import precompute

    def disk_full(tensors, path, metadata=None):
        Path(path).write_bytes(b"\0" * 100)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(precompute, "save_file", disk_full)
    with pytest.raises(OSError):
        precompute._atomic_save({"x": torch.zeros(2)}, tmp_path / "ab" / "entry.safetensors", {"kind": "sample"})
    assert list((tmp_path / "ab").iterdir()) == []


def test_disk_full_during_precompute_is_one_line(world, tmp_path, capsys, monkeypatch):
    from trainers import precompute

    def disk_full(tensors, path, metadata=None):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def compute_sample(self, clip, path, cues_dir=None):
        precompute._atomic_save({"latents": torch.zeros(1)}, path, {"kind": "sample"})

    monkeypatch.setattr(precompute, "save_file", disk_full)
    monkeypatch.setattr(precompute.Precomputer, "compute_sample", compute_sample)
    out = tmp_path / "out"
    assert same_id_main(_args(world, out, *_pipe(world), cache=tmp_path / "empty_cache")) == 2
    one_error(capsys, "could not write the precompute cache", "No space left on device", "entries already written")
    assert not out.exists()


# ------------------------------------------------------------------------------------------------ other CLIs

def test_other_clis_validate_before_they_write(world, tmp_path, capsys):
    # vae: the run folder only after the dataset passed
    out = tmp_path / "vae"
    assert _cli("vae")(["--hub-dataset", str(tmp_path / "nope"), "--output-dir", str(out)]) == 2
    one_error(capsys, "is neither an existing folder")
    assert not out.exists()
    # reproduce: --out only after the arguments passed
    out = tmp_path / "repro"
    assert _cli("reproduce")(["--out", str(out), "--only", "no_such_config"]) == 2
    one_error(capsys, "--only: unknown configuration(s) ['no_such_config']")
    assert not out.exists()
    # reproduce_eval: a pairs folder without pairs.json, a world without metadata
    main_eval = _cli("reproduce_eval")
    assert main_eval(["model", str(tmp_path), str(world / "ds"), str(world / "pipe"), "none",
                      str(tmp_path / "r.json")]) == 2
    one_error(capsys, "has no pairs.json")
    (tmp_path / "world").mkdir()
    assert main_eval(["pairs", str(tmp_path / "world"), str(tmp_path / "pairs")]) == 2
    one_error(capsys, "has no metadata.jsonl")
    assert not (tmp_path / "pairs").exists() and not (tmp_path / "r.json").exists()


def test_pseudo_refuses_a_damaged_report_before_loading_models(world, run, tmp_path, capsys):
    out = tmp_path / "pseudo"
    out.mkdir()
    (out / "pseudo_report.json").write_text('{"pseudo/x.mp4": {"clip"')
    assert _cli("pseudo")(["--hub-dataset", str(world / "ds"), "--same-id-checkpoint", str(run),
                           "--output-dir", str(out)]) == 2
    one_error(capsys, "pseudo_report.json is unreadable", "delete it")
    assert [p.name for p in out.iterdir()] == ["pseudo_report.json"]

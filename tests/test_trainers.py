"""Both training stages end to end with the real tiny models (CPU, offline).

The cache entries here are written in the precompute format directly (random latents of the right shapes), so the
loop is tested on its own; tests/test_trainers_precompute.py runs the real cue extraction + VAE encoding path.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from test_dataset import _build_hf_cache, _write_clip
from directanimator.tiny import tiny_scheduler, tiny_text_encoder, tiny_tokenizer, tiny_transformer, tiny_vae
from trainers.dataset import load_dataset, write_dataset_card, write_metadata
from directanimator.rope import vision_rotary_embedding
from trainers.batch import pad_batch_frames, prepare_step, run_model
from trainers.components import load_components
from trainers.same2x import main as same2x_main
from trainers.same_id import main as same_id_main
from trainers.precompute import Precomputer, PrecomputeSettings, _atomic_save, load_entry

ROOT = Path(__file__).resolve().parents[1]
FRAMES, SIZE = 9, 32  # 9 frames -> 3 latent frames: exercises the CogVideoX1.5 padding to an even count


def _save_tiny_pipeline(folder: Path) -> None:
    for name, model in (("vae", tiny_vae()), ("text_encoder", tiny_text_encoder()), ("transformer", tiny_transformer())):
        model.save_pretrained(folder / name, safe_serialization=True)
    tiny_tokenizer().save_pretrained(folder / "tokenizer")
    tiny_scheduler().save_pretrained(folder / "scheduler")


def _make_dataset(folder: Path, n: int = 3) -> None:
    rows = []
    for i in range(n):
        _write_clip(folder / f"clips/{i:03d}.mp4", frames=FRAMES, size=SIZE, seed=i)
        _write_clip(folder / f"pseudo/{i:03d}.mp4", frames=FRAMES, size=SIZE, seed=100 + i)
        rows.append({"file_name": f"clips/{i:03d}.mp4", "identity": f"id_{i:04d}", "caption": "a person dancing",
                     "pseudo_driving": [{"file_name": f"pseudo/{i:03d}.mp4", "identity": f"id_{(i + 1) % n:04d}"}]})
    write_metadata(folder, rows)
    write_dataset_card(folder, description="tiny test clips")


def _settings() -> PrecomputeSettings:
    return PrecomputeSettings(num_frames=FRAMES, long_side=SIZE, max_text_length=8, storage_dtype="float32")


def _fill_cache(dataset_dir: Path, cache: Path, pipe_dir: Path, nan_clips=()) -> None:
    """Write every cache entry the loop will look for (real keys), with seeded random content."""
    ds = load_dataset(dataset_dir)
    c = load_components(str(pipe_dir))
    pre = Precomputer(cache, _settings(), c.vae, c.tokenizer, c.text_encoder)
    g = torch.Generator().manual_seed(0)
    f, ch, h = 3, 4, SIZE // 8
    for clip in ds.clips:
        t = {k: torch.randn(f, ch, h, h, generator=g) for k in ("latents", "pose_latents", "face_latents")}
        t["image_latents"] = torch.randn(1, ch, h, h, generator=g)
        t["prompt_embeds"] = torch.randn(8, 16, generator=g)
        t["body_mask"] = torch.rand(f, 1, h, h, generator=g)
        t["face_mask"] = torch.rand(f, 1, h, h, generator=g)
        if clip.index in nan_clips:
            t["latents"][0, 0, 0, 0] = float("nan")
        _atomic_save(t, pre.path_for(pre.sample_key(clip)), {"kind": "sample", "bucket": [FRAMES, SIZE, SIZE]})
        for p in clip.pseudo_driving:
            tp = {k: torch.randn(f, ch, h, h, generator=g) for k in ("pose_latents", "face_latents")}
            _atomic_save(tp, pre.path_for(pre.pseudo_key(clip, p)), {"kind": "pseudo", "bucket": [FRAMES, SIZE, SIZE]})


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("trainers")
    _save_tiny_pipeline(root / "pipe")
    _make_dataset(root / "ds")
    _fill_cache(root / "ds", root / "cache", root / "pipe")
    return root


def _args(world, out, *extra, dataset=None, cache=None):
    return ["--hub-dataset", str(dataset or world / "ds"), "--cache-dir", str(cache or world / "cache"),
            "--num-frames", str(FRAMES), "--long-side", str(SIZE), "--cache-dtype", "float32",
            "--dataloader-num-workers", "0", "--lr-warmup-steps", "1", "--learning-rate", "1e-3",
            "--report-to", "none", "--output-dir", str(out), *extra]


def _losses(out):
    return [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]


def test_same_id_resume_is_exact_then_same2x(world):
    # caption dropout on: its random draws must resume exactly too
    pipe = ["--pretrained", str(world / "pipe"), "--gradient-accumulation-steps", "2", "--caption-dropout", "0.5"]
    full, cut = world / "full", world / "cut"
    assert same_id_main(_args(world, full, *pipe, "--max-steps", "5", "--checkpointing-steps", "2")) == 0
    # "killed" after step 3 (last checkpoint at step 2), then resumed
    assert same_id_main(_args(world, cut, *pipe, "--max-steps", "5", "--checkpointing-steps", "2",
                                 "--stop-at-step", "3")) == 0
    assert same_id_main(_args(world, cut, *pipe, "--max-steps", "5", "--checkpointing-steps", "2",
                                 "--resume", "latest")) == 0
    a, b = _losses(full), _losses(cut)
    assert [r["step"] for r in a] == [1, 2, 3, 4, 5]
    assert [(r["step"], r["loss/denoise"], r["lr"]) for r in a] == [(r["step"], r["loss/denoise"], r["lr"]) for r in b]
    assert len({r["loss/denoise"] for r in a}) == 5
    ckpts = sorted(p.name for p in (full / "checkpoints").iterdir())
    assert ckpts == ["checkpoint-0000002", "checkpoint-0000004", "checkpoint-0000005"]
    state = json.loads((full / "checkpoints/checkpoint-0000005/trainer_state.json").read_text())
    assert state["micro_step"] == 10  # 2 micro-batches per optimizer step, across epochs of 3 batches

    from directanimator.modeling import CueFusionTransformer3DModel

    model = CueFusionTransformer3DModel.from_pretrained(full / "transformer")
    a_final = CueFusionTransformer3DModel.from_pretrained(full / "checkpoints/checkpoint-0000005/transformer")
    for (n1, p1), (_, p2) in zip(model.named_parameters(), a_final.named_parameters()):
        assert torch.equal(p1, p2), n1

    s2 = world / "s2x"
    assert same2x_main(_args(world, s2, "--same-id-checkpoint", str(full), "--align-depth", "2",
                                "--s2x-weight", "0.5", "--max-steps", "3", "--checkpointing-steps", "3",
                                "--use-ema", "--gradient-checkpointing")) == 0
    logs = _losses(s2)
    assert [r["step"] for r in logs] == [1, 2, 3]
    for r in logs:
        assert -1.0 <= r["loss/s2x"] < 0.0
        assert r["loss/total"] == pytest.approx(r["loss/denoise"] + 0.5 * r["loss/s2x"])
    assert (s2 / "checkpoints/checkpoint-0000003/transformer_ema/config.json").is_file()
    assert json.loads((s2 / "training_args.json").read_text())["pretrained"] == str(world / "pipe")


def test_s2x_teacher_gets_no_gradient_and_agrees_with_itself(world):
    torch.manual_seed(0)
    student = tiny_transformer().train()
    teacher = tiny_transformer().eval().requires_grad_(False)
    teacher.load_state_dict(student.state_dict())
    sched = tiny_scheduler()
    item = next(e for e in map(load_entry, sorted((world / "cache").rglob("*.safetensors"))) if "latents" in e)
    batch = pad_batch_frames({k: v[None] for k, v in item.items()}, student.config.patch_size_t)
    step = prepare_step(batch, sched, torch.float32, generator=torch.Generator().manual_seed(1))
    rope = vision_rotary_embedding(student.config, step["latents"].shape[1], *step["latents"].shape[-2:], "cpu")
    from directanimator.losses import s2x_loss

    out = run_model(student, step, batch, "", torch.float32, rope, block=2)
    with torch.no_grad():
        ref = run_model(teacher, step, batch, "", torch.float32, rope, block=2, stop=True)
    assert ref.sample is None
    loss = s2x_loss(out.block_tokens, ref.block_tokens)
    assert loss.item() == pytest.approx(-1.0, abs=1e-5)
    (out.sample.square().mean() + loss).backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())


class _EngineLike(torch.nn.Module):
    """What accelerate hands back under DeepSpeed: a wrapper whose own ``config`` is DeepSpeed's JSON dict and
    whose ``module`` is the model (DeepSpeedEngine's layout; deepspeed itself is not installed for the tests)."""

    def __init__(self, module):
        super().__init__()
        self.module = module
        self.config = {"train_micro_batch_size_per_gpu": 1, "zero_optimization": {"stage": 2}}

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


def test_caption_dropout(world, tmp_path):
    from trainers.batch import drop_captions

    embeds = torch.randn(64, 5, 3)
    empty = torch.zeros(5, 3)
    batch = {"prompt_embeds": embeds, "latents": torch.ones(1)}
    assert drop_captions(batch, empty, 0.0) is batch
    assert torch.equal(drop_captions(batch, empty, 1.0)["prompt_embeds"], torch.zeros(64, 5, 3))
    torch.manual_seed(0)
    mixed = drop_captions(batch, empty, 0.5)["prompt_embeds"]
    dropped = (mixed == 0).all(dim=(1, 2))
    assert 10 < int(dropped.sum()) < 54 and torch.equal(mixed[~dropped], embeds[~dropped])
    # in a run: with every caption dropped the first loss differs from the captioned run's
    pipe = ["--pretrained", str(world / "pipe"), "--max-steps", "1", "--checkpointing-steps", "100"]
    assert same_id_main(_args(world, tmp_path / "cap", *pipe)) == 0
    assert same_id_main(_args(world, tmp_path / "nocap", *pipe, "--caption-dropout", "1")) == 0
    assert _losses(tmp_path / "cap")[0]["loss/denoise"] != _losses(tmp_path / "nocap")[0]["loss/denoise"]
    assert same_id_main(_args(world, tmp_path / "bad", *pipe, "--caption-dropout", "2")) == 2
    assert same_id_main(_args(world, tmp_path / "bad", *pipe, "--max-skipped-clips", "-0.5")) == 2


def test_run_model_reads_the_wrapped_models_config(world):
    """Regression (found on a GPU under ZeRO-2): the engine's dict config has no ``ofs_embed_dim``."""
    model = tiny_transformer().eval()
    item = next(e for e in map(load_entry, sorted((world / "cache").rglob("*.safetensors"))) if "latents" in e)
    batch = pad_batch_frames({k: v[None] for k, v in item.items()}, model.config.patch_size_t)
    step = prepare_step(batch, tiny_scheduler(), torch.float32, generator=torch.Generator().manual_seed(1))
    rope = vision_rotary_embedding(model.config, step["latents"].shape[1], *step["latents"].shape[-2:], "cpu")
    with torch.no_grad():
        direct = run_model(model, step, batch, "", torch.float32, rope).sample
        wrapped = run_model(_EngineLike(model), step, batch, "", torch.float32, rope).sample
    assert torch.equal(direct, wrapped)


def test_zero3_registration_is_lifted_while_models_load():
    """Under ZeRO-3 transformers would build the frozen T5 inside deepspeed.zero.Init (partitioned, never gathered)."""
    pytest.importorskip("deepspeed")
    from types import SimpleNamespace

    from accelerate.utils import DeepSpeedPlugin
    from transformers.integrations import is_deepspeed_zero3_enabled

    from trainers.components import whole_models

    plugin = DeepSpeedPlugin(zero_stage=3, zero3_init_flag=False)
    plugin.set_deepspeed_weakref()  # what accelerate does when it selects the plugin
    accelerator = SimpleNamespace(state=SimpleNamespace(deepspeed_plugin=plugin))
    try:
        assert is_deepspeed_zero3_enabled()
        with whole_models(accelerator):
            assert not is_deepspeed_zero3_enabled()
        assert is_deepspeed_zero3_enabled()
    finally:
        from transformers.integrations import unset_hf_deepspeed_config

        unset_hf_deepspeed_config()


def test_deepspeed_launch_without_gpu_keeps_deepspeed():
    """Regression (found running the DeepSpeed configs on CPU): cpu=True made accelerate drop DeepSpeed silently
    (plain DDP, a vacuous pass), and without a backend every DeepSpeed process believed it was alone."""
    from trainers.trainer import accelerator_placement

    if torch.cuda.is_available() or torch.backends.mps.is_available():
        pytest.skip("the placement only differs on machines without an accelerator")
    assert accelerator_placement({}) == {"cpu": True}
    assert accelerator_placement({"ACCELERATE_USE_DEEPSPEED": "false"}) == {"cpu": True}
    placed = accelerator_placement({"ACCELERATE_USE_DEEPSPEED": "true"})
    assert placed["cpu"] is False
    [handler] = placed["kwargs_handlers"]
    assert handler.to_kwargs()["backend"] == "gloo"  # what accelerate hands to deepspeed.init_distributed


def test_transformer_saves_from_views_into_one_gathered_buffer(tmp_path):
    """Regression (found running ZeRO-3 on CPU): its gathered state dict holds views into one flat buffer."""
    from directanimator.modeling import CueFusionTransformer3DModel
    from trainers.checkpoints import save_transformer

    model = tiny_transformer()
    full = model.state_dict()
    flat = torch.cat([v.reshape(-1) for v in full.values()])
    views, at = {}, 0
    for k, v in full.items():
        views[k] = flat[at:at + v.numel()].view(v.shape)
        at += v.numel()
    save_transformer(model, views, tmp_path / "transformer")
    back = CueFusionTransformer3DModel.from_pretrained(tmp_path / "transformer").state_dict()
    assert back.keys() == full.keys() and all(torch.equal(back[k], full[k]) for k in full)


def test_nan_steps_are_skipped_and_stop_the_run(world, tmp_path, capsys, caplog):
    cache = tmp_path / "cache"
    _fill_cache(world / "ds", cache, world / "pipe", nan_clips={1})
    pipe = ["--pretrained", str(world / "pipe")]
    out = tmp_path / "some_nan"
    assert same_id_main(_args(world, out, *pipe, "--max-steps", "4", "--checkpointing-steps", "2",
                                 "--max-nan-steps", "3", cache=cache)) == 0
    logs = _losses(out)
    assert [r["step"] for r in logs] == [1, 2, 3, 4] and all(r["loss/denoise"] == r["loss/denoise"] for r in logs)
    assert "optimizer step skipped" in caplog.text
    state = json.loads((out / "checkpoints/checkpoint-0000004/trainer_state.json").read_text())
    assert state["micro_step"] > 4  # the poisoned batches were consumed but not stepped on

    all_nan = tmp_path / "cache_nan"
    _fill_cache(world / "ds", all_nan, world / "pipe", nan_clips={0, 1, 2})
    out = tmp_path / "all_nan"
    assert same_id_main(_args(world, out, *pipe, "--max-steps", "4", "--checkpointing-steps", "1",
                                 "--max-nan-steps", "2", cache=all_nan)) == 1
    assert "2 non-finite steps in a row" in capsys.readouterr().err
    assert not (out / "checkpoints").exists() or not any((out / "checkpoints").iterdir())


def test_malformed_dataset_is_one_clear_error(world, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "metadata.jsonl").write_text('{"file_name": "clips/x.mp4"}\n{"identity": "a", "file_name": "y.txt"}\n')
    code = same_id_main(["--hub-dataset", str(bad), "--pretrained", str(world / "pipe"),
                            "--output-dir", str(tmp_path / "out"), "--report-to", "none"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.startswith(f"error: dataset '{bad}' has 3 problem(s)")
    assert "missing file 'clips/x.mp4'" in err and "'identity' is missing" in err and "unsupported extension" in err
    assert not (tmp_path / "out" / "checkpoints").exists()


def test_hub_cache_offline_and_two_process_accelerate_launch(world, tmp_path):
    hub = tmp_path / "hub"
    _build_hf_cache(hub, "someone/tiny-dance", world / "ds")
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(hub), OMP_NUM_THREADS="1",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "trainers.same_id",
           *_args(world, out, "--pretrained", str(world / "pipe"), "--max-steps", "2", "--checkpointing-steps", "2",
                  dataset="someone/tiny-dance")]
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    logs = _losses(out)
    assert [r["step"] for r in logs] == [1, 2]  # one writer, not one per process
    state = out / "checkpoints/checkpoint-0000002/accelerate"
    assert (state / "random_states_0.pkl").is_file() and (state / "random_states_1.pkl").is_file()
    assert (out / "transformer/config.json").is_file()

    # Same2X from the same offline Hub dataset, in this process
    from huggingface_hub import constants

    old = constants.HF_HUB_CACHE
    constants.HF_HUB_CACHE = str(hub)
    try:
        assert same2x_main(_args(world, tmp_path / "s2", "--same-id-checkpoint", str(out), "--align-depth", "1",
                                    "--max-steps", "2", dataset="someone/tiny-dance")) == 0
    finally:
        constants.HF_HUB_CACHE = old
    assert [r["step"] for r in _losses(tmp_path / "s2")] == [1, 2]


def test_deepspeed_zero2_on_cpu_processes_trains_like_plain(world, tmp_path):
    """The ZeRO-2 CPU config really runs DeepSpeed's engine (not a silent fallback) and matches a plain run."""
    pytest.importorskip("deepspeed")
    # DeepSpeed JIT-builds a small C++ op (~1 min, once); the venv's ninja first, as in an activated venv: another
    # ninja version hashes the build commands differently and would rebuild it on every switch
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    steps = ["--pretrained", str(world / "pipe"), "--max-steps", "2", "--checkpointing-steps", "2"]
    out = tmp_path / "zero2"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(ROOT / "configs/accelerate/deepspeed_zero2_cpu.yaml"), "--num_processes", "1",
           "-m", "trainers.same_id", *_args(world, out, *steps)]
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = out / "checkpoints/checkpoint-0000002/accelerate"
    assert (state / "pytorch_model").is_dir() and not (state / "model.safetensors").exists()
    plain = tmp_path / "plain"
    assert same_id_main(_args(world, plain, *steps)) == 0
    assert [r["loss/denoise"] for r in _losses(out)] == [r["loss/denoise"] for r in _losses(plain)]

    from directanimator.modeling import CueFusionTransformer3DModel

    a = CueFusionTransformer3DModel.from_pretrained(out / "transformer").state_dict()
    b = CueFusionTransformer3DModel.from_pretrained(plain / "transformer").state_dict()
    assert all(torch.allclose(a[k], b[k], rtol=0, atol=1e-6) for k in b)


def test_plain_cogvideox_transformer_becomes_cuefusion(tmp_path):
    from diffusers import CogVideoXTransformer3DModel

    from directanimator.modeling import CueFusionTransformer3DModel

    _save_tiny_pipeline(tmp_path)
    base = tiny_transformer(cls=CogVideoXTransformer3DModel)
    base.save_pretrained(tmp_path / "transformer", safe_serialization=True)  # a CogVideoX checkpoint
    c = load_components(str(tmp_path))
    assert isinstance(c.transformer, CueFusionTransformer3DModel)
    assert c.transformer.config.cue_in_channels == c.vae.config.latent_channels
    own = dict(c.transformer.named_parameters())
    for name, p in base.named_parameters():
        assert torch.equal(own[name], p), name

"""A training run folder (the trainers' --output-dir) is a model: its transformer on the base pipeline recorded in
its training_args.json, for DirectAnimatorPipeline.from_pretrained and `animate --model RUN`."""

import json
import shutil

import pytest
import torch

from directanimator.animate import main as animate
from directanimator.errors import InputError
from directanimator.model_folders import resolve_run_folder
from directanimator.pipeline import DirectAnimatorPipeline
from directanimator.tiny import make_tiny_pipeline, tiny_driving_cues, tiny_transformer
from directanimator.video import read_video


def _run_folder(root, base, final_seed=3, checkpoint_seed=4):
    run = root / "run"
    run.mkdir()
    if final_seed is not None:
        tiny_transformer(seed=final_seed).save_pretrained(run / "transformer", safe_serialization=True)
    if checkpoint_seed is not None:
        tiny_transformer(seed=checkpoint_seed).save_pretrained(run / "checkpoints" / "checkpoint-5" / "transformer",
                                                              safe_serialization=True)
    (run / "training_args.json").write_text(json.dumps({"pretrained": str(base), "stage": "same_id"}))
    return run


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_run_and_checkpoint_folders_load_their_transformer_on_the_base(tmp_path):
    base = tmp_path / "base"
    make_tiny_pipeline(base, seed=0)
    run = _run_folder(tmp_path, base)
    assert resolve_run_folder(base) is None and resolve_run_folder(tmp_path / "missing") is None
    assert resolve_run_folder(run) == (str(base), str(run / "transformer"))
    pipe = DirectAnimatorPipeline.from_pretrained(str(run))
    assert _same(pipe.transformer, tiny_transformer(seed=3)) and not _same(pipe.transformer, tiny_transformer(seed=0))
    assert _same(pipe.vae, DirectAnimatorPipeline.from_pretrained(str(base)).vae)
    ckpt = DirectAnimatorPipeline.from_pretrained(str(run / "checkpoints" / "checkpoint-5"))
    assert _same(ckpt.transformer, tiny_transformer(seed=4))
    shutil.rmtree(run / "transformer")  # a run still training: its latest checkpoint
    assert resolve_run_folder(run)[1] == str(run / "checkpoints" / "checkpoint-5" / "transformer")


def test_animate_takes_a_run_folder_and_says_when_its_base_is_gone(tmp_path, capsys):
    base = tmp_path / "base"
    make_tiny_pipeline(base, seed=0)
    run = _run_folder(tmp_path, base)
    tiny_driving_cues(num_frames=5, fps=8.0).save(tmp_path / "cues")
    out = tmp_path / "out.mp4"
    assert animate(["--driving", str(tmp_path / "cues"), "--model", str(run), "--out", str(out), "--steps", "1"]) == 0
    assert read_video(str(out)).frames.shape[0] == 5
    shutil.rmtree(base)
    capsys.readouterr()
    assert animate(["--driving", str(tmp_path / "cues"), "--model", str(run), "--out", str(out), "--steps", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "was trained from the base pipeline" in err[0] and str(base) in err[0]


def test_run_folder_without_weights_or_base_record_is_a_clear_error(tmp_path):
    base = tmp_path / "base"
    run = _run_folder(tmp_path, base, final_seed=None, checkpoint_seed=None)
    with pytest.raises(InputError, match="holds no transformer/ and no checkpoint yet"):
        resolve_run_folder(run)
    tiny_transformer(seed=3).save_pretrained(run / "transformer", safe_serialization=True)
    (run / "training_args.json").write_text(json.dumps({"pretrained": None}))
    with pytest.raises(InputError, match="records no --pretrained base pipeline"):
        DirectAnimatorPipeline.from_pretrained(str(run))


def test_the_app_loads_a_run_folder_typed_as_its_model_folder(tmp_path):
    from ui import generation

    base = tmp_path / "base"
    make_tiny_pipeline(base, seed=0)
    run = _run_folder(tmp_path, base)
    key = generation.load_pipeline(generation.FOLDER_MODEL, str(run), "", "none")
    try:
        assert _same(generation._PIPELINES[key].transformer, tiny_transformer(seed=3))
    finally:
        generation._PIPELINES.clear()
    shutil.rmtree(base)
    with pytest.raises(InputError, match="was trained from the base pipeline"):
        generation.load_pipeline(generation.FOLDER_MODEL, str(run / "checkpoints" / "checkpoint-5"), "", "none")

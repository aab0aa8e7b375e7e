"""Context parallelism (directanimator.parallel) on 2 CPU processes (gloo): with the model's plan, Ulysses attention
gives the single-process output (the model, and the animate CLI as torchrun launches it), each process really holds its share of the text, vision and cue tokens, and an
uneven text length works with ``ulysses_anything``. Ring attention needs a backend that returns the log-sum-exp
(flash, cuDNN: GPU only), so on CPUs only Ulysses can be checked."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, results, folders):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        from diffusers.models._modeling_parallel import ContextParallelConfig

        from directanimator.parallel import enable_context_parallel
        from directanimator.tiny import tiny_forward_inputs, tiny_transformer

        out = {}
        for name, config, text in (("ulysses", ContextParallelConfig(ulysses_degree=world), 8),
                                   ("uneven", ContextParallelConfig(ulysses_degree=world, ulysses_anything=True), 7)):
            model = tiny_transformer(seed=0).eval()
            with torch.no_grad():  # non-zero cue weights: the cue streams must be sharded with their tokens
                g = torch.Generator().manual_seed(1)
                for key, p in model.named_parameters():
                    if key in model.cue_parameter_names():
                        p.copy_(torch.randn(p.shape, generator=g) * 0.3)
            inputs = tiny_forward_inputs(model, batch=2)
            inputs["encoder_hidden_states"] = inputs["encoder_hidden_states"][:, :text]
            with torch.no_grad():
                ref = model(**inputs, return_dict=False)[0]
            enable_context_parallel(model, config)
            seen = {}
            handle = model.transformer_blocks[1].register_forward_pre_hook(
                lambda m, args: seen.update(vision=args[0].shape[1], text=args[1].shape[1],
                                            cue=args[5].shape[2]))
            with torch.no_grad():
                got = model(**inputs, return_dict=False)[0]
            handle.remove()
            out[name] = dict(diff=float((got - ref).abs().max()), scale=float(ref.abs().max()), **seen,
                             text_len=inputs["encoder_hidden_states"].shape[1])
        # the CLI inside the same process group: `torchrun -m directanimator.animate ... --context-parallel`
        from directanimator.animate import main

        out["cli"] = main(["--driving", str(folders / "cues"), "--model", str(folders / "model"), "--out",
                           str(folders / "parallel.mp4"), "--steps", "2", "--device", "cpu", "--context-parallel"])
        results[rank] = out
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed gloo")
def test_context_parallel_on_two_cpu_processes_matches_one_process(tmp_path):
    from directanimator.animate import main
    from directanimator.tiny import make_tiny_pipeline, tiny_driving_cues
    from directanimator.video import read_video

    make_tiny_pipeline(tmp_path / "model")
    tiny_driving_cues(num_frames=9, fps=8.0).save(tmp_path / "cues")
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_worker, args=(2, _free_port(), results, tmp_path), nprocs=2)
        results = dict(results)
    assert results[0]["cli"] == results[1]["cli"] == 0
    assert main(["--driving", str(tmp_path / "cues"), "--model", str(tmp_path / "model"), "--out",
                 str(tmp_path / "one.mp4"), "--steps", "2", "--device", "cpu"]) == 0
    one, two = (read_video(str(tmp_path / f"{n}.mp4")).frames.astype(int) for n in ("one", "parallel"))
    # the same video, within what two identical CLI calls in one process already differ by now and then (up to
    # ~1.6 per pixel on average; reproduced on the main checkout; the mp4 encoder itself is deterministic, the cause
    # is upstream of it and not found yet); the exact comparison is the model's, above
    assert one.shape == two.shape and abs(one - two).mean() < 3, abs(one - two).mean()
    from directanimator.tiny import tiny_forward_inputs, tiny_transformer

    model = tiny_transformer(seed=0)
    inputs = tiny_forward_inputs(model)
    vision = model.patch_embed(inputs["encoder_hidden_states"], inputs["hidden_states"]).shape[1] - 8
    for rank in (0, 1):
        for name in ("ulysses", "uneven"):
            r = results[rank][name]
            assert r["diff"] <= 1e-5 * max(1.0, r["scale"]), (rank, name, r)
            text = r["text_len"] // 2 + (r["text_len"] % 2 if rank == 0 else 0)  # tensor_split: the first gets more
            assert (r["vision"], r["text"], r["cue"]) == (vision // 2, text, vision // 2), (rank, name, r)

"""Benchmark the CF-DiT against the plain CogVideoX transformer (not a test).

    python bench/bench_model.py                 # CPU, mid-size config: forward time ratio, parameter and FLOP overhead
    python bench/bench_model.py --real-size     # CUDA: CogVideoX1.5-5B-I2V size (42 blocks, 3072 dim), random bf16
                                                # weights, 49 frames 512x512: one forward (CF-DiT vs plain) and the
                                                # whole 50-step CFG denoising loop of the pipeline; s/step, peak memory

Both modes time the pipeline's denoising loop twice, with diffusers' ``scheduler.step`` (stock) and with the
sync-free ``directanimator.sampling.SchedulerStepper`` (ours), same seed, and say whether the latents are
bit-identical (on a CPU there is nothing to sync with: the figures there check the code path, not the gain).

Only torch, diffusers, transformers and this repository are needed (no weights, no downloads). The FLOP counts come
from ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and attention) run on the meta device, so they are
exact for the real size even on a CPU; element-wise work (the cue LayerNorm / modulation) is estimated on top.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from diffusers import CogVideoXTransformer3DModel  # noqa: E402
from diffusers.models.embeddings import get_3d_rotary_pos_embed  # noqa: E402

from directanimator.attention import CueFusionAttnProcessor, set_attention_backend  # noqa: E402
from directanimator.modeling import CueFusionTransformer3DModel  # noqa: E402
from directanimator.tiny import base_config  # noqa: E402

# CogVideoX1.5-5B-I2V transformer/config.json (THUDM), cue arguments added
COGVIDEOX15_I2V = dict(
    activation_fn="gelu-approximate", attention_bias=True, attention_head_dim=64, dropout=0.0, flip_sin_to_cos=True,
    freq_shift=0, in_channels=32, max_text_seq_length=226, norm_elementwise_affine=True, norm_eps=1e-5,
    num_attention_heads=48, num_layers=42, ofs_embed_dim=512, out_channels=16, patch_bias=False, patch_size=2,
    patch_size_t=2, sample_frames=81, sample_height=300, sample_width=300, spatial_interpolation_scale=1.875,
    temporal_compression_ratio=4, temporal_interpolation_scale=1.0, text_embed_dim=4096, time_embed_dim=512,
    timestep_activation_fn="silu", use_learned_positional_embeddings=False, use_rotary_positional_embeddings=True,
)
CUE_ARGS = dict(cue_in_channels=16, cue_fusion=True)


def mid_size_config(num_layers: int) -> dict:
    """A CPU-sized 1.5-style config: same structure, 8 heads x 64 (512 wide)."""
    return {**COGVIDEOX15_I2V, "num_attention_heads": 8, "num_layers": num_layers}


def make_inputs(config: dict, batch: int, frames: int, height: int, width: int, device, dtype, cues=True,
                shared: bool = False) -> dict:
    """Random forward inputs as the pipeline builds them (padded latent frames, RoPE, ofs, cue latents + masks).

    ``shared``: the pipeline's CFG layout: one timestep and one set of cues for the whole batch (cond + uncond).
    """
    latents = (frames - 1) // 4 + 1
    p_t = config["patch_size_t"]
    latents += latents % p_t  # CogVideoX1.5 pads to a multiple of patch_size_t
    h, w = height // 8, width // 8
    p = config["patch_size"]
    grid = (h // p, w // p)
    cos, sin = get_3d_rotary_pos_embed(
        embed_dim=config["attention_head_dim"], crops_coords=None, grid_size=grid, temporal_size=latents // p_t,
        grid_type="slice", max_size=(config["sample_height"] // p, config["sample_width"] // p), device="cpu",
    )
    inputs = dict(
        hidden_states=torch.randn(batch, latents, config["in_channels"], h, w, device=device, dtype=dtype),
        encoder_hidden_states=torch.randn(batch, config["max_text_seq_length"], config["text_embed_dim"],
                                          device=device, dtype=dtype),
        timestep=torch.full((1 if shared else batch,), 500, device=device, dtype=torch.long),
        ofs=torch.full((1,), 2.0, device=device, dtype=dtype),
        image_rotary_emb=(cos.to(device), sin.to(device)),
    )
    if cues:
        c = CUE_ARGS["cue_in_channels"]
        cb = 1 if shared else batch
        inputs.update(
            pose_latents=torch.randn(cb, latents, c, h, w, device=device, dtype=dtype),
            body_mask=torch.rand(cb, latents, 1, h, w, device=device, dtype=dtype),
            face_latents=torch.randn(cb, latents, c, h, w, device=device, dtype=dtype),
            face_mask=torch.rand(cb, latents, 1, h, w, device=device, dtype=dtype),
        )
    return inputs


def strip_cues(inputs: dict) -> dict:
    return {k: v for k, v in inputs.items() if k not in ("pose_latents", "body_mask", "face_latents", "face_mask")}


def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def flop_counts(config: dict, batch: int, frames: int, height: int, width: int) -> dict:
    """Matmul/attention FLOPs of one forward of each model, counted on the meta device (no memory, no compute)."""
    from torch.utils.flop_counter import FlopCounterMode

    out = {}
    with torch.device("meta"):
        cf = CueFusionTransformer3DModel(**config)
        base = CogVideoXTransformer3DModel(**base_config(config))
    inputs = make_inputs(config, batch, frames, height, width, "meta", torch.float32)
    for name, model, kwargs in (("cf", cf, inputs), ("base", base, strip_cues(inputs))):
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(**kwargs)
        out[name] = counter.get_total_flops()
    # element-wise cue work per block and cue, per vision token and channel: LayerNorm ~5, modulate 2, gain 1,
    # cue-scale 1, add into the vision tokens 1, gated residual 2 (eq. 3)
    tokens = inputs["hidden_states"].shape[1] // config["patch_size_t"] * (height // 16) * (width // 16)
    dim = config["num_attention_heads"] * config["attention_head_dim"]
    out["cf_elementwise"] = 12 * 2 * config["num_layers"] * batch * tokens * dim
    out["params_cf"] = count_params(cf)
    out["params_base"] = count_params(base)
    return out


def sync(device="cuda"):
    if str(device).startswith("cuda") and torch.cuda.is_available():
        torch.cuda.synchronize()


def peak_gib() -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")


def reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def time_forwards(models: dict, inputs: dict, repeats: int, warmup: int, device) -> dict:
    """Median wall time per model; runs are interleaved so machine noise hits both alike."""
    times = {name: [] for name in models}
    with torch.no_grad():
        for _ in range(warmup):
            for name, (model, kwargs) in models.items():
                model(**kwargs)
        sync(device)
        for _ in range(repeats):
            for name, (model, kwargs) in models.items():
                sync(device)
                t0 = time.perf_counter()
                model(**kwargs)
                sync(device)
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(v) for name, v in times.items()}


def print_flops(f: dict) -> None:
    over = (f["cf"] - f["base"]) / f["base"]
    print(f"  params: base {f['params_base'] / 1e6:,.1f} M, CF-DiT {f['params_cf'] / 1e6:,.1f} M "
          f"(+{(f['params_cf'] - f['params_base']) / 1e6:,.1f} M, +{100 * (f['params_cf'] / f['params_base'] - 1):.2f}%)")
    print(f"  matmul+attention FLOPs/forward: base {f['base'] / 1e12:,.3f} T, CF-DiT {f['cf'] / 1e12:,.3f} T "
          f"(+{100 * over:.3f}%); cue element-wise ~{f['cf_elementwise'] / 1e12:,.4f} T "
          f"(+{100 * f['cf_elementwise'] / f['base']:.3f}%)")


def cpu_bench(args) -> None:
    torch.manual_seed(0)
    config = {**mid_size_config(args.layers), **CUE_ARGS}
    print(f"CPU mid-size: {args.layers} blocks, {config['num_attention_heads'] * 64} wide, batch {args.batch}, "
          f"{args.frames} frames {args.height}x{args.width}, {torch.get_num_threads()} threads")
    cf = CueFusionTransformer3DModel(**config).eval()
    with torch.no_grad():  # trained-looking cue weights (the time does not depend on them)
        for name, p in cf.named_parameters():
            if name in cf.cue_parameter_names():
                p.normal_(0, 0.02)
    base = CogVideoXTransformer3DModel(**base_config(config)).eval()
    base.load_state_dict(cf.state_dict(), strict=False)
    inputs = make_inputs(config, args.batch, args.frames, args.height, args.width, "cpu", torch.float32)
    tokens = inputs["hidden_states"].shape[1] // 2 * (args.height // 16) * (args.width // 16)
    print(f"  vision tokens {tokens} + text {config['max_text_seq_length']}")
    t = time_forwards({"base": (base, strip_cues(inputs)), "cf": (cf, inputs)}, inputs, args.repeats, 1, "cpu")
    print(f"  forward: base {t['base']:.3f} s, CF-DiT {t['cf']:.3f} s, ratio {t['cf'] / t['base']:.3f}x "
          f"(median of {args.repeats}, interleaved)")
    print_flops(flop_counts(config, args.batch, args.frames, args.height, args.width))
    print("real size (CogVideoX1.5-5B-I2V, 49 frames 512x512, CFG batch 2), counted on the meta device:")
    print_flops(flop_counts({**COGVIDEOX15_I2V, **CUE_ARGS}, 2, 49, 512, 512))
    if args.loop_steps > 0:
        # the scheduler's share shows on a small model; on a CPU there is no GPU to sync with, so the ratio shows
        # the step arithmetic only (the discarded first-order sample that ours skips), not the sync savings
        loop_cfg = {**mid_size_config(1), "num_attention_heads": 2, **CUE_ARGS}
        torch.manual_seed(0)
        small = CueFusionTransformer3DModel(**loop_cfg).eval()
        pipe = make_bench_pipeline(small, "cpu", torch.float32)
        print_loops(time_loops(pipe, args.loop_steps, 9, 64, 64, "cpu"),
                    f"{args.loop_steps}-step CFG denoising loop, CPU, a 1-block 128-wide CF-DiT, 9 frames 64x64")


def real_size_bench(args) -> None:
    if args.smoke:  # the same code path on a CPU at toy size, to check the script before spending GPU time
        device, dtype = "cpu", torch.float32
        config = {**COGVIDEOX15_I2V, "num_layers": 2, "num_attention_heads": 2, **CUE_ARGS}
        print(f"SMOKE RUN on CPU (toy size) | torch {torch.__version__}")
    else:
        if not torch.cuda.is_available():
            raise SystemExit("--real-size needs a CUDA GPU")
        device, dtype = "cuda", torch.bfloat16
        config = {**COGVIDEOX15_I2V, **CUE_ARGS}
        print(f"{torch.cuda.get_device_name()} | torch {torch.__version__} | CogVideoX1.5-5B-I2V size, random bf16 "
              f"weights, {args.frames} frames {args.height}x{args.width}, SDPA"
              + (", torch.compile" if args.compile else ""))
    t0 = time.perf_counter()
    torch.manual_seed(0)
    with torch.device(device):
        cf = CueFusionTransformer3DModel(**config)
    cf = cf.to(dtype).eval()
    with torch.no_grad():
        for name, p in cf.named_parameters():
            if name in cf.cue_parameter_names():
                p.normal_(0, 0.02)
    print(f"  built CF-DiT ({count_params(cf) / 1e9:.3f} B params) in {time.perf_counter() - t0:.1f} s")

    inputs = make_inputs(config, 2, args.frames, args.height, args.width, device, dtype, shared=True)
    cf.set_attn_processor(CueFusionAttnProcessor())
    models = {"cf": (cf, inputs)}
    if not args.no_base:
        with torch.device(device):
            base = CogVideoXTransformer3DModel(**base_config(config))
        base = base.to(dtype).eval()
        base.load_state_dict(cf.state_dict(), strict=False)
        # the baseline as diffusers ships it (CogVideoXAttnProcessor2_0, eager), then the same model with our
        # processor so that each attention backend is compared at equal settings
        reset_peak()
        t = time_forwards({"cf": (cf, inputs), "diffusers": (base, strip_cues(inputs))}, inputs, args.repeats, 2,
                          device)
        print(f"  one forward, eager, PyTorch SDPA's own choice (CFG batch 2, shared cues and timestep as in the "
              f"pipeline): CF-DiT {t['cf']:.3f} s, plain diffusers CogVideoX {t['diffusers']:.3f} s, ratio "
              f"{t['cf'] / t['diffusers']:.3f}x; peak memory {peak_gib():.1f} GiB (both models resident)")
        base.set_attn_processor(CueFusionAttnProcessor())
        models["base"] = (base, strip_cues(inputs))
    best = (float("inf"), None)
    for backend in args.attention:
        try:
            for model, _ in models.values():
                set_attention_backend(model, backend)
            t = time_forwards(models, inputs, args.repeats, 2, device)
        except Exception as exc:  # a kernel that does not support this GPU/shape: report and go on
            print(f"  attention {backend}: not usable ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})")
            continue
        line = f"  one forward, eager, attention {backend}: CF-DiT {t['cf']:.3f} s"
        if "base" in t:
            line += f", plain {t['base']:.3f} s, ratio {t['cf'] / t['base']:.3f}x"
        print(line)
        best = min(best, (t["cf"], backend), key=lambda x: x[0])
    backend = best[1] or "native"
    for model, _ in models.values():
        set_attention_backend(model, backend)
    if args.compile:
        # regional compilation (one block compiled, reused 42 times); the warm-up forwards pay the compile
        t0 = time.perf_counter()
        cf.compile_repeated_blocks(fullgraph=True)
        if not args.no_base:
            for block in base.transformer_blocks:
                block.compile(fullgraph=True)
        with torch.no_grad():
            for model, kwargs in models.values():
                model(**kwargs)
        sync(device)
        print(f"  torch.compile (regional, inductor), attention {backend}: first forwards took "
              f"{time.perf_counter() - t0:.1f} s")
        t = time_forwards(models, inputs, args.repeats, 2, device)
        line = f"  one forward, compiled, attention {backend}: CF-DiT {t['cf']:.3f} s"
        if "base" in t:
            line += f", plain {t['base']:.3f} s, ratio {t['cf'] / t['base']:.3f}x"
        print(line)
    if args.profile and torch.cuda.is_available():
        print_profile(cf, inputs)
    models.clear()
    if not args.no_base:
        del base
    if torch.cuda.is_available():
        torch.cuda.empty_cache()

    if args.steps <= 0:
        return
    pipe = make_bench_pipeline(cf, device, dtype)
    print_loops(time_loops(pipe, args.steps, args.frames, args.height, args.width, device),
                f"{args.steps}-step CFG denoising loop, attention {backend}{', compiled' if args.compile else ''} "
                "(pipeline, transformer only; cue/reference encoding with a stand-in VAE)")


def time_loops(pipe, steps: int, frames: int, height: int, width: int, device, warmup_steps: int = 2,
               sync_check_steps: int = 5) -> dict:
    """The pipeline's denoising loop with diffusers' ``scheduler.step`` (stock) and with the sync-free
    ``SchedulerStepper`` (ours), same seed: seconds for the whole loop, per step, whole call, and whether the
    latents are bit-identical.

    Only the first and the last step's callbacks synchronise (a sync every step would hide what the sync-free steps
    gain: the CPU running ahead of the GPU); the loop time is measured from the end of step 1 to the end of the
    last step and scaled to ``steps`` steps. On CUDA, a short untimed run per path counts the host syncs between
    the first and the last step's callbacks with ``torch.cuda.set_sync_debug_mode("warn")``.
    """
    import numpy as np

    rng = np.random.default_rng(0)
    call = dict(
        image=torch.from_numpy(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)),  # no image I/O import
        pose_cue=rng.integers(0, 255, (frames, height, width), dtype=np.uint8),
        face_cue=rng.integers(0, 255, (frames, height, width, 3), dtype=np.uint8),
        body_location=rng.random((frames, height, width), dtype=np.float32),
        face_location=rng.random((frames, height, width), dtype=np.float32),
        prompt="a person dancing", negative_prompt="", guidance_scale=6.0, window_frames=frames, output_type="latent",
    )
    marks, state = [], {"last": steps - 1, "watch": False}

    def on_step(p, i, ts, kw):
        if i == state["last"] and state["watch"]:
            torch.cuda.set_sync_debug_mode(0)
        if i == 0 or i == state["last"]:
            sync(device)
            marks.append(time.perf_counter())
        if i == 0 and state["watch"]:
            # from here to the last step's callback: every host sync inside the loop raises a warning
            torch.cuda.set_sync_debug_mode("warn")
        return {}

    def run(sync_free: bool, n: int, watch: bool = False):
        pipe._sync_free_steps = sync_free
        marks.clear()
        state.update(last=n - 1, watch=watch)
        sync(device)
        reset_peak()
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            latents = pipe(**call, num_inference_steps=n, generator=torch.Generator().manual_seed(0),
                           callback_on_step_end=on_step).frames
        sync(device)
        syncs = sum("synchroniz" in str(w.message) for w in caught)
        return latents, time.perf_counter() - t0, list(marks), syncs

    cuda = str(device).startswith("cuda") and torch.cuda.is_available()
    out = {}
    try:
        for sync_free in (False, True):  # warm-up (allocator, kernels, compiled graphs) for both paths
            run(sync_free, warmup_steps)
        for name, sync_free in (("stock", False), ("ours", True)):
            latents, total, marks_, _ = run(sync_free, steps)
            per_step = (marks_[-1] - marks_[0]) / (steps - 1) if len(marks_) > 1 else total
            out[name] = dict(latents=latents, total=total, per_step=per_step, loop=per_step * steps, peak=peak_gib())
            # a separate, untimed run counts the host syncs of steps 2..N (a warning costs time too)
            out[name]["syncs"] = run(sync_free, sync_check_steps, watch=True)[3] if cuda else None
    finally:
        pipe.__dict__.pop("_sync_free_steps", None)
        if cuda:
            torch.cuda.set_sync_debug_mode(0)
    out["identical"] = torch.equal(out["stock"]["latents"], out["ours"]["latents"])
    out["sync_check_steps"] = sync_check_steps
    return out


def print_loops(t: dict, what: str) -> None:
    stock, ours = t["stock"], t["ours"]
    print(f"  {what}:")
    for name, label in (("stock", "diffusers scheduler.step"), ("ours", "sync-free SchedulerStepper")):
        r = t[name]
        print(f"    {label:<27s} loop {r['loop']:7.2f} s ({r['per_step']:.4f} s/step); whole call {r['total']:.2f} s"
              + ("" if r["peak"] != r["peak"] else f"; peak memory {r['peak']:.1f} GiB"))
    if stock["syncs"] is not None:
        n = t["sync_check_steps"]
        print(f"    host syncs inside steps 2..{n} of a {n}-step loop (torch.cuda.set_sync_debug_mode): "
              f"stock {stock['syncs']}, ours {ours['syncs']}")
    print(f"    ours / stock: loop {ours['loop'] / stock['loop']:.3f}x ({ours['loop'] - stock['loop']:+.2f} s, "
          f"{1e3 * (ours['per_step'] - stock['per_step']):+.1f} ms/step); latents bit-identical: "
          f"{'yes' if t['identical'] else 'NO'}")


def print_profile(model, inputs, top: int = 12) -> None:
    """The GPU kernels that take the time of one forward (torch.profiler), grouped by kind."""
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad():
        model(**inputs)
        sync()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            model(**inputs)
            sync()
    events = [e for e in prof.key_averages() if e.device_time_total > 0]
    total = sum(e.self_device_time_total for e in events)
    print(f"  profile of one forward: {total / 1e3:.1f} ms of GPU kernels; top {top}:")
    for e in sorted(events, key=lambda e: -e.self_device_time_total)[:top]:
        print(f"    {100 * e.self_device_time_total / total:5.1f}%  {e.self_device_time_total / 1e3:7.1f} ms  "
              f"x{e.count:<5d} {e.key[:90]}")


def make_bench_pipeline(transformer, device, dtype):
    """The real pipeline around the real-size transformer, with a small stand-in VAE and T5 (latent channels 16,
    8x spatial / 4x temporal compression, 4096-d text) so only the transformer costs what it costs for real."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDPMScheduler
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    from directanimator.pipeline import DirectAnimatorPipeline

    vae = AutoencoderKLCogVideoX(
        down_block_types=("CogVideoXDownBlock3D",) * 4, up_block_types=("CogVideoXUpBlock3D",) * 4,
        block_out_channels=(8, 8, 8, 8), latent_channels=16, layers_per_block=1, norm_num_groups=2,
        invert_scale_latents=True,
    )
    pieces = "▁abcdefghijklmnopqrstuvwxyz"
    tokenizer = T5Tokenizer(vocab=[("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [(c, -float(i)) for i, c in
                                                                                     enumerate(pieces)], extra_ids=0)
    text_encoder = T5EncoderModel(T5Config(vocab_size=32, d_model=4096, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                                           pad_token_id=0, eos_token_id=1))
    scheduler = CogVideoXDPMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
        prediction_type="v_prediction", rescale_betas_zero_snr=True, set_alpha_to_one=True,
        timestep_spacing="trailing", snr_shift_scale=1.0,
    )
    # eval(): a constructed T5 is in training mode, and its dropout would make every call differ
    pipe = DirectAnimatorPipeline(tokenizer=tokenizer, text_encoder=text_encoder.to(device, dtype).eval(),
                                  vae=vae.to(device, dtype).eval(), transformer=transformer, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def main(argv=None) -> None:
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # "modules kept in float32: []" notes on every .to(dtype)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--real-size", action="store_true", help="CUDA benchmark at CogVideoX1.5-5B-I2V size")
    p.add_argument("--layers", type=int, default=4, help="CPU mode: number of blocks (default 4)")
    p.add_argument("--batch", type=int, default=1, help="CPU mode: batch (default 1)")
    p.add_argument("--frames", type=int, default=None, help="video frames (default: 17 CPU, 49 real size)")
    p.add_argument("--height", type=int, default=None, help="pixels (default: 256 CPU, 512 real size)")
    p.add_argument("--width", type=int, default=None, help="pixels (default: 256 CPU, 512 real size)")
    p.add_argument("--repeats", type=int, default=5, help="timed forwards per model (default 5)")
    p.add_argument("--steps", type=int, default=50, help="real size: denoising steps of the loop (0 = skip)")
    p.add_argument("--loop-steps", type=int, default=50,
                   help="CPU mode: denoising steps of the small-model loop, stock vs sync-free steps (0 = skip)")
    p.add_argument("--no-base", action="store_true", help="real size: skip the plain-model forward")
    p.add_argument("--smoke", action="store_true", help="run the --real-size code path on a CPU at toy size")
    p.add_argument("--attention", default="native",
                   help="real size: comma-separated attention backends to time (diffusers names, e.g. "
                        "native,_native_cudnn,_native_flash); the fastest is used for --compile and the loop")
    p.add_argument("--profile", action="store_true", help="real size: print the top GPU kernels of one forward")
    p.add_argument("--compile", action="store_true",
                   help="real size: torch.compile the transformer blocks (regional) before timing")
    args = p.parse_args(argv)
    args.attention = [a.strip() for a in args.attention.split(",") if a.strip()]
    big = args.real_size or args.smoke
    args.frames = args.frames or (9 if args.smoke else 49 if big else 17)
    args.height = args.height or (64 if args.smoke else 512 if big else 256)
    args.width = args.width or (64 if args.smoke else 512 if big else 256)
    if args.smoke:
        args.steps = min(args.steps, 3)
    (real_size_bench if big else cpu_bench)(args)


if __name__ == "__main__":
    main()

"""The GPU suite: everything GPU-side of issue 18 in one run of at most ~8 minutes on one H100/H200, one table.

    python bench/gpu_suite.py              # CUDA: CogVideoX1.5-5B-I2V size, random bf16 weights, 49 frames 512x512
    python bench/gpu_suite.py --dry-run    # the same code path on a CPU at a tiny config (seconds): check it first

Rows (each one guarded: a failure prints its error in the table and the suite goes on; a row that would start
after ``--budget`` seconds is skipped and says so):

1. the 50-step CFG denoising loop of the real pipeline (transformer at real size, stand-in VAE / T5 as in
   bench/bench_model.py): eager with diffusers' ``scheduler.step``, eager with the sync-free stepper, eager +
   each step cache (directanimator.caching), regional ``torch.compile`` with both steppers, compiled + sync-free +
   first-block cache, FP8 layerwise casting (eager);
2. peak GPU memory of each memory tier (directanimator.memory) over a short loop: resident, model-offload,
   group-offload (block level, CUDA streams), sequential-offload, FP8 resident;
3. host syncs per denoising step (``torch.cuda.set_sync_debug_mode``) of each loop row;
4. one training step at 49x512 (batch 1, gradient checkpointing, AdamW, 8-bit AdamW where bitsandbytes
   imports): same-ID and Same2X (student + the frozen teacher truncated to D = 10 blocks), time and peak memory;
5. the CUDA-only tests (pytest, tiny models).

Expected time on an H200 (estimated, not yet measured): build ~20 s, eager rows ~25 s each, caches ~20 s each,
training ~20 s, tiers ~60 s (sequential offload most of it), compilation ~60-90 s twice (fullgraph, then without it
for the First Block Cache row), FP8 ~15 s, tests ~30 s: about 7 minutes; ``--budget`` (450 s) skips what would
start later.

Times are per loop of ``--steps`` steps (from the end of step 1 to the end of the last step, scaled), so the
one-off costs (compilation, the first step's allocations) are printed apart.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_model import COGVIDEOX15_I2V, CUE_ARGS, make_bench_pipeline, make_inputs  # noqa: E402

from directanimator.caching import count_computations  # noqa: E402
from directanimator.memory import apply_memory_mode, remove_offloading  # noqa: E402
from directanimator.modeling import CueFusionTransformer3DModel  # noqa: E402

CACHES = (("first-block", 0.2), ("taylorseer", 3), ("pab", 2))
ALIGN_DEPTH = 10


class Suite:
    """Rows of one table, a time budget, and the device helpers."""

    def __init__(self, device: str, budget: float):
        self.device = device
        self.cuda = device == "cuda"
        self.budget = budget
        self.start = time.perf_counter()
        self.rows: list[dict] = []

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def reset_peak(self) -> None:
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    def peak(self) -> float:
        return torch.cuda.max_memory_allocated() / 2**30 if self.cuda else float("nan")

    def row(self, section: str, label: str, fn) -> dict | None:
        """Run ``fn() -> dict`` (keys: seconds, per_step, peak, syncs, note) as one table row."""
        if self.elapsed() > self.budget:
            self.rows.append(dict(section=section, label=label, note=f"skipped: past the {self.budget:.0f} s budget"))
            print(f"[{self.elapsed():6.1f} s] {label}: skipped (budget)", flush=True)
            return None
        t0 = time.perf_counter()
        try:
            out = fn() or {}
        except Exception as exc:  # a row that fails on this GPU / software: report it, go on
            traceback.print_exc()
            out = dict(note=f"FAILED {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}")
        out.setdefault("wall", time.perf_counter() - t0)
        self.rows.append(dict(section=section, label=label, **out))
        print(f"[{self.elapsed():6.1f} s] {label}: {_fmt_row(out)}", flush=True)
        return out

    def table(self) -> str:
        head = ("| section | row | loop (s) | s/step | peak GiB | host syncs/step | note |\n"
                "|---|---|---|---|---|---|---|")
        lines = [head]
        for r in self.rows:
            lines.append(f"| {r['section']} | {r['label']} | {_num(r.get('loop'), 2)} | {_num(r.get('per_step'), 4)} "
                         f"| {_num(r.get('peak'), 1)} | {_num(r.get('syncs'), 1)} | {r.get('note', '')} |")
        return "\n".join(lines)


def _num(x, digits: int) -> str:
    if x is None or (isinstance(x, float) and x != x):
        return ""
    return f"{x:.{digits}f}"


def _fmt_row(out: dict) -> str:
    parts = [f"{k} {_num(out[k], 4)}" for k in ("loop", "per_step", "peak", "syncs") if out.get(k) is not None]
    return ", ".join(parts + ([out["note"]] if out.get("note") else []))


def pipeline_call(frames: int, height: int, width: int) -> dict:
    """Random cues and reference as bench/bench_model.py's loop uses them (CFG on: prompt != negative prompt)."""
    rng = np.random.default_rng(0)
    return dict(
        image=torch.from_numpy(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)),
        pose_cue=rng.integers(0, 255, (frames, height, width), dtype=np.uint8),
        face_cue=rng.integers(0, 255, (frames, height, width, 3), dtype=np.uint8),
        body_location=rng.random((frames, height, width), dtype=np.float32),
        face_location=rng.random((frames, height, width), dtype=np.float32),
        prompt="a person dancing", negative_prompt="", guidance_scale=6.0, window_frames=frames, output_type="latent",
    )


def loop(suite: Suite, pipe, call: dict, steps: int, *, sync_free: bool = True, cache=None, setting=None,
         watch_steps: int = 4, count: bool = True, warmup: bool = True) -> dict:
    """Time one ``steps``-step call (marks at the end of step 1 and of the last step), its peak memory, the share
    of block computations skipped (``count``: not with compiled blocks, whose graphs would guard on the counters),
    and, on CUDA, the host syncs per step over a short untimed call."""
    marks, state = [], {"last": steps - 1, "watch": False}

    def on_step(p, i, ts, kw):
        if i == state["last"] and state["watch"]:
            torch.cuda.set_sync_debug_mode(0)
        if i == 0 or i == state["last"]:
            suite.sync()
            marks.append(time.perf_counter())
        if i == 0 and state["watch"]:
            torch.cuda.set_sync_debug_mode("warn")
        return {}

    def run(n: int, watch: bool = False):
        pipe._sync_free_steps = sync_free
        marks.clear()
        state.update(last=n - 1, watch=watch)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with count_computations(pipe.transformer) if count else contextlib.nullcontext() as counts:
                pipe(**call, num_inference_steps=n, generator=torch.Generator().manual_seed(0),
                     callback_on_step_end=on_step, cache=cache, cache_threshold=setting)
        suite.sync()
        return counts, sum("synchroniz" in str(w.message) for w in caught)

    try:
        if warmup:
            run(2)  # allocator, kernels, compiled graphs
        suite.reset_peak()
        t0 = time.perf_counter()
        counts, _ = run(steps)
        total = time.perf_counter() - t0
        per_step = (marks[-1] - marks[0]) / (steps - 1) if len(marks) > 1 else total / steps
        out = dict(loop=per_step * steps, per_step=per_step, peak=suite.peak(), total=total)
        if cache and counts is not None:
            done = counts.attention if cache == "pab" else counts.blocks
            what = "self-attentions" if cache == "pab" else "blocks"
            out["note"] = f"{100 * (1 - done / counts.calls):.0f}% of {what} skipped"
        if suite.cuda and watch_steps > 2:
            _, syncs = run(watch_steps, watch=True)
            out["syncs"] = syncs / (watch_steps - 2)
    finally:
        pipe.__dict__.pop("_sync_free_steps", None)
        if suite.cuda:
            torch.cuda.set_sync_debug_mode(0)
    return out


def tier(suite: Suite, pipe, call: dict, mode: str, steps: int, fp8: bool = False) -> dict:
    """Peak memory and s/step of a short loop in memory tier ``mode`` (the pipeline is put back resident)."""
    pipe.to("cpu")
    if suite.cuda:
        torch.cuda.empty_cache()
    apply_memory_mode(pipe, mode, suite.device, fp8=fp8)
    try:
        return loop(suite, pipe, call, steps, watch_steps=0, warmup=False)  # offload tiers: slow, no warm-up
    finally:
        remove_offloading(pipe, suite.device)


def train_step(suite: Suite, model, config: dict, frames: int, height: int, width: int, dtype, *, same2x: bool,
               eight_bit: bool = False, steps: int = 2) -> dict:
    """One optimiser step of the stage-1 (same-ID) or stage-2 (Same2X) objective at batch 1 with gradient
    checkpointing; the Same2X teacher is a frozen copy of the first ``ALIGN_DEPTH`` blocks."""
    from directanimator.losses import s2x_loss

    depth = min(ALIGN_DEPTH, config["num_layers"])
    model.train().requires_grad_(True)
    model.enable_gradient_checkpointing()
    teacher = None
    if same2x:
        with torch.device("meta"):
            teacher = CueFusionTransformer3DModel(**{**config, "num_layers": depth})
        state = {k: v for k, v in model.state_dict().items()
                 if not k.startswith("transformer_blocks.") or int(k.split(".")[1]) < depth}
        teacher.load_state_dict({k: v.detach().clone() for k, v in state.items()}, assign=True)
        teacher.requires_grad_(False).eval()
    if eight_bit:
        import bitsandbytes as bnb

        opt = bnb.optim.AdamW8bit(model.parameters(), lr=1e-5)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    inputs = make_inputs(config, 1, frames, height, width, suite.device, dtype)
    target = torch.randn_like(inputs["hidden_states"][:, :, : config["out_channels"]])
    times = []
    try:
        for i in range(steps + 1):  # step 0 allocates the optimiser states: not timed
            if i == 1:
                suite.sync()
                peak_before = suite.peak()
                if suite.cuda:
                    torch.cuda.reset_peak_memory_stats()
            suite.sync()
            t0 = time.perf_counter()
            if same2x:
                out = model(**inputs, return_block_tokens=depth)
                with torch.no_grad():
                    ref = teacher(**inputs, return_block_tokens=depth, stop_at_block=True).block_tokens
                loss = torch.nn.functional.mse_loss(out.sample.float(), target.float()) + 0.5 * s2x_loss(
                    out.block_tokens, ref)
            else:
                out = model(**inputs)
                loss = torch.nn.functional.mse_loss(out.sample.float(), target.float())
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            suite.sync()
            times.append(time.perf_counter() - t0)
        teacher_gib = (sum(p.numel() * p.element_size() for p in teacher.parameters()) / 2**30) if teacher else None
        whole_gib = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**30
        note = f"loss {loss.item():.3f}"
        if teacher is not None:
            note += f"; teacher {teacher_gib:.2f} GiB = {teacher_gib / whole_gib:.3f} of the whole model (D={depth})"
        return dict(per_step=float(np.median(times[1:])), peak=max(peak_before, suite.peak()), note=note)
    finally:
        del opt
        model.disable_gradient_checkpointing()
        model.requires_grad_(False).eval()
        for p in model.parameters():
            p.grad = None
        if suite.cuda:
            torch.cuda.empty_cache()


def cuda_tests() -> dict:
    """The CUDA-only tests of the repository (tiny models), run by pytest in a subprocess."""
    tests = ["tests/test_sampling.py::test_cuda_pinned_noise_is_bit_identical_to_diffusers",
             "tests/test_memory.py::test_cuda_group_offload_with_streams_and_fp8",
             "tests/test_caching.py::test_cuda_caches_match_their_cpu_skip_counts"]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *tests],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    last = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
    if proc.returncode:
        print(proc.stdout[-4000:], proc.stderr[-2000:])
    return dict(note=("passed: " if proc.returncode == 0 else "FAILED: ") + last)


def uncompile(model) -> None:
    """Undo ``compile_repeated_blocks`` (nn.Module.compile stores the compiled call in ``_compiled_call_impl``)."""
    for module in model.modules():
        if getattr(module, "_compiled_call_impl", None) is not None:
            module._compiled_call_impl = None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny config, 3 steps: checks the code path")
    p.add_argument("--steps", type=int, default=None, help="denoising steps per loop row (default 50; dry run 3)")
    p.add_argument("--tier-steps", type=int, default=2, help="steps of each memory-tier loop (default 2)")
    p.add_argument("--fp8-steps", type=int, default=10, help="steps of the FP8 loop (default 10; scaled to --steps)")
    p.add_argument("--frames", type=int, default=None, help="frames (default 49; dry run 9)")
    p.add_argument("--size", type=int, default=None, help="height = width in pixels (default 512; dry run 64)")
    p.add_argument("--budget", type=float, default=450.0,
                   help="seconds after which remaining rows are skipped (default 450: the whole run stays under 8 "
                        "minutes on an H100/H200)")
    p.add_argument("--skip", default="", help="comma-separated sections to skip: loop,cache,train,tiers,compile,fp8,"
                                              "tests")
    args = p.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.dry_run:
        device, dtype = "cpu", torch.float32
        config = {**COGVIDEOX15_I2V, "num_layers": 3, "num_attention_heads": 2, **CUE_ARGS}
        steps, frames, size = args.steps or 3, args.frames or 9, args.size or 64
        compile_kwargs = dict(fullgraph=True, backend="eager")  # dynamo capture without a C++ toolchain
        header = f"DRY RUN on CPU (tiny config) | torch {torch.__version__}"
    else:
        if not torch.cuda.is_available():
            print("error: the GPU suite needs a CUDA GPU (use --dry-run to check it on a CPU)", file=sys.stderr)
            return 2
        device, dtype = "cuda", torch.bfloat16
        config = {**COGVIDEOX15_I2V, **CUE_ARGS}
        steps, frames, size = args.steps or 50, args.frames or 49, args.size or 512
        compile_kwargs = dict(fullgraph=True)
        header = (f"{torch.cuda.get_device_name()} | torch {torch.__version__} | CogVideoX1.5-5B-I2V size, random "
                  f"bf16 weights, {frames} frames {size}x{size}, CFG (batch 2), {steps}-step loops")
    if steps < 2:
        print("error: --steps must be at least 2", file=sys.stderr)
        return 2
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    print(header, flush=True)
    suite = Suite(device, args.budget)
    call = pipeline_call(frames, size, size)

    t0 = time.perf_counter()
    torch.manual_seed(0)
    with torch.device(device):
        model = CueFusionTransformer3DModel(**config)
    model = model.to(dtype).eval().requires_grad_(False)
    with torch.no_grad():
        for name, prm in model.named_parameters():
            if name in model.cue_parameter_names():
                prm.normal_(0, 0.02)
    pipe = make_bench_pipeline(model, device, dtype)
    suite.sync()
    params = sum(prm.numel() for prm in model.parameters())
    suite.rows.append(dict(section="build", label=f"CF-DiT {params / 1e9:.3f} B params, random {str(dtype)[6:]}",
                           wall=time.perf_counter() - t0, note=f"built in {time.perf_counter() - t0:.1f} s"))

    if "loop" not in skip:
        suite.row("loop", "eager, diffusers scheduler.step", lambda: loop(suite, pipe, call, steps, sync_free=False))
        suite.row("loop", "eager, sync-free stepper", lambda: loop(suite, pipe, call, steps))
    if "cache" not in skip:
        for name, setting in CACHES:
            suite.row("cache", f"eager, sync-free + {name} {setting}",
                      lambda n=name, s=setting: loop(suite, pipe, call, steps, cache=n, setting=s))
    if "train" not in skip:
        suite.row("train", "same-ID step (bs 1, grad ckpt, AdamW)",
                  lambda: train_step(suite, model, config, frames, size, size, dtype, same2x=False))
        suite.row("train", f"Same2X step (D={ALIGN_DEPTH} teacher, AdamW)",
                  lambda: train_step(suite, model, config, frames, size, size, dtype, same2x=True))
        try:
            import bitsandbytes  # noqa: F401

            have_bnb = device == "cuda"
        except ImportError:
            have_bnb = False
        if have_bnb:
            suite.row("train", "same-ID step (bs 1, grad ckpt, 8-bit AdamW)",
                      lambda: train_step(suite, model, config, frames, size, size, dtype, same2x=False,
                                         eight_bit=True))
        else:
            suite.rows.append(dict(section="train", label="8-bit AdamW", note="skipped: bitsandbytes not importable"
                                   + ("" if device == "cuda" else " / no CUDA")))
    if "tiers" not in skip:
        for mode in ("model-offload", "group-offload", "sequential-offload"):
            if mode != "group-offload" and not suite.cuda:
                suite.rows.append(dict(section="memory", label=mode, note="skipped: needs CUDA"))
                continue
            suite.row("memory", mode + (" (block level, CUDA streams)" if mode == "group-offload" else ""),
                      lambda m=mode: tier(suite, pipe, call, m, args.tier_steps))
    if any(prm.is_meta for prm in model.parameters()):  # an offload tier's hooks did not give the weights back
        suite.rows.append(dict(section="memory", label="weights after the tiers",
                               note="on the meta device: the rows below are skipped"))
        skip |= {"compile", "fp8"}
    if "compile" not in skip:
        def compile_blocks():
            t = time.perf_counter()
            model.compile_repeated_blocks(**compile_kwargs)
            return dict(note=f"compile_repeated_blocks set up in {time.perf_counter() - t:.1f} s; graphs compile "
                             "in the next row's warm-up")

        suite.row("compile", "regional torch.compile", compile_blocks)
        suite.row("compile", "compiled, diffusers scheduler.step",
                  lambda: loop(suite, pipe, call, steps, sync_free=False, count=False))
        suite.row("compile", "compiled, sync-free stepper", lambda: loop(suite, pipe, call, steps, count=False))

        def compiled_cache():
            # First Block Cache decides on the host (a compiler.disable'd .item()): blocks compiled without
            # fullgraph, so the hook's decision is a graph break and the block bodies stay compiled
            uncompile(model)
            model.compile_repeated_blocks(**{**compile_kwargs, "fullgraph": False})
            return loop(suite, pipe, call, steps, cache="first-block", setting=0.2, count=False)

        suite.row("compile", "compiled (no fullgraph), sync-free + first-block 0.2", compiled_cache)
        uncompile(model)
    if "fp8" not in skip:
        def fp8():
            apply_memory_mode(pipe, "resident", device, fp8=True)
            out = loop(suite, pipe, call, max(2, min(args.fp8_steps, steps)))
            out["loop"] = out["per_step"] * steps  # scaled to the other rows' step count
            return out

        suite.row("fp8", "FP8 layerwise casting (e4m3 storage), eager, sync-free", fp8)
    if "tests" not in skip:
        if suite.cuda:
            suite.row("tests", "CUDA-only tests", cuda_tests)
        else:
            suite.rows.append(dict(section="tests", label="CUDA-only tests", note="skipped: no CUDA"))

    print()
    print(header)
    print(f"total {suite.elapsed():.0f} s (budget {args.budget:.0f} s)")
    print(suite.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())

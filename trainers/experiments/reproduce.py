"""Small-scale reproduction of the paper's ablations (Tables 3, 4, 5 and the Same2X speed-up) on the synthetic world.

    python -m trainers.experiments.reproduce --out runs/repro [--preset smoke|small|full] [--seeds 0,1,2] [--jobs 2]
        [--only NAME,...]

One command, resumable: it makes (or reuses) a synthetic world with held-out test identities and motions, trains
every configuration with the project's own trainers (``python -m trainers.same_id`` / ``trainers.same2x`` as
subprocesses, ``OMP_NUM_THREADS=1`` each, up to ``--jobs`` at once), evaluates each trained model cross-ID on the
held-out split against exact ground truth (SSIM, PSNR, L1; ``trainers.experiments.reproduce_eval``) and writes
``OUT/results.md``, ``OUT/results.json`` and PNG plots (``trainers.experiments.reproduce_report``).

What is fixed and why:
- The autoencoder, text encoder, tokenizer and scheduler are the shipped demo model's (``models/demo``): training a
  VAE per configuration would cost more than all the ablations, and the paper's ablations keep the VAE fixed too.
  Each run trains a fresh small CueFusion transformer (``trainers.experiments.make_demo_pipeline.make_transformer``, seeded by
  the run's seed) passed to stage 1 with ``--transformer``; so every run shares one precompute cache per cue setting.
- Stage-1 runs are shared between configurations with the same stage 1 (full method, no-S2X and the D / lambda
  sweeps all start from the same same-ID model of their seed).
- A run counts as finished only when its final ``transformer/`` folder exists (the trainer writes it last, by
  rename), an evaluation when its JSON exists; anything else is (re)started, with ``--resume latest``.
- The default alignment depth D follows the paper's ratio (D=10 of CogVideoX1.5's 42 blocks ~ the first quarter):
  block 1 of our 4-block model; the D sweep covers 1..3 (paper: 10, 20, 30).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from directanimator.files import atomic_folder
from directanimator.errors import InputError, run_cli

ROOT = Path(__file__).resolve().parents[2]  # the checkout: the jobs run `python -m trainers...` from there
BASE_MODEL = ROOT / "models" / "demo"

PRESETS = {
    # seconds-scale: checks the plumbing end to end (used by tests/test_reproduce.py with --only)
    "smoke": dict(identities=4, motions=2, test_identities=2, test_motions=1, frames=9, size=64, layers=2,
                  heads=2, head_dim=32, s1_steps=3, s2_steps=3, batch=2, eval_steps=2, align_depth=1,
                  depths=(2,), lambdas=(0.1, 1.0), smooth=2, checkpoint=1000),
    # the measured run (docs/reproduction): a many-motion world (every train identity dances 6 of 80 motions, so the
    # motion cannot be read off the identity and the model has to follow the cues; measured: a 4-block model's
    # held-out loss with its own cues is ~20% below its loss with no cues by step 2000; on the earlier 9 x 7
    # cross-product world every model ignored the cues: another motion's cues moved the output by 0.4/255)
    "small": dict(identities=44, motions=83, motions_per_identity=6, test_identities=4, test_motions=3, frames=17,
                  size=64, layers=4, heads=4, head_dim=32, s1_steps=2500, s2_steps=300, batch=4, eval_steps=10,
                  align_depth=1, depths=(2, 3), lambdas=(0.1, 1.0), smooth=100, checkpoint=500),
    # for someone with more time (or a lent GPU): the same world at the demo model's depth and lengths
    "full": dict(identities=44, motions=83, motions_per_identity=6, test_identities=4, test_motions=3, frames=17,
                 size=64, layers=6, heads=4, head_dim=32, s1_steps=8000, s2_steps=600, batch=4, eval_steps=25,
                 align_depth=2, depths=(1, 3, 4), lambdas=(0.1, 1.0), smooth=200, checkpoint=1000),
    # world 2, pre-registered in docs/reproduction/preregistration-2.md: 128 px, big faces, references placed away
    # from their clips, OpenPose skeleton arms, model-rendered pseudo drivers; runs in tiers A, B, C
    "claims": dict(identities=28, motions=63, motions_per_identity=5, test_identities=4, test_motions=3, frames=9,
                   size=128, layers=6, heads=4, head_dim=32, s1_steps=2000, s2_steps=600, batch=4, eval_steps=10,
                   align_depth=2, depths=(1, 4), lambdas=(0.1, 1.0), smooth=50, checkpoint=250, face_scale=1.6,
                   reference_jitter=0.3, skeletons=True, claims=True, world_metrics=True, step_cost=0.7,
                   pseudo_steps=10),
    # the same plan at a few steps: checks the whole pre-registered set end to end (tests/test_reproduce.py)
    "claims-smoke": dict(identities=5, motions=3, test_identities=2, test_motions=1, frames=9, size=64, layers=2,
                         heads=2, head_dim=32, s1_steps=2, s2_steps=2, batch=2, eval_steps=2, align_depth=1,
                         depths=(2,), lambdas=(1.0,), smooth=2, checkpoint=1000, face_scale=1.6,
                         reference_jitter=0.3, skeletons=True, claims=True, world_metrics=True, step_cost=0.1,
                         pseudo_steps=2, pseudo_min_iou=0.0, pseudo_appearance=False),  # 2-step models draw no one
}

# stage-1 variants: trainer options (cue switches) and the architecture; "cache" names the precompute variant
STAGE1 = {
    "base": dict(opts=[], arch="cuefusion", cache="default", ablation="none"),
    "no_face": dict(opts=["--drop-cues", "face"], arch="cuefusion", cache="default", ablation="no_face"),
    "rgb_pose": dict(opts=["--pose-cue", "rgb"], arch="cuefusion", cache="rgb", ablation="rgb_pose"),
    "no_lowpass": dict(opts=["--lowpass", "0"], arch="cuefusion", cache="lowpass0", ablation="no_lowpass"),
    "no_location": dict(opts=["--drop-cues", "location"], arch="cuefusion", cache="default",
                        ablation="no_location"),
    "hard_mask": dict(opts=["--grid", "0"], arch="cuefusion", cache="grid0", ablation="hard_mask"),
    "face_in_place": dict(opts=["--face-cue", "in-place"], arch="cuefusion", cache="face_in_place",
                          ablation="face_in_place"),
    "skeleton": dict(opts=["--pose-cue", "skeleton", "--drop-cues", "face,location"], arch="cuefusion",
                     cache="skeleton", ablation="skeleton"),
    "openpose_clean": dict(opts=["--pose-cue", "openpose"], arch="cuefusion", cache="openpose", ablation="openpose"),
    "openpose_noisy": dict(opts=["--pose-cue", "openpose_noisy"], arch="cuefusion", cache="openpose_noisy",
                           ablation="openpose_noisy"),
    "concat": dict(opts=[], arch="concat", cache="default", ablation="none"),
    "cross_attention": dict(opts=[], arch="cross_attention", cache="default", ablation="none"),
}


@dataclass
class Config:
    """One trained configuration: its stage-1 variant and stage-2 settings (None: evaluate stage 1 itself)."""

    name: str
    stage1: str
    s2x_weight: float | None = 0.5
    align_depth: int | None = None
    label: str = ""
    pseudo: str = "world"  # stage-2 pseudo drivers: "world" (perfect renders) or "model" (trainers.pseudo)
    tier: str = "A"  # the pre-registered order (claims presets): all of tier A, then B, then C


def claims_configs(preset: dict) -> list[Config]:
    """The pre-registered set of world 2 (docs/reproduction/preregistration-2.md), in tiers A, B, C."""
    d = preset["align_depth"]
    out = [Config("full", "base", 0.5, d, f"Same2X (D={d}, lambda=0.5), perfect-render pseudo"),
           Config("no_s2x", "base", 0.0, d, "w/o Same2X, perfect-render pseudo"),
           Config("full_mp", "base", 0.5, d, f"Same2X (D={d}), model-rendered pseudo", pseudo="model"),
           Config("no_s2x_mp", "base", 0.0, d, "w/o Same2X, model-rendered pseudo", pseudo="model"),
           Config("stage1_only", "base", None, None, "stage 1 only (same-ID)"),
           Config("openpose_clean", "openpose_clean", 0.5, d, "OpenPose skeleton pose cue, clean"),
           Config("openpose_noisy", "openpose_noisy", 0.5, d, "OpenPose skeleton pose cue, estimator failures")]
    out += [Config("no_face", "no_face", 0.5, d, "w/o face cue", tier="B"),
            Config("no_location", "no_location", 0.5, d, "w/o location cue", tier="B")]
    out += [Config(f"depth_{k}", "base", 0.5, k, f"D={k}", tier="B") for k in preset["depths"]]
    out += [Config(f"lambda_{v:g}", "base", v, d, f"lambda={v:g}", tier="B") for v in preset["lambdas"]]
    out += [Config("concat", "concat", 0.5, d, "DC injection (concat)", tier="B"),
            Config("rgb_pose", "rgb_pose", 0.5, d, "pose cue rgb", tier="C"),
            Config("cross_attention", "cross_attention", 0.5, d, "CA injection (cross-attention)", tier="C")]
    return out


def configs(preset: dict) -> list[Config]:
    """Every configuration of a preset, cheapest-to-share first; injection variants last."""
    if preset.get("claims"):
        return claims_configs(preset)
    d = preset["align_depth"]
    out = [Config("full", "base", 0.5, d, f"Same2X (D={d}, lambda=0.5)"),
           Config("stage1_only", "base", None, None, "stage 1 only (same-ID)"),
           Config("no_s2x", "base", 0.0, d, "w/o Same2X (cross-ID, lambda=0)")]
    out += [Config(f"depth_{k}", "base", 0.5, k, f"D={k}") for k in preset["depths"]]
    out += [Config(f"lambda_{v:g}", "base", v, d, f"lambda={v:g}") for v in preset["lambdas"]]
    labels = {"no_face": "w/o face cue", "rgb_pose": "pose cue rgb", "no_lowpass": "pose cue gray, no low-pass",
              "no_location": "w/o location cue", "hard_mask": "location cue hard mask",
              "concat": "DC injection (concat)", "cross_attention": "CA injection (cross-attention)",
              "face_in_place": "face cue not enlarged/centred", "skeleton": "mask skeleton instead of the triplet"}
    out += [Config(k, k, 0.5, d, labels[k]) for k in labels]
    return out


# ------------------------------------------------------------------------------------------------ jobs


@dataclass
class Job:
    """A subprocess with its finished-marker, dependencies and cost estimate (seconds on one core)."""

    name: str
    cmd: list[str]
    done: Path
    log: Path
    deps: list[str] = field(default_factory=list)
    lock: str | None = None  # jobs sharing a cold precompute variant run one at a time
    warm: Path | None = None  # exists once that precompute is done
    metrics: Path | None = None  # the trainer's metrics.jsonl: its first line means the precompute is done
    cost: float = 10.0
    tier: str = "A"
    proc: subprocess.Popen | None = None
    started: float = 0.0


def _env() -> dict:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1",
               PYTHONHASHSEED="0", TOKENIZERS_PARALLELISM="false")
    return env


def _supports_injection() -> bool:
    import inspect

    from directanimator.modeling import CueFusionTransformer3DModel

    return "cue_injection" in inspect.signature(CueFusionTransformer3DModel.__init__).parameters


def make_world(out: Path, p: dict) -> Path:
    """The synthetic world (reused when its marker matches the preset); captions blanked like the demo model's."""
    world = out / "world"
    marker = world / ".reproduce.json"
    want = {k: p.get(k) for k in ("identities", "motions", "motions_per_identity", "test_identities", "test_motions",
                                  "frames", "size")}
    want.update({k: p[k] for k in ("face_scale", "reference_jitter", "skeletons") if k in p})  # world 2 only
    if marker.is_file() and json.loads(marker.read_text()) == want:
        return world
    cmd = [sys.executable, "-m", "trainers.synthetic", "--out", str(world), "--identities", str(p["identities"]),
           "--motions", str(p["motions"]), "--frames", str(p["frames"]), "--size", str(p["size"]), "--seed", "0",
           "--pseudo-per-clip", "1", "--test-identities", str(p["test_identities"]), "--test-motions",
           str(p["test_motions"]), "--fps", "8", "--overwrite"]
    if p.get("motions_per_identity"):
        cmd += ["--motions-per-identity", str(p["motions_per_identity"])]
    if "face_scale" in p:
        cmd += ["--face-scale", str(p["face_scale"])]
    if "reference_jitter" in p:
        cmd += ["--reference-jitter", str(p["reference_jitter"])]
    if p.get("skeletons"):
        cmd += ["--skeletons"]
    subprocess.run(cmd, check=True, env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL)
    # the demo text encoder is random and its model was trained on empty captions: keep the prompt out of it
    meta = world / "metadata.jsonl"
    rows = [json.loads(line) for line in meta.read_text().splitlines() if line.strip()]
    meta.write_text("".join(json.dumps({**r, "caption": ""}) + "\n" for r in rows))
    marker.write_text(json.dumps(want))
    return world


def make_bare_world(out: Path, world: Path) -> Path:
    """The world without its train clips' pseudo drivers (files hard-linked, else copied): what ``trainers.pseudo``
    renders model pseudo drivers for, so the model-rendered arm trains on those alone. Written once, atomically."""
    import shutil

    bare = out / "world-nopseudo"
    if (bare / "metadata.jsonl").is_file():
        return bare
    rows = [json.loads(line) for line in (world / "metadata.jsonl").read_text().splitlines() if line.strip()]
    with atomic_folder(bare, replaceable=lambda p: True) as tmp:
        for row in rows:
            for rel in [row["file_name"], row.get("reference")] + [q["file_name"] for q in row.get("pseudo_driving", [])]:
                if not rel:
                    continue
                for src in (world / rel, (world / rel).with_suffix(".npz")):
                    dst = tmp / src.relative_to(world)
                    if src.is_file() and not dst.exists():
                        dst.parent.mkdir(parents=True, exist_ok=True)
                        try:
                            os.link(src, dst)
                        except OSError:
                            shutil.copy2(src, dst)
        kept = [{k: v for k, v in r.items() if not (k == "pseudo_driving" and r.get("split") == "train")}
                for r in rows]
        (tmp / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    return bare


def make_init(out: Path, p: dict, arch: str, seed: int) -> Path:
    """A fresh transformer folder for (architecture, seed), written once."""
    import torch

    from directanimator.modeling import CueFusionTransformer3DModel
    from trainers.experiments.make_demo_pipeline import make_transformer

    folder = out / "init" / f"{arch}-s{seed}"
    if (folder / "config.json").is_file():
        return folder
    latent = json.loads((BASE_MODEL / "vae" / "config.json").read_text())["latent_channels"]
    text = json.loads((BASE_MODEL / "transformer" / "config.json").read_text())
    model = make_transformer(latent, p["size"], p["frames"], p["layers"], p["heads"], p["head_dim"],
                             text["text_embed_dim"], text["max_text_seq_length"], seed=seed)
    if arch != "cuefusion":
        torch.manual_seed(seed)
        model = CueFusionTransformer3DModel.from_config({**dict(model.config), "cue_injection": arch})
    with atomic_folder(folder, replaceable=lambda p: True) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
    return folder


def _pair_count(p: dict) -> int:
    return p["test_identities"] * (p["test_identities"] - 1) * p["test_motions"]


def plan(out: Path, p: dict, seeds: list[int], only: set[str] | None, world: Path,
         dry: bool = False) -> tuple[list[Job], list[Config]]:
    """All jobs (stage 1, model pseudo data, stage 2, evaluation) of the selected configurations and seeds, in run
    order: tier by tier (claims presets), within a tier seed by seed. ``dry``: write nothing (no init models)."""
    chosen = [c for c in configs(p) if only is None or c.name in only]
    if only:
        unknown = only - {c.name for c in configs(p)}
        if unknown:
            raise InputError(f"--only: unknown configuration(s) {sorted(unknown)}; known: "
                             f"{', '.join(c.name for c in configs(p))}")
    if not _supports_injection():
        skipped = [c.name for c in chosen if STAGE1[c.stage1]["arch"] != "cuefusion"]
        if skipped:
            print(f"note: the model has no cue_injection option yet; skipping {', '.join(skipped)} "
                  "(re-run later to add them)", flush=True)
        chosen = [c for c in chosen if STAGE1[c.stage1]["arch"] == "cuefusion"]
    cache = out / "cache"
    common = ["--num-frames", str(p["frames"]), "--long-side", str(p["size"]),
              "--cache-dir", str(cache), "--cache-dtype", "float32", "--train-batch-size", str(p["batch"]),
              "--report-to", "none", "--adam-weight-decay", "0", "--checkpointing-steps", str(p["checkpoint"]),
              "--checkpoints-total-limit", "1", "--resume", "latest"]
    step = p.get("step_cost", 0.1)  # core-seconds per stage-1 step (stage 2: x1.3, the frozen teacher's forward)
    n_pairs = _pair_count(p)
    eval_cost = 6 + n_pairs * (0.1 + p["eval_steps"] * step / p["batch"] + (1.5 if p.get("world_metrics") else 0))
    py = [sys.executable, "-m"]
    jobs: dict[str, Job] = {}
    pairs = out / "eval" / "pairs"
    jobs["eval-pairs"] = Job("eval-pairs", py + ["trainers.experiments.reproduce_eval", "pairs", str(world), str(pairs), "--size",
                                                 str(p["size"]), "--num-frames", str(p["frames"])],
                             pairs / "pairs.json", out / "logs" / "eval-pairs.log", cost=3.0 * n_pairs)
    jobs["eval-static"] = Job("eval-static", py + ["trainers.experiments.reproduce_eval", "model", str(pairs), str(world),
                                                   str(BASE_MODEL), "none", str(out / "eval" / "static_reference.json")]
                              + (["--world-metrics"] if p.get("world_metrics") else []),
                              out / "eval" / "static_reference.json", out / "logs" / "eval-static.log",
                              deps=["eval-pairs"], cost=5 + 1.5 * n_pairs * bool(p.get("world_metrics")))
    # the autoencoder's ceiling: the ground truth through the fixed VAE (no transformer can score above it)
    jobs["eval-vae"] = Job("eval-vae", py + ["trainers.experiments.reproduce_eval", "model", str(pairs), str(world),
                                             str(BASE_MODEL), "vae", str(out / "eval" / "vae_ceiling.json")]
                           + (["--world-metrics"] if p.get("world_metrics") else []),
                           out / "eval" / "vae_ceiling.json", out / "logs" / "eval-vae.log",
                           deps=["eval-pairs"], cost=5 + 3.0 * n_pairs * (1 + bool(p.get("world_metrics"))))
    bare = out / "world-nopseudo"
    tiers = sorted({c.tier for c in chosen})
    for tier in tiers:
        for seed in seeds:
            for c in [c for c in chosen if c.tier == tier]:
                s1 = STAGE1[c.stage1]
                s1_name = f"s1-{c.stage1}-s{seed}"
                s1_dir = out / "train" / s1_name
                if s1_name not in jobs:
                    init = (out / "init" / f"{s1['arch']}-s{seed}") if dry else make_init(out, p, s1["arch"], seed)
                    jobs[s1_name] = Job(
                        s1_name, py + ["trainers.same_id", "--hub-dataset", str(world), *common, *s1["opts"],
                                       "--seed", str(seed), "--pretrained", str(BASE_MODEL), "--transformer", str(init),
                                       "--output-dir", str(s1_dir), "--max-steps", str(p["s1_steps"]),
                                       "--learning-rate", "3e-4", "--lr-warmup-steps", str(max(1, p["s1_steps"] // 20)),
                                       "--lr-scheduler", "cosine"],
                        s1_dir / "transformer" / "config.json", out / "logs" / f"{s1_name}.log",
                        lock=f"{s1['cache']}", warm=out / "logs" / f".warm-{s1['cache']}",
                        metrics=s1_dir / "metrics.jsonl", cost=8 + step * p["s1_steps"], tier=tier)
                if c.s2x_weight is None:
                    model_dir, train_job = s1_dir, s1_name
                else:
                    data, deps, lock = world, [s1_name], f"{s1['cache']}-pseudo"
                    if c.pseudo == "model":
                        pseudo_dir = out / "pseudo" / f"s{seed}"
                        pname = f"pseudo-s{seed}"
                        if pname not in jobs:
                            n_clips = (p["identities"] - p["test_identities"]) * (
                                p.get("motions_per_identity") or p["motions"] - p["test_motions"])
                            jobs[pname] = Job(
                                pname, py + ["trainers.pseudo", "--hub-dataset", str(bare), "--same-id-checkpoint",
                                             str(s1_dir), "--pretrained", str(BASE_MODEL), "--output-dir",
                                             str(pseudo_dir), "--per-clip", "1", "--min-mask-iou",
                                             str(p.get("pseudo_min_iou", 0.5)),
                                             *([] if p.get("pseudo_appearance", True) else ["--no-appearance-check"]),
                                             "--num-inference-steps", str(p.get("pseudo_steps", 10)),
                                             "--num-frames", str(p["frames"]), "--long-side", str(p["size"]),
                                             "--seed", str(seed)],
                                pseudo_dir / "metadata.jsonl", out / "logs" / f"{pname}.log", deps=[s1_name],
                                cost=5 + n_clips * (2.5 + p.get("pseudo_steps", 10) * step / p["batch"]), tier=tier)
                        data, deps, lock = pseudo_dir, [s1_name, pname], f"{s1['cache']}-mpseudo-s{seed}"
                    name = f"s2-{c.name}-s{seed}"
                    model_dir, train_job = out / "train" / name, name
                    jobs[name] = Job(
                        name, py + ["trainers.same2x", "--hub-dataset", str(data), *common, *s1["opts"], "--seed",
                                    str(seed), "--same-id-checkpoint", str(s1_dir), "--output-dir", str(model_dir),
                                    "--align-depth", str(c.align_depth), "--s2x-weight", str(c.s2x_weight),
                                    "--max-steps", str(p["s2_steps"]), "--learning-rate", "1e-4",
                                    "--lr-warmup-steps", str(max(1, p["s2_steps"] // 20)), "--lr-scheduler", "cosine"],
                        model_dir / "transformer" / "config.json", out / "logs" / f"{name}.log", deps=deps,
                        lock=lock, warm=out / "logs" / f".warm-{lock}",
                        metrics=model_dir / "metrics.jsonl", cost=8 + 1.3 * step * p["s2_steps"], tier=tier)
                ev = f"eval-{c.name}-s{seed}"
                jobs[ev] = Job(ev, py + ["trainers.experiments.reproduce_eval", "model", str(pairs), str(world),
                                         str(BASE_MODEL), str(model_dir / "transformer"),
                                         str(out / "eval" / f"{c.name}-s{seed}.json"), "--ablation", s1["ablation"],
                                         "--steps", str(p["eval_steps"]), "--seed", "1000"]
                               + (["--world-metrics"] if p.get("world_metrics") else []),
                               out / "eval" / f"{c.name}-s{seed}.json", out / "logs" / f"{ev}.log",
                               deps=[train_job, "eval-pairs"], cost=eval_cost, tier=tier)
    return list(jobs.values()), chosen


def describe_plan(jobs: list[Job], max_jobs: int) -> list[str]:
    """What a run would do (``--dry-run``): every job not finished yet, its tier and estimated cost, and the
    estimated wall time per tier and in all with ``max_jobs`` one-thread jobs at once (the cost model of the
    preset: an estimate, re-calibrated by the ETA of a real run)."""
    lines, by_tier = [], {}
    for j in jobs:
        if j.done.exists():
            lines.append(f"  done  {j.name}")
            continue
        by_tier[j.tier] = by_tier.get(j.tier, 0.0) + j.cost
        lines.append(f"  run   {j.name:32s} tier {j.tier}  ~{_fmt(j.cost)} on one core")
    total = sum(by_tier.values())
    lines += [f"tier {t}: ~{_fmt(c / max_jobs)} wall with --jobs {max_jobs}" for t, c in sorted(by_tier.items())]
    lines.append(f"estimated wall time: ~{_fmt(total / max_jobs)} ({total / 3600:.1f} core-hours, --jobs {max_jobs})")
    return lines


def check_preset(out: Path, name: str, p: dict) -> None:
    """Record the preset in ``out`` on first use; refuse another one (finished runs would be reused wrongly)."""
    marker = out / "preset.json"
    want = {"preset": name, **{k: list(v) if isinstance(v, tuple) else v for k, v in p.items()}}
    if marker.is_file():
        have = json.loads(marker.read_text())
        if have != want:
            raise InputError(f"{out} holds runs of preset {have.get('preset')!r} with other settings; "
                             "use another --out (or delete it) for this preset")
        return
    marker.write_text(json.dumps(want, indent=1))


def _fmt(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def run_jobs(jobs: list[Job], max_jobs: int, log=print, budget_s: float | None = None,
             wall_file: Path | None = None, results_log: Path | None = None) -> dict[str, str]:
    """Run the jobs (skipping finished ones) with at most ``max_jobs`` at once; return {name: status}.

    ``budget_s``: once the wall time of all invocations (kept in ``wall_file``) passes it, the tier being worked
    on is finished and later tiers are not started (status "not run"), as the pre-registration fixes.
    ``results_log``: each finished evaluation's mean metrics are appended there as one JSON line."""
    status = {j.name: "done" for j in jobs if j.done.exists()}
    todo = [j for j in jobs if j.name not in status]
    for j in jobs:
        if j.name in status:
            log(f"skip {j.name} (finished)")
    total_cost = sum(j.cost for j in todo) or 1.0
    done_cost, start, running = 0.0, time.time(), []
    spent = 0.0
    if wall_file is not None and wall_file.is_file():
        spent = float(json.loads(wall_file.read_text()).get("seconds", 0.0))
    last_tick, cut = start, False
    while todo or running:
        now = time.time()
        if wall_file is not None and (now - last_tick > 30 or not (todo or running)):
            wall_file.write_text(json.dumps({"seconds": spent + now - start}))
            last_tick = now
        if budget_s is not None and not cut and spent + now - start > budget_s and (todo or running):
            cut = True
            current = min(j.tier for j in todo + running)
            for j in [j for j in todo if j.tier > current]:
                todo.remove(j)
                status[j.name] = "not run"
            log(f"budget of {_fmt(budget_s)} passed: finishing tier {current}, later tiers not run")
        for j in running:
            if j.warm is not None and j.metrics is not None and j.metrics.is_file() and j.metrics.stat().st_size:
                j.warm.touch()
        for j in list(running):
            rc = j.proc.poll()
            if rc is None:
                continue
            running.remove(j)
            j.proc = None
            ok = rc == 0 and j.done.exists()
            status[j.name] = "done" if ok else "failed"
            done_cost += j.cost
            if ok and j.warm is not None:
                j.warm.touch()
            if ok and results_log is not None and j.name.startswith("eval-") and j.name != "eval-pairs":
                # results appended as they finish (results.md is rewritten at the end of the invocation)
                with open(results_log, "a") as fh:
                    fh.write(json.dumps({"job": j.name, "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
                                         "mean": json.loads(j.done.read_text()).get("mean")}) + "\n")
            elapsed = time.time() - start
            eta = elapsed / max(done_cost, 1e-9) * (total_cost - done_cost)
            log(f"[{time.strftime('%H:%M:%S')}] {'done  ' if ok else 'FAILED'} {j.name} in {_fmt(time.time() - j.started)}"
                f" ({sum(s == 'done' for s in status.values())}/{len(jobs)}; elapsed {_fmt(elapsed)}, ETA {_fmt(eta)})"
                + ("" if ok else f" -- see {j.log}"))
        for j in list(todo):
            if any(status.get(d) == "failed" for d in j.deps):
                todo.remove(j)
                status[j.name] = "failed"
                log(f"skip {j.name}: a dependency failed")
        for j in list(todo):
            if len(running) >= max_jobs:
                break
            if any(status.get(d) != "done" for d in j.deps):
                continue
            # a cold precompute variant is computed by one job; the others wait until it is warm
            if j.lock and not (j.warm and j.warm.exists()) and any(r.lock == j.lock for r in running):
                continue
            todo.remove(j)
            j.log.parent.mkdir(parents=True, exist_ok=True)
            j.started = time.time()
            with open(j.log, "w") as fh:
                j.proc = subprocess.Popen(j.cmd, stdout=fh, stderr=subprocess.STDOUT, env=_env(), cwd=ROOT)
            running.append(j)
            log(f"[{time.strftime('%H:%M:%S')}] start  {j.name}")
        time.sleep(0.5)
    if wall_file is not None:
        wall_file.write_text(json.dumps({"seconds": spent + time.time() - start}))
    return status


def main(argv=None) -> int:
    """CLI entry: plan, run (resumable), report."""
    from trainers.cli_checks import ArgumentParser, check_output_dir, integer_list, number, positive_int

    parser = ArgumentParser(prog="python -m trainers.experiments.reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="work folder (world, runs, evaluations, results.md)")
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS), help="size of everything (default small)")
    parser.add_argument("--seeds", type=integer_list(0, 2**32 - 1), default=[0, 1, 2],
                        help="comma list of seeds (default 0,1,2)")
    parser.add_argument("--jobs", type=positive_int, default=2, help="subprocesses at once, one thread each (default 2)")
    parser.add_argument("--only", default=None, help="comma list of configurations (default: all)")
    parser.add_argument("--report-only", action="store_true", help="only rewrite results.md/json and the plots")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the jobs that would run and the estimated time; write nothing")
    parser.add_argument("--budget-hours", type=number(0, 1000, low_open=True), default=None,
                        help="after this much wall time (all invocations of this --out together) finish the tier "
                             "being run and start no later tier (default: no limit)")
    parser.add_argument("--base-model", default=str(BASE_MODEL),
                        help="pipeline folder whose VAE, text encoder and tokenizer are used (default models/demo); "
                             "keep the same path across re-runs: the precompute cache is keyed by it")
    from directanimator.modeling import resolve_model_folder
    from directanimator.pipeline import check_pipeline_folder
    from trainers.experiments.reproduce_report import write_report

    t0 = time.time()

    def work():
        global BASE_MODEL
        args = parser.parse_args(argv)
        seeds = args.seeds
        out = check_output_dir(args.out, "--out").resolve()
        BASE_MODEL = Path(resolve_model_folder(args.base_model, component="pipeline")).resolve()
        check_pipeline_folder(str(BASE_MODEL))
        p = PRESETS[args.preset]
        only = {s.strip() for s in args.only.split(",") if s.strip()} if args.only else None
        unknown = (only or set()) - {c.name for c in configs(p)}
        if unknown:
            raise InputError(f"--only: unknown configuration(s) {sorted(unknown)}; known: "
                             f"{', '.join(c.name for c in configs(p))}")
        if args.dry_run:
            marker = out / "preset.json"
            if marker.is_file() and json.loads(marker.read_text()).get("preset") != args.preset:
                raise InputError(f"{out} holds runs of another preset; use another --out for this preset")
            jobs, chosen = plan(out, p, seeds, only, out / "world", dry=True)
            print(f"reproduce --dry-run: preset {args.preset}, seeds {seeds}, {len(chosen)} configurations, "
                  f"{len(jobs)} jobs (+ the world and the initial models)", flush=True)
            print("\n".join(describe_plan(jobs, args.jobs)), flush=True)
            return "dry run: nothing written"
        # nothing is written before the arguments have passed
        out.mkdir(parents=True, exist_ok=True)
        check_preset(out, args.preset, p)
        world = make_world(out, p)
        jobs, chosen = plan(out, p, seeds, only, world)
        if any(c.pseudo == "model" for c in chosen):
            make_bare_world(out, world)
        if not args.report_only:
            print(f"reproduce: preset {args.preset}, seeds {seeds}, {len(chosen)} configurations, {len(jobs)} jobs, "
                  f"--jobs {args.jobs}", flush=True)
            status = run_jobs(jobs, args.jobs, log=lambda m: print(m, flush=True),
                              budget_s=None if args.budget_hours is None else args.budget_hours * 3600,
                              wall_file=out / "wall.json", results_log=out / "results.jsonl")
            failed = [k for k, v in status.items() if v == "failed"]
            not_run = [k for k, v in status.items() if v == "not run"]
            if not_run:
                print(f"note: {len(not_run)} job(s) of later tiers not run (budget): {', '.join(not_run[:8])}")
            if failed:
                print(f"warning: {len(failed)} job(s) failed: {', '.join(failed[:8])}", file=sys.stderr)
        try:
            base_name = str(BASE_MODEL.relative_to(ROOT))
        except ValueError:
            base_name = str(BASE_MODEL)
        report = write_report(out, p, args.preset, seeds, chosen,
                              wall_s=None if args.report_only else time.time() - t0, base_model=base_name)
        return f"{report} (wall {_fmt(time.time() - t0)})"

    return run_cli(work)


if __name__ == "__main__":
    sys.exit(main())

"""The pre-registered verdicts of world 2 (docs/reproduction/preregistration-2.md) for ``results.md``.

A difference *counts* only if the seed-paired difference (configuration − reference configuration, same seed) has
the same sign in every seed of the run and its mean exceeds both the reference's seed-to-seed SD and the minimum
effect of the metric; each claim's verdict is read on moving L1 (then mask IoU), as pre-registered.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from trainers.experiments.reproduce_report import _load, _losses, steps_to_reach

__all__ = ["MIN_EFFECT", "HIGHER_IS_BETTER", "counts", "speedups", "claims_section"]

MIN_EFFECT = {"moving_l1": 0.002, "l1": 0.001, "background_l1": 0.001, "ssim": 0.005, "psnr": 0.1, "mask_iou": 0.01}
HIGHER_IS_BETTER = ("ssim", "psnr", "mask_iou")
COLUMNS = (("moving_l1", "moving L1 ↓", 4), ("mask_iou", "mask IoU ↑", 3), ("background_l1", "bg L1 ↓", 4),
           ("ssim", "SSIM ↑", 3), ("psnr", "PSNR ↑", 2), ("l1", "L1 ↓", 4), ("pulse", "pulse", 2))


def _per_seed(out: Path, name: str, seeds) -> dict:
    res = {}
    for s in seeds:
        data = _load(Path(out) / "eval" / f"{name}-s{s}.json")
        if data is not None:
            res[s] = data["mean"]
    return res


def counts(ours: dict, ref: dict, key: str, seeds) -> str:
    """"better" / "worse" / "no difference" of ``ours`` vs ``ref`` ({seed: metrics}) on ``key`` by the
    pre-registered rule; "incomplete" unless both have every seed."""
    if any(s not in ours or s not in ref or key not in ours[s] or key not in ref[s] for s in seeds) or not seeds:
        return "incomplete"
    d = np.array([ours[s][key] - ref[s][key] for s in seeds], np.float64)
    if not np.isfinite(d).all():
        return "incomplete"
    spread = float(np.std([ref[s][key] for s in seeds], ddof=1)) if len(seeds) > 1 else 0.0
    if not ((d > 0).all() or (d < 0).all()) or abs(d.mean()) <= max(spread, MIN_EFFECT.get(key, 0.0)):
        return "no difference"
    return "better" if (d.mean() > 0) == (key in HIGHER_IS_BETTER) else "worse"


def speedups(out: Path, seeds, with_s2x: str, without: str, window: int) -> dict:
    """Per seed: stage-2 steps until the trailing mean (``window``) of the loss reaches the stage-1 level (the mean
    of stage 1's last 10 %), with and without S2X; an arm that never reaches it counts as its last step (censored)."""
    rows = {}
    for s in seeds:
        s1 = _losses(Path(out) / "train" / f"s1-base-s{s}" / "metrics.jsonl")
        a = _losses(Path(out) / "train" / f"s2-{with_s2x}-s{s}" / "metrics.jsonl")
        b = _losses(Path(out) / "train" / f"s2-{without}-s{s}" / "metrics.jsonl")
        if not len(s1) or not len(a) or not len(b):
            continue
        target = float(np.nanmean(s1[-max(1, len(s1) // 10):]))
        w = max(1, min(window, len(a), len(b)))
        sa, sb = steps_to_reach(a, target, w), steps_to_reach(b, target, w)
        rows[s] = {"target": target, "steps_s2x": sa or len(a), "steps_no_s2x": sb or len(b),
                   "censored": [sa is None, sb is None], "speedup": (sb or len(b)) / (sa or len(a))}
    return rows


def _cell(per: dict, key: str, digits: int) -> str:
    vals = [m[key] for m in per.values() if key in m and not math.isnan(m[key])]
    if not vals:
        return "—"
    sd = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
    return f"{np.mean(vals):.{digits}f} ± {sd:.{digits}f}"


def _verdict(worse: str, better: str, d: str) -> str:
    return {"worse": worse, "better": better, "no difference": "not reproduced (no difference)",
            "incomplete": "not run (incomplete)"}[d]


def claims_section(out: Path, preset: dict, seeds, chosen, labels: dict) -> list[str]:
    """The markdown lines of the pre-registered claims: every configuration's metrics, then a verdict per claim."""
    names = [c.name for c in chosen]
    res = {n: _per_seed(out, n, seeds) for n in names}
    static = _load(Path(out) / "eval" / "static_reference.json")
    full = res.get("full", {})
    lines = ["## Pre-registered claims (world 2, docs/reproduction/preregistration-2.md)", "",
             "| setting | tier | " + " | ".join(c[1] for c in COLUMNS) + " | seeds |",
             "|---|---|" + "---|" * len(COLUMNS) + "---|"]
    if static is not None:
        lines.append("| reference held still | — | " + " | ".join(
            f"{static['mean'][k]:.{d}f}" if k in static["mean"] else "—" for k, _, d in COLUMNS) + " | — |")
    for c in chosen:
        per = res[c.name]
        lines.append(f"| {labels.get(c.name, c.name)} | {c.tier} | "
                     + " | ".join(_cell(per, k, d) for k, _, d in COLUMNS) + f" | {len(per)} |")
    lines += ["", "Verdicts (rule: the seed-paired difference has one sign in all seeds and exceeds the reference's "
              "seed SD and the minimum effect " + ", ".join(f"{k} {v:g}" for k, v in MIN_EFFECT.items()) + "):", ""]

    def both(a, b):
        return {k: counts(res.get(a, {}), res.get(b, {}), k, seeds) for k in ("moving_l1", "mask_iou")}

    if "openpose_noisy" in names:
        vs_full, vs_clean = both("openpose_noisy", "full"), both("openpose_noisy", "openpose_clean")
        d1, d2 = vs_full["moving_l1"], vs_clean["moving_l1"]
        if "incomplete" in (d1, d2):
            v = "not run (incomplete)"
        elif d1 == "worse" and d2 == "worse":
            v = "reproduced"
        elif d1 == "better" or d2 in ("better", "no difference"):
            v = "contradicted"
        else:
            v = "not reproduced"
        lines.append(f"- **Fig. 1 (pixel cues vs skeletons)**: {v} — noisy skeleton vs full: moving L1 {d1}, "
                     f"mask IoU {vs_full['mask_iou']}; noisy vs clean skeleton: moving L1 {d2}, mask IoU "
                     f"{vs_clean['mask_iou']}; clean skeleton vs full: moving L1 "
                     f"{counts(res.get('openpose_clean', {}), full, 'moving_l1', seeds)} (no prediction).")
    for n in ("no_face", "no_location", "rgb_pose", "concat", "cross_attention"):
        if n in names:
            d = both(n, "full")
            lines.append(f"- **{labels.get(n, n)}** (predicted worse): "
                         f"{_verdict('reproduced', 'contradicted', d['moving_l1'])} — moving L1 {d['moving_l1']}, "
                         f"mask IoU {d['mask_iou']}.")
    for n in names:
        if n.startswith("depth_"):
            d = both(n, "full")
            deeper = int(n.split("_")[1]) > preset["align_depth"]
            v = (_verdict("reproduced", "contradicted", d["moving_l1"]) if deeper
                 else f"{d['moving_l1']} (no prediction for a shallower D)")
            lines.append(f"- **{labels.get(n, n)}**{' (predicted worse)' if deeper else ''}: {v}.")
        if n.startswith("lambda_"):
            d = both(n, "full")
            ok = d["moving_l1"] in ("no difference", "worse")
            lines.append(f"- **{labels.get(n, n)}** (predicted no difference or worse): "
                         f"{'as predicted' if ok else 'not as predicted' if d['moving_l1'] != 'incomplete' else 'not run'}"
                         f" — moving L1 {d['moving_l1']}.")
    window = preset.get("smooth", 50)
    for arm, (a, b) in {"perfect-render pseudo": ("full", "no_s2x"), "model-rendered pseudo": ("full_mp", "no_s2x_mp")}.items():
        if a not in names or b not in names:
            continue
        rows = speedups(out, seeds, a, b, window)
        sp = [rows[s]["speedup"] for s in seeds if s in rows]
        if len(sp) < len(seeds):
            v = "not run (incomplete)"
        elif all(x > 1.5 for x in sp):
            v = "reproduced"
        elif all(x <= 1.0 for x in sp) and arm.startswith("model"):
            v = "contradicted"
        else:
            v = "not reproduced"
        per = ", ".join(f"seed {s}: {r['steps_s2x']}{'+' if r['censored'][0] else ''} vs "
                        f"{r['steps_no_s2x']}{'+' if r['censored'][1] else ''} steps = {r['speedup']:.2f}×"
                        for s, r in rows.items())
        q = counts(res.get(b, {}), res.get(a, {}), "moving_l1", seeds)
        qv = {"better": "contradicted", "worse": "reproduced", "no difference": "not reproduced",
              "incomplete": "not run"}[q]
        lines.append(f"- **Same2X speed-up, {arm}**: {v} ({per or 'no runs'}; '+' = never reached, censored; "
                     f"paper 6.7×). Equal-step quality, without vs with S2X: moving L1 {q} → {qv}.")
    return lines + [""]

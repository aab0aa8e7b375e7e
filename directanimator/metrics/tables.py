"""Summaries of per-video scores (per dataset and overall) and the markdown tables shaped like the paper's Tables 1
and 2. A metric that could not run shows as "n/a" with its reason below the table, never as a number."""

from __future__ import annotations

import math

from .registry import ESTIMATORS, METRICS, NOT_AVAILABLE, TABLE_COLUMNS, TITLES

__all__ = ["markdown_tables", "summarize"]

_SPECS = {m.key: m for m in METRICS}


def summarize(videos: dict[str, dict], keys, per_set: dict | None = None) -> dict:
    """Mean of each metric over the videos where it ran; the others under ``absent`` with the reason.

    Args:
        videos: ``{name: Evaluator.evaluate_video(...) result}``.
        keys: the metric keys to summarise (in order).
        per_set: ``{key: (value or None, reason)}`` for the metrics computed over the whole set (FID).

    Returns:
        ``{"videos": N, "metrics": {key: {"mean": float, "videos": n}}, "absent": {key: reason}}``; a metric that
        ran on some videos only is summarised over those, with ``videos`` saying how many. PLC/FLC entries also
        say their ``estimator`` (the one of their videos; several joined by "+").
    """
    out = {"videos": len(videos), "metrics": {}, "absent": {}}
    for key in keys:
        if per_set and key in per_set:
            value, reason = per_set[key]
            if value is None:
                out["absent"][key] = reason
            else:
                used = sum(key in v.get("features", {}) for v in videos.values())
                out["metrics"][key] = {"mean": float(value), "videos": used}
            continue
        values = [v["metrics"][key] for v in videos.values() if key in v["metrics"]]
        if values:
            out["metrics"][key] = {"mean": float(sum(values) / len(values)), "videos": len(values)}
            estimators = sorted({v["details"][key]["estimator"] for v in videos.values()
                                 if "estimator" in v.get("details", {}).get(key, {})})
            if estimators:
                out["metrics"][key]["estimator"] = "+".join(estimators)
            continue
        reasons = [v["skipped"][key] for v in videos.values() if key in v["skipped"]]
        if key in NOT_AVAILABLE:
            out["absent"][key] = NOT_AVAILABLE[key]
        elif reasons:
            common = max(set(reasons), key=reasons.count)
            out["absent"][key] = common if len(set(reasons)) == 1 else f"{common} (and other reasons; see videos)"
        else:
            out["absent"][key] = "not computed"
    return out


def _cell(summary: dict, key: str, notes: dict[str, int]) -> str:
    if key in summary["metrics"]:
        entry = summary["metrics"][key]
        spec = _SPECS[key]
        value = entry["mean"] * spec.scale
        text = "inf" if math.isinf(value) else f"{value:.{spec.digits}f}"
        if entry["videos"] < summary["videos"]:
            text += f" ({entry['videos']}/{summary['videos']} videos)"
        return text
    reason = summary["absent"].get(key, "not requested (--metrics)")
    notes.setdefault(reason, len(notes) + 1)
    return f"n/a [{notes[reason]}]"


def markdown_tables(summaries: dict[str, dict], method: str) -> str:
    """The markdown of Table 1 (FID, SSIM, PSNR, LPIPS, L1(E-04), FIS, FTS, FVD), Table 2 (PLC, FLC) and the
    extra moving L1, one row per dataset plus "overall" when there are several.

    Args:
        summaries: ``{dataset: summarize(...)}`` with an ``"overall"`` entry.
        method: the name of the evaluated model (the paper's "Method" column).
    """
    rows = [d for d in summaries if d != "overall"]
    if len(rows) > 1:
        rows.append("overall")
    lines = [f"# Evaluation of {method}", ""]
    notes: dict[str, int] = {}
    for table, title in ((1, "Table 1: image and video quality, identity"), (2, "Table 2: pose and facial landmark "
                                                                            "consistency"), (0, "Not in the paper")):
        cols = TABLE_COLUMNS[table]
        head = ["Dataset", "Videos"] + [TITLES.get(k) or _SPECS[k].title for k in cols]
        lines += [f"## {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in rows:
            s = summaries[row]
            lines.append("| " + " | ".join([row, str(s["videos"])] + [_cell(s, k, notes) for k in cols]) + " |")
        lines.append("")
    overall = summaries.get("overall") or next(iter(summaries.values()))
    used = {k: overall["metrics"][k].get("estimator") for k in ("plc", "flc") if k in overall["metrics"]}
    names = {n: ESTIMATORS.get(n, n) for n in dict.fromkeys("+".join(v for v in used.values() if v).split("+")) if n}
    landmark = "; ".join([f"{k.upper()} from {v}" for k, v in used.items() if v]
                         + [f"{n}: {d}" for n, d in names.items()]) or "not computed"
    lines.append(f"PLC/FLC: normalised landmark distance ({landmark}). LPIPS: v0.1, AlexNet. FID: "
                 "Inception-v3 pool3 over all frames of a dataset (few frames give a biased, high FID). FVD: I3D "
                 "logits of the non-overlapping 16-frame clips, over all clips of a dataset.")
    if notes:
        lines += ["", "Absent metrics:", ""] + [f"[{n}] {reason}" for reason, n in notes.items()]
    return "\n".join(lines) + "\n"

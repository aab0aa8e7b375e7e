"""The dataset folder a prepare run writes: its checks, its settings file, the unfinished marker, and the final
merge of the per-source reports into ``metadata.jsonl``, the dataset card and ``prepare_report.json``.

Layout::

    PREPARING               present while the dataset is being made (trainers.dataset refuses the folder)
    prepare.json            the raw folder and the settings the dataset is made with (a rerun must match them)
    reports/<key>.json      one report per source file, written last for that source (finished = has a report)
    clips/<key>_shotNNN.mp4 the clips, refs/<key>_shotNNN.png their reference frames
    metadata.jsonl          README.md (dataset card)   prepare_report.json (the whole run)  -- written by the merge
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from directanimator.errors import InputError
from directanimator.files import atomic_write_json, atomic_write_text
from trainers.dataset import UNFINISHED_MARKER, validate_dataset, write_dataset_card, write_metadata
from trainers.prepare.clips import REASONS, report_path
from trainers.prepare.sources import Source

__all__ = ["SETTINGS_FILE", "SUMMARY_FILE", "open_output", "read_report", "merge_reports"]

SETTINGS_FILE = "prepare.json"
SUMMARY_FILE = "prepare_report.json"


def _inside(a: Path, b: Path) -> bool:
    return a == b or b in a.parents


def open_output(out: Path, raw_dir: Path, settings: dict) -> Path:
    """Check ``out`` and mark it unfinished; return it resolved.

    ``out`` must be outside ``raw_dir`` (and the other way round), and either new, empty, or a dataset folder an
    earlier prepare run made from the same folder with the same settings (which the run then continues).

    Raises:
        InputError: each of those problems, with what to do.
    """
    out, raw_dir = out.expanduser().resolve(), raw_dir.resolve()
    if _inside(out, raw_dir):
        raise InputError(f"--out {out} is inside RAW_DIR {raw_dir}: its clips would be read as raw footage; "
                         "choose a folder outside RAW_DIR")
    if _inside(raw_dir, out):
        raise InputError(f"RAW_DIR {raw_dir} is inside --out {out}; choose an --out folder outside it")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder")
    wanted = {"raw_dir": str(raw_dir), "settings": settings}
    recorded_path = out / SETTINGS_FILE
    if recorded_path.is_file():
        try:
            recorded = json.loads(recorded_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"--out {out}: {SETTINGS_FILE} is unreadable ({exc}); choose a new --out folder") from None
        if recorded.get("raw_dir") != wanted["raw_dir"]:
            raise InputError(f"--out {out} was prepared from {recorded.get('raw_dir')}, not {raw_dir}; choose a new "
                             "--out folder for another raw folder")
        changed = sorted(k for k in set(settings) | set(recorded.get("settings", {}))
                         if settings.get(k) != recorded.get("settings", {}).get(k))
        if changed:
            raise InputError(f"--out {out} was prepared with other settings ({', '.join(changed)} differ); rerun "
                             "with the same settings to continue it, or choose a new --out folder")
    elif out.is_dir() and any(out.iterdir()):
        raise InputError(f"--out {out} exists and is not a dataset made by trainers.prepare (no {SETTINGS_FILE}); "
                         "choose a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / UNFINISHED_MARKER, "This dataset is being made by `python -m trainers.prepare`; rerun "
                                               "the same command to finish it.\n")
    if not recorded_path.is_file():
        atomic_write_json(recorded_path, wanted)
    return out


def read_report(out: Path, source: Source) -> dict | None:
    """The report of a finished source, or None (not done yet, or a leftover that cannot be read)."""
    path = report_path(out, source)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) and report.get("source") == source.rel else None


def _warnings(rows: list[dict], reports: list[dict], settings: dict) -> list[str]:
    identities = Counter(r["identity"] for r in rows)
    used = [r for r in reports if r.get("rows")]
    out = []
    if len(identities) < 2:
        out.append(f"only one identity has clips ({next(iter(identities))}): the Same2X stage and trainers.pseudo "
                   "pair each clip with OTHER identities; add videos of other people, one sub-folder each "
                   "(RAW_DIR/<identity>/)")
    elif settings.get("identity_from", "folders") == "folders" and all(
            "/" not in r["source"] and r["identity"] == Path(r["source"]).stem for r in used):
        out.append("every identity is a single video directly in RAW_DIR (each such file is an identity of its "
                   "own): if one person is in several of them, trainers.pseudo will pair them with themselves as "
                   "'another identity' for Same2X; put each person's videos in RAW_DIR/<identity>/ or pass "
                   "--identities CSV")
    return out


def _card_sections(summary: dict) -> str:
    lines = ["## How it was made", "",
             f"`python -m trainers.prepare` from {summary['sources']} source video(s) "
             f"({summary['source_seconds'] / 60:.1f} min of footage); settings in `{SETTINGS_FILE}`, every shot's "
             f"fate in `reports/` and `{SUMMARY_FILE}`.", "",
             "## Kept and dropped", "", "| | count |", "|---|---|",
             f"| shots found | {summary['shots']} |",
             f"| candidate clips (a shot longer than --max-seconds gives several) | {summary['candidates']} |",
             f"| clips kept | {summary['clips']} |"]
    lines += [f"| dropped: {reason} | {summary['dropped'].get(reason, 0)} |" for reason in REASONS]
    lines += [f"| unreadable source files | {len(summary['unreadable'])} |",
              f"| other files skipped | {len(summary['skipped_files'])} |"]
    problems = [f"- `{u['file']}`: {u['reason']}" for u in summary["unreadable"] + summary["skipped_files"]]
    if problems:
        lines += ["", "### Files not used", ""] + problems[:200]
        if len(problems) > 200:
            lines.append(f"- ... and {len(problems) - 200} more (see `{SUMMARY_FILE}`)")
    if summary["warnings"]:
        lines += ["", "### Warnings", ""] + [f"- {w}" for w in summary["warnings"]]
    return "\n".join(lines)


def merge_reports(out: Path, sources: list[Source], skipped: list[dict], settings: dict) -> dict | None:
    """When every source has its report: write ``metadata.jsonl`` (clips in source order), the card and
    ``prepare_report.json``, check the folder as the trainers will, and remove the unfinished marker.

    Returns:
        the summary, or None when some sources are not finished yet (nothing is written).

    Raises:
        InputError: no clip was kept at all (the counts of why are in the message; the folder stays unfinished).
    """
    reports = [read_report(out, s) for s in sources]
    if any(r is None for r in reports):
        return None
    rows = [dict(row) for r in reports for row in r.get("rows", [])]
    if settings.get("identity_from") == "cluster":  # one identity per group of alike reference faces
        from trainers.prepare.identities import cluster_identities

        faces = {e["clip"]: e.get("face_embedding") for r in reports for e in r.get("shots", []) if e.get("kept")}
        names = cluster_identities([faces.get(row["file_name"]) for row in rows], settings["cluster_threshold"])
        for row, name in zip(rows, names):
            row["identity"] = name
    dropped = Counter(e["reason"] for r in reports for e in r.get("shots", []) if not e["kept"])
    timing = Counter()
    for r in reports:
        timing.update(r.get("timing", {}))
    summary = {
        "sources": len(sources), "source_seconds": sum(r.get("seconds", 0.0) for r in reports),
        "shots": sum(len({e["shot"] for e in r.get("shots", [])}) for r in reports),
        "candidates": sum(len(r.get("shots", [])) for r in reports), "clips": len(rows),
        "identities": len({r["identity"] for r in rows}), "dropped": dict(sorted(dropped.items())),
        "unreadable": [{"file": r["source"], "reason": r["reason"]} for r in reports if r["status"] == "unreadable"],
        "skipped_files": skipped, "timing": {k: round(v, 3) for k, v in sorted(timing.items())},
        "settings": settings, "warnings": _warnings(rows, reports, settings) if rows else [],
    }
    if not rows:
        why = ", ".join(f"{n} {reason}" for reason, n in dropped.most_common()) or "no shot found"
        bad = f", {len(summary['unreadable'])} unreadable source(s)" if summary["unreadable"] else ""
        raise InputError(f"no clip was kept from the {len(sources)} source video(s) (shots dropped: {why}{bad}); "
                         f"see {out / 'reports'} for each source, and check the videos show one person moving "
                         "for at least --min-seconds")
    write_metadata(out, rows)
    atomic_write_json(out / SUMMARY_FILE, summary)
    write_dataset_card(out, pretty_name="DirectAnimator clips prepared from raw footage",
                       description="Clips cut from raw videos by `python -m trainers.prepare`: one shot each, one "
                                   "main person in view, trimmed and resampled, with a reference frame.",
                       num_clips=len(rows), num_identities=summary["identities"], num_pseudo=0,
                       extra_sections=_card_sections(summary))
    marker = (out / UNFINISHED_MARKER).read_text(encoding="utf-8")
    (out / UNFINISHED_MARKER).unlink(missing_ok=True)
    try:
        validate_dataset(out, check_readable=False)
    except InputError:
        atomic_write_text(out / UNFINISHED_MARKER, marker)  # never a finished-looking folder the trainers refuse
        raise
    return summary

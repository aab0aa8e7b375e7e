"""Loss curves of training runs as one PNG, from the trainers' ``metrics.jsonl`` logs (plain or gzipped).

    python -m trainers.plot_metrics OUT.png runs/x/same_id/metrics.jsonl runs/x/same2x/metrics.jsonl [--smooth 100]

One panel per log; every ``loss*`` / ``l1`` key of the log is drawn, raw (faint) and as a trailing mean. Used by
``scripts/make_demo_model.sh`` for ``models/demo/training/loss_curves.png``.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import numpy as np

from directanimator.errors import InputError, run_cli


def read_log(path: str | Path) -> list[dict]:
    """The JSON lines of a metrics log (``.gz`` read transparently); InputError when missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such metrics log (the trainers write OUTPUT_DIR/metrics.jsonl)")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a JSON-lines metrics log ({exc})") from None
    if not rows:
        raise InputError(f"{path}: the log is empty")
    return rows


def trailing_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each step (shorter at the start)."""
    c = np.cumsum(np.concatenate([[0.0], x]))
    idx = np.arange(1, len(x) + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


def _title(path: Path) -> str:
    name = path.name.replace(".gz", "").replace(".jsonl", "")
    return path.parent.name if name == "metrics" else name


def plot_logs(out: str | Path, logs: list[str | Path], smooth: int = 100) -> Path:
    """Write the PNG; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not logs:
        raise InputError("give at least one metrics log")
    fig, axes = plt.subplots(1, len(logs), figsize=(5.0 * len(logs), 3.6), squeeze=False)
    for ax, log in zip(axes[0], logs):
        rows = read_log(log)
        keys = [k for k in rows[0] if k.startswith("loss") or k == "l1"]
        keys = [k for k in keys if k != "loss/total" or len(keys) == 1]
        steps = np.array([r.get("step", i + 1) for i, r in enumerate(rows)], dtype=float)
        for key in keys:
            vals = np.array([r.get(key, np.nan) for r in rows], dtype=float)
            ok = np.isfinite(vals)
            if not ok.any():
                continue
            line = ax.plot(steps[ok], vals[ok], alpha=0.2, linewidth=0.6)[0]
            ax.plot(steps[ok], trailing_mean(vals[ok], max(1, smooth)), color=line.get_color(), linewidth=1.6,
                    label=f"{key} (mean of {smooth})")
        ax.set_title(_title(Path(log)))
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv=None) -> int:
    from trainers.cli_checks import ArgumentParser, positive_int

    parser = ArgumentParser(prog="python -m trainers.plot_metrics", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="PNG to write")
    parser.add_argument("logs", nargs="+", help="metrics.jsonl (or .jsonl.gz) files, one panel each")
    parser.add_argument("--smooth", type=positive_int, default=100, help="trailing-mean window in steps (default 100)")

    def work():
        args = parser.parse_args(argv)
        return plot_logs(args.out, args.logs, args.smooth)

    return run_cli(work, done="wrote {}")


if __name__ == "__main__":
    sys.exit(main())

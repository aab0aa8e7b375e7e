"""trainers.plot_metrics: loss-curve PNGs from the trainers' JSON-lines logs (plain and gzipped)."""

import gzip
import json

import numpy as np
from PIL import Image

from trainers.plot_metrics import main, plot_logs, read_log


def _log(path, n, keys, gz=False):
    rows = [{"step": i + 1, **{k: float(np.exp(-i / 50) + 0.01 * (i % 7)) for k in keys}, "lr": 1e-4}
            for i in range(n)]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def test_plot_writes_one_panel_per_log(tmp_path):
    a = _log(tmp_path / "metrics.jsonl", 300, ["loss/denoise", "loss/total"])
    b = _log(tmp_path / "same2x_metrics.jsonl.gz", 120, ["loss/denoise", "loss/s2x", "loss/total"], gz=True)
    assert read_log(b)[5]["step"] == 6
    out = plot_logs(tmp_path / "curves.png", [a, b], smooth=20)
    one = plot_logs(tmp_path / "one.png", [a], smooth=20)
    w2, h2 = Image.open(out).size
    w1, h1 = Image.open(one).size
    assert h1 == h2 and w2 > 1.8 * w1  # a panel per log, side by side


def test_cli_errors_name_the_file(tmp_path, capsys):
    assert main([str(tmp_path / "x.png"), str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl: no such metrics log" in capsys.readouterr().err
    (tmp_path / "empty.jsonl").write_text("")
    assert main([str(tmp_path / "x.png"), str(tmp_path / "empty.jsonl")]) == 2
    (tmp_path / "bad.jsonl").write_text("not json\n")
    assert main([str(tmp_path / "x.png"), str(tmp_path / "bad.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "empty" in err and "not a JSON-lines metrics log" in err and "Traceback" not in err

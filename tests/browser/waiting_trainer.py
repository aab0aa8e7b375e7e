"""Stands in for ``trainers.same_id`` in the app tests of training runs: takes the trainer CLI's arguments, writes a
metrics line and a log line into ``--output-dir`` and waits (60 s at most) until it is stopped, so a test sees a run
that is going whatever the real trainer does with its input."""

import argparse
import json
import time
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--output-dir", required=True)
args, _ = parser.parse_known_args()
out = Path(args.output_dir)
(out / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss/denoise": 0.5}) + "\n")
print(f"waiting in {out.resolve()}", flush=True)
time.sleep(60)

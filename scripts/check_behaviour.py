"""Behaviour check for refactors: record the outputs of a fixed set of deterministic runs, later compare bit for bit.

    python scripts/check_behaviour.py record [DIR]     # before the refactor (DIR default runs/behaviour)
    python scripts/check_behaviour.py compare [DIR]    # after it: exit 0 when every output is identical, else 1

What it records (CPU only, one thread, fixed seeds; about 30 s for each call on 2 busy cores):

- ``cues/*``: every array of the ``DrivingCues`` from ``extract_cues`` on the example clips (reference, masks,
  driving frames, pose cue, face cue, body/face location, face boxes, dropped/no-face flags, fps, the transform as
  ``[scale, tx, ty]``): astronaut + walk and the synthetic pair (17 frames each) with the default settings, the
  synthetic pair with non-default lowpass / face_enlarge / grid, one ``rebuild_cues`` of it with edits (settings,
  scale, a removed face box), and the world pair at 64 px (the pipeline's input); plus ``cues.json`` as
  ``DrivingCues.save`` writes it (timings left out) and the sha256 of the saved ``cues.safetensors``;
- ``pipeline/demo``: the embedded demo model (``models/demo``) animating the world pair, 4 steps, seed 0,
  ``output_type="np"``; ``pipeline/tiny``: the random-weights pipeline of ``directanimator/tiny.py`` on
  ``tiny_driving_cues()``, 3 steps;
- ``dataset/synthetic``: the sha256 of every file of a tiny ``python -m trainers.synthetic`` dataset;
- ``train/same_id``, ``train/same2x``: the first 20 logged steps (every loss, lr and grad norm of
  ``metrics.jsonl``) and the final transformer weights of a tiny same-ID run and of a Same2X run from it, through
  the real CLIs (``python -m trainers.same_id`` / ``trainers.same2x`` in subprocesses, with the real cue
  extraction + VAE precompute) on that dataset; and the precompute cache they used (every tensor, and each
  entry's key and metadata: a changed key means existing caches are silently recomputed).

DIR holds ``manifest.json`` (the options, the environment, each array's sha256, dtype and shape, the loss lists,
the JSON values) and one ``<group>__<run>.safetensors`` per run with the arrays themselves, so ``compare`` can
say how much and where something changed; ``DIR/work`` is scratch space, rebuilt by each call (the stderr of each
run goes to ``DIR/work/<group>__<run>.stderr.log``). ``compare`` reruns everything with the recorded options and
prints one line per item (``identical``, ``DIFFERS: max abs diff X, N of M elements``, ``DIFFERS at <json
path>``, or ``DIFFERS: the run failed: ...``; model weights and cache tensors one line per run) and a
``SUMMARY`` line; exit status 0 when all are identical, 1 otherwise.

In a refactor: ``record`` on the commit before it, then ``compare`` after each step; a ``DIFFERS`` line names the
output whose behaviour changed. If a refactor changes how an API this script calls is spelt (say, cue settings
passed as one object), change the call here, never the recording. Results are exact on one machine and one set
of library versions (the manifest notes them; ``compare`` says when they changed); another CPU, torch or ffmpeg
may legitimately change low bits, so record and compare on the same machine. ``record --only cues,pipeline``
(groups among cues, pipeline, dataset, train) and ``--frames N`` make a quicker check; ``compare`` always reruns
what ``record`` ran.
"""

from __future__ import annotations

import os

# Before numpy/torch load: one thread everywhere (results do not depend on thread timing), CPU only, offline.
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ["PYTHONHASHSEED"] = "0"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ["TQDM_DISABLE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse  # noqa: E402
import contextlib  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GROUPS = ("cues", "pipeline", "dataset", "train")
MANIFEST = "manifest.json"
FORMAT = "directanimator-behaviour-check"
DEFAULT_FRAMES = 17
TRAIN_STEPS = 20
AGGREGATED = ("weights/", "cache/")  # compare prints one line for each of these groups of tensors
CUE_ARRAYS = ("reference", "reference_mask", "driving", "driving_masks", "pose_cue", "face_cue", "body_location",
              "face_location", "face_boxes", "dropped", "no_face")
# The example pairs (paths relative to the repository root, as cues.json records them).
WALK = ("examples/reference_astronaut.jpg", "examples/driving_walk.mp4")
SYNTHETIC = ("examples/reference_synthetic.png", "examples/driving_synthetic.mp4")
WORLD = ("examples/reference_world.png", "examples/driving_world.mp4")
# The tiny training world: 4 identities x 2 motions of 9 frames at 64 px (3 train clips, one held-out identity).
DATASET_ARGS = ["--identities", "4", "--motions", "2", "--frames", "9", "--size", "64", "--seed", "0",
                "--pseudo-per-clip", "1", "--test-identities", "1", "--test-motions", "1"]
TRAIN_ARGS = ["--num-frames", "9", "--long-side", "64", "--dataloader-num-workers", "0", "--report-to", "none",
              "--seed", "0", "--max-steps", str(TRAIN_STEPS), "--checkpointing-steps", str(TRAIN_STEPS),
              "--lr-warmup-steps", "2", "--learning-rate", "1e-3", "--caption-dropout", "0.3",
              "--gradient-accumulation-steps", "2"]


def log(msg: str) -> None:
    print(msg, flush=True)


# ----------------------------------------------------------------------------------------------------------------
# the runs: each returns (arrays {name: ndarray}, json values {name: JSON-able})


def _torch_setup():
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    return torch


def _cue_items(cues) -> tuple[dict, dict]:
    """Every array of ``cues`` and what ``DrivingCues.save`` writes (cues.json without timings, the safetensors'
    sha256)."""
    import tempfile

    arrays = {name: np.asarray(getattr(cues, name)) for name in CUE_ARRAYS}
    t = cues.transform
    arrays["transform"] = np.array([t.scale, t.tx, t.ty], dtype=np.float64)
    arrays["fps"] = np.array([cues.fps], dtype=np.float64)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "cues"
        cues.save(folder)
        meta = json.loads((folder / "cues.json").read_text())
        saved = hashlib.sha256((folder / "cues.safetensors").read_bytes()).hexdigest()
    meta.get("settings", {}).pop("timings_ms", None)
    return arrays, {"cues.json": meta, "cues.safetensors sha256": saved}


def run_cues(frames: int) -> dict:
    _torch_setup()
    from directanimator.cues import extract_cues, rebuild_cues

    runs = {}
    # shot="all": the recorded outputs never depend on the shot detector (the example clips are single shots).
    runs["walk_default"] = lambda: _cue_items(extract_cues(*WALK, num_frames=frames, shot="all"))
    state = {}

    def synthetic_default():
        state["synthetic"] = extract_cues(*SYNTHETIC, num_frames=frames, shot="all")
        return _cue_items(state["synthetic"])

    def synthetic_rebuilt():
        if "synthetic" not in state:
            raise RuntimeError("needs the cues of cues/synthetic_default, which did not run")
        # edits the app's live controls make: other settings, a manual scale, one face box removed
        return _cue_items(rebuild_cues(state["synthetic"], lowpass=0.3, face_enlarge=1.3, grid=0, scale=0.9,
                                       face_boxes={min(2, frames - 1): None}))

    runs["synthetic_default"] = synthetic_default
    runs["synthetic_settings"] = lambda: _cue_items(
        extract_cues(*SYNTHETIC, num_frames=frames, lowpass=0.8, face_enlarge=2.2, grid=8, shot="all"))
    runs["synthetic_rebuilt"] = synthetic_rebuilt
    runs["world_64"] = lambda: _cue_items(extract_cues(*WORLD, size=64, num_frames=frames, shot="all"))
    return runs


def _world_cues(frames: int):
    from directanimator.cues import extract_cues

    return extract_cues(*WORLD, size=64, num_frames=frames, shot="all")


def run_pipeline(frames: int) -> dict:
    def demo():
        torch = _torch_setup()
        from directanimator.pipeline import DirectAnimatorPipeline

        cues = _world_cues(frames)
        pipe = DirectAnimatorPipeline.from_pretrained(str(ROOT / "models" / "demo"), use_safetensors=True,
                                                      local_files_only=True)
        pipe.set_progress_bar_config(disable=True)
        out = pipe(image=cues.reference, cues=cues, num_inference_steps=4, generator=torch.Generator().manual_seed(0),
                   output_type="np")
        return {"frames": np.asarray(out.frames)}, {}

    def tiny():
        torch = _torch_setup()
        from directanimator.tiny import make_tiny_pipeline, tiny_driving_cues

        cues = tiny_driving_cues(num_frames=9)
        pipe = make_tiny_pipeline()
        out = pipe(image=cues.reference, cues=cues, num_inference_steps=3, generator=torch.Generator().manual_seed(0),
                   output_type="np")
        return {"frames": np.asarray(out.frames)}, {}

    return {"demo": demo, "tiny": tiny}


def _subprocess(args: list[str], log_path: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    with open(log_path, "w") as fh:
        code = subprocess.call([sys.executable, *args], cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    if code != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"`python {' '.join(args)}` exited with {code}; last lines of {log_path}:\n{tail}")


def _make_dataset(work: Path) -> Path:
    ds = work / "dataset"
    if not (ds / "metadata.jsonl").is_file():
        _subprocess(["-m", "trainers.synthetic", "--out", str(ds), *DATASET_ARGS, "--overwrite"],
                    work / "synthetic.log")
    return ds


def _make_pretrained(work: Path) -> Path:
    pipe = work / "pretrained"
    if not (pipe / "transformer").is_dir():
        _torch_setup()
        from directanimator.tiny import make_tiny_pipeline

        make_tiny_pipeline(pipe)
    return pipe


def run_dataset(work: Path) -> dict:
    def synthetic():
        ds = _make_dataset(work)
        files = sorted(p for p in ds.rglob("*") if p.is_file() and not p.name.startswith("."))
        return {}, {"files sha256": {str(p.relative_to(ds)): hashlib.sha256(p.read_bytes()).hexdigest()
                                     for p in files}}

    return {"synthetic": synthetic}


def _train_items(out: Path) -> tuple[dict, dict]:
    from safetensors.numpy import load_file

    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rows = rows[:TRAIN_STEPS]
    keys = sorted({k for r in rows for k in r if not k.startswith("time/")})
    arrays = {f"metrics/{k}": np.array([r.get(k, np.nan) for r in rows], dtype=np.float64) for k in keys}
    weights = {}
    for f in sorted((out / "transformer").glob("*.safetensors")):
        weights.update(load_file(str(f)))
    arrays.update({f"weights/{k}": v for k, v in sorted(weights.items())})
    return arrays, {}


def run_train(work: Path) -> dict:
    def same_id():
        ds, pipe = _make_dataset(work), _make_pretrained(work)
        out = work / "same_id"
        shutil.rmtree(out, ignore_errors=True)
        _subprocess(["-m", "trainers.same_id", "--hub-dataset", str(ds), "--cache-dir", str(work / "cache"),
                     "--pretrained", str(pipe), "--output-dir", str(out), *TRAIN_ARGS], work / "same_id.log")
        return _train_items(out)

    def same2x():
        ds, first = _make_dataset(work), work / "same_id"
        if not (first / "transformer").is_dir():
            same_id()
        out = work / "same2x"
        shutil.rmtree(out, ignore_errors=True)
        _subprocess(["-m", "trainers.same2x", "--hub-dataset", str(ds), "--cache-dir", str(work / "cache"),
                     "--same-id-checkpoint", str(first), "--output-dir", str(out), "--align-depth", "1",
                     "--s2x-weight", "0.5", "--use-ema", *TRAIN_ARGS], work / "same2x.log")
        arrays, values = _train_items(out)
        cache_arrays, values["cache entries"] = _cache_items(work / "cache")
        arrays.update(cache_arrays)
        return arrays, values

    return {"same_id": same_id, "same2x": same2x}


def _cache_items(cache: Path) -> tuple[dict, dict]:
    """The precompute cache both runs used (cues of the synthetic clips through the VAE and text encoder): every
    tensor, as float32, named by the entry's clip rather than its key, and each entry's key and metadata (a changed
    key means existing caches are no longer found)."""
    from safetensors.torch import load_file

    from trainers.precompute import read_metadata

    arrays, entries = {}, {}
    for path in sorted(cache.rglob("*.safetensors")):
        meta = read_metadata(path)
        name = meta.get("file_name", path.stem)
        if meta.get("kind") == "pseudo":
            name = f"{meta.get('clip')}<-{name}"
        name = f"{meta.get('kind', 'entry')}:{name}"
        entries[name] = {"key": path.stem, "metadata": meta}
        for k, v in sorted(load_file(str(path)).items()):
            arrays[f"cache/{name}/{k}"] = v.float().numpy() if v.is_floating_point() else v.numpy()
    return arrays, entries


def all_runs(options: dict, work: Path) -> dict:
    """{(group, run): callable returning (arrays, json values)} in run order."""
    runs = {}
    for group in options["only"]:
        made = {"cues": lambda: run_cues(options["frames"]), "pipeline": lambda: run_pipeline(options["frames"]),
                "dataset": lambda: run_dataset(work), "train": lambda: run_train(work)}[group]()
        runs.update({(group, name): fn for name, fn in made.items()})
    return runs


# ----------------------------------------------------------------------------------------------------------------
# recording and comparing


def _sha(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    return hashlib.sha256(f"{a.dtype.str}{a.shape}".encode() + a.tobytes()).hexdigest()


def _file_name(group: str, name: str) -> str:
    return f"{group}__{name}.safetensors"


def _describe_diff(old: np.ndarray, new: np.ndarray) -> str:
    if old.dtype != new.dtype or old.shape != new.shape:
        return f"DIFFERS: was {old.dtype}{list(old.shape)}, now {new.dtype}{list(new.shape)}"
    if old.tobytes() == new.tobytes():
        return "identical"
    a, b = old.astype(np.float64), new.astype(np.float64)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    diff = np.abs(a - b)[~same]
    finite = diff[np.isfinite(diff)]
    worst = f"{finite.max():.6g}" if finite.size else "nan"
    first = f", first at index {int(np.flatnonzero(~same)[0])}" if a.ndim == 1 else ""
    return f"DIFFERS: max abs diff {worst}, {int((~same).sum())} of {a.size} elements{first}"


def _max_diff(old, new) -> float:
    if old is None or new is None or old.shape != new.shape:
        return float("inf")
    d = np.abs(old.astype(np.float64) - new.astype(np.float64))
    d = d[np.isfinite(d)]
    return float(d.max()) if d.size else 0.0


def _json_diff(old, new, prefix="") -> list[str]:
    """Paths where two JSON values differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new)):
            if k not in old or k not in new:
                out.append(f"{prefix}{k} ({'added' if k not in old else 'removed'})")
            else:
                out += _json_diff(old[k], new[k], f"{prefix}{k}.")
        return out
    return [] if json.dumps(old) == json.dumps(new) else [prefix.rstrip(".") or "(value)"]


def _environment() -> dict:
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for dist in ("numpy", "torch", "diffusers", "transformers", "accelerate", "safetensors", "mediapipe",
                 "opencv-python", "opencv-python-headless", "opencv-contrib-python", "av", "imageio-ffmpeg",
                 "scipy", "pillow"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                    capture_output=True, text=True).stdout.strip())
    except OSError:
        commit, dirty = None, None
    return {"commit": commit, "dirty": dirty, "machine": platform.machine(), "processor": platform.processor(),
            "versions": versions}


@contextlib.contextmanager
def _stderr_to(path: Path):
    """Send this process's stderr (the segmenter's C++ log lines, warnings) to ``path``; its tail is shown on an
    error."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "w") as fh:
        os.dup2(fh.fileno(), 2)
        try:
            yield
        except BaseException:
            traceback.print_exc()  # into the log, before the last lines of it are shown
            sys.stderr.flush()
            os.dup2(saved, 2)
            tail = "\n".join(path.read_text(errors="replace").splitlines()[-15:])
            print(f"failed; last lines of {path}:\n{tail}", file=sys.stderr, flush=True)
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _run(fn, log_path: Path) -> tuple[dict, dict]:
    with _stderr_to(log_path):
        arrays, values = fn()
    return {k: np.ascontiguousarray(v) for k, v in arrays.items()}, values


def _fresh_work(folder: Path) -> Path:
    work = folder / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return work


def record(folder: Path, options: dict) -> int:
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*__*.safetensors"):
        old.unlink()
    work = _fresh_work(folder)
    manifest = {"format": FORMAT, "options": options, "environment": _environment(), "runs": {}}
    start = time.perf_counter()
    for (group, name), fn in all_runs(options, work).items():
        t0 = time.perf_counter()
        arrays, values = _run(fn, work / f"{group}__{name}.stderr.log")
        if arrays:
            save_file(arrays, str(folder / _file_name(group, name)))
        manifest["runs"][f"{group}/{name}"] = {
            "arrays": {k: {"sha256": _sha(v), "dtype": v.dtype.str, "shape": list(v.shape)} for k, v in arrays.items()},
            "values": values,
        }
        metrics = {k[len("metrics/"):]: v.tolist() for k, v in arrays.items() if k.startswith("metrics/")}
        if metrics:  # for reading only; compare uses the arrays
            manifest["runs"][f"{group}/{name}"]["metrics"] = metrics
        log(f"recorded {group}/{name}: {len(arrays)} arrays, {len(values)} values ({time.perf_counter() - t0:.1f} s)")
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    log(f"recorded {len(manifest['runs'])} runs into {folder} in {time.perf_counter() - start:.0f} s")
    return 0


def compare(folder: Path) -> int:
    from safetensors.numpy import load_file

    path = folder / MANIFEST
    if not path.is_file():
        log(f"error: no {path}; run `python scripts/check_behaviour.py record {folder}` first")
        return 2
    manifest = json.loads(path.read_text())
    options = manifest["options"]
    now = _environment()
    if now["versions"] != manifest["environment"]["versions"]:
        log(f"note: library versions differ from the recording: {manifest['environment']['versions']} -> "
            f"{now['versions']}")
    log(f"comparing with the recording of commit {manifest['environment']['commit']}"
        f"{' (dirty)' if manifest['environment']['dirty'] else ''}, options {options}")
    work = _fresh_work(folder)
    items = differs = 0
    start = time.perf_counter()
    runs = all_runs(options, work)
    for (group, name), fn in runs.items():
        key = f"{group}/{name}"
        t0 = time.perf_counter()
        rec = manifest["runs"].get(key)
        if rec is None:
            log(f"{key}: not in the recording (skipped)")
            continue
        try:
            arrays, values = _run(fn, work / f"{group}__{name}.stderr.log")
        except Exception as exc:  # noqa: BLE001 - a run that no longer works is a difference, the others still run
            items += 1
            differs += 1
            log(f"{key}: DIFFERS: the run failed: {type(exc).__name__}: {exc}")
            continue
        old = load_file(str(folder / _file_name(group, name))) if rec["arrays"] else {}
        results = {}
        for k in sorted(set(rec["arrays"]) | set(arrays)):
            if k not in arrays:
                results[k] = "DIFFERS: no longer produced"
            elif k not in old:
                results[k] = "DIFFERS: new output, not in the recording"
            else:
                results[k] = _describe_diff(old[k], arrays[k])
                if results[k] == "identical" and _sha(arrays[k]) != rec["arrays"][k]["sha256"]:
                    results[k] = "DIFFERS: sha256 differs from the manifest (recorded file changed?)"
        # model weights and cache entries: one line for all their tensors
        for k, line in results.items():
            if not k.startswith(AGGREGATED):
                items += 1
                differs += line != "identical"
                log(f"{key} {k}: {line}")
        for prefix in AGGREGATED:
            part = {k: v for k, v in results.items() if k.startswith(prefix)}
            if not part:
                continue
            items += 1
            bad = {k: v for k, v in part.items() if v != "identical"}
            label = f"{key} {prefix.rstrip('/')} ({len(part)} tensors)"
            if bad:
                differs += 1
                worst = max(bad, key=lambda k: _max_diff(old.get(k), arrays.get(k)))
                log(f"{label}: DIFFERS in {len(bad)} tensors; largest {worst[len(prefix):]}: {bad[worst]}")
            else:
                log(f"{label}: identical")
        for k in sorted(set(rec["values"]) | set(values)):
            items += 1
            if k not in values or k not in rec["values"]:
                line = "DIFFERS: " + ("no longer produced" if k not in values else "new output, not in the recording")
            else:
                was, now = rec["values"][k], values[k]
                paths = _json_diff(was, now)
                if not paths:
                    line = "identical"
                elif isinstance(was, str) and isinstance(now, str):
                    line = f"DIFFERS: was {was[:16]}..., now {now[:16]}..."
                else:
                    line = f"DIFFERS at {', '.join(paths[:8])}" + (
                        f" (+{len(paths) - 8} more)" if len(paths) > 8 else "")
            differs += line != "identical"
            log(f"{key} {k}: {line}")
        log(f"  ({key}: {time.perf_counter() - t0:.1f} s)")
    missing = sorted(set(manifest["runs"]) - {f"{g}/{n}" for g, n in runs})
    for key in missing:
        items += 1
        differs += 1
        log(f"{key}: DIFFERS: recorded but no longer run")
    took = time.perf_counter() - start
    if differs:
        log(f"SUMMARY: {differs} of {items} items DIFFER ({took:.0f} s)")
        return 1
    log(f"SUMMARY: all {items} items identical ({took:.0f} s)")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["record", "compare"])
    parser.add_argument("dir", nargs="?", default="runs/behaviour", help="recording folder (default runs/behaviour)")
    parser.add_argument("--only", default=",".join(GROUPS),
                        help=f"record: comma-separated groups among {','.join(GROUPS)} (default all)")
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES,
                        help=f"record: frames of the cue and pipeline runs (default {DEFAULT_FRAMES})")
    args = parser.parse_args(argv)
    folder = Path(args.dir)
    if not folder.is_absolute():
        folder = ROOT / folder
    if args.mode == "compare":
        return compare(folder)
    only = [g.strip() for g in args.only.split(",") if g.strip()]
    bad = [g for g in only if g not in GROUPS]
    if bad or not only or args.frames < 1:
        parser.error(f"--only takes groups among {', '.join(GROUPS)}; --frames at least 1")
    return record(folder, {"only": [g for g in GROUPS if g in only], "frames": args.frames})


if __name__ == "__main__":
    sys.exit(main())

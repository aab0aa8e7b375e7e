"""bench/gpu_suite.py --dry-run: the GPU suite's whole code path (every row: loops, caches, training steps, memory
tiers, compilation, FP8) runs end to end on a CPU at a tiny config, so a GPU slot is not spent finding its bugs."""

import importlib.util
from pathlib import Path

SUITE = Path(__file__).resolve().parent.parent / "bench" / "gpu_suite.py"


def _suite():
    spec = importlib.util.spec_from_file_location("gpu_suite", SUITE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_suite_dry_run_end_to_end(capsys):
    assert _suite().main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("| section |"):]
    for label in ("eager, sync-free stepper", "first-block 0.2", "taylorseer 3", "pab 2", "same-ID step",
                  "Same2X step", "group-offload", "compiled, sync-free stepper", "first-block 0.2",
                  "FP8 layerwise casting"):
        assert label in table, label
    assert "FAILED" not in table and "% of self-attentions skipped" in table


def test_gpu_suite_budget_skips_rows_and_needs_cuda_without_dry_run(capsys):
    suite = _suite()
    assert suite.main(["--dry-run", "--budget", "0", "--skip", "train,tiers,compile,fp8,tests"]) == 0
    out = capsys.readouterr().out
    assert out.count("skipped: past the 0 s budget") == 5  # 2 loops + 3 caches
    import torch

    if not torch.cuda.is_available():
        assert suite.main([]) == 2
        assert "needs a CUDA GPU" in capsys.readouterr().err

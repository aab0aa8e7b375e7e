#!/usr/bin/env bash
# Smoke-check one accelerate config on this machine's GPU(s) with a small random model and a generated dataset:
#
#   bash scripts/check_distributed.sh CONFIG [NUM_PROCESSES] [WORK_DIR]     e.g. fsdp2, deepspeed_zero3, ddp
#
# 1. same-ID, 4 steps, checkpoints every 2, the final transformer/ folder must load;
# 2. the same run killed after step 3 and resumed with --resume latest: its loss values must equal run 1's;
# 3. Same2X, 2 steps, from run 1 (teacher truncated at block 3);
# 4. the checkpoint was written by the engine the config asks for (DeepSpeed or FSDP), not by a silent fallback.
# Logs go to WORK_DIR/CONFIG.log (default WORK_DIR /tmp/directanimator-check). Exit status 1 when a step fails.
# Without GPUs: the *_cpu configs (deepspeed_zero2_cpu, deepspeed_zero3_cpu) run DeepSpeed on CPU processes (fp32,
# gloo), e.g. with deepspeed installed apart from the venv:
#   PYTHONPATH=/path/to/deepspeed-target TORCH_EXTENSIONS_DIR=/path/to/writable bash scripts/check_distributed.sh \
#       deepspeed_zero2_cpu 2
# (DeepSpeed JIT-builds its small shared-memory op with g++ once, into TORCH_EXTENSIONS_DIR, default
# ~/.cache/torch_extensions; a build killed half-way leaves a `lock` file there that makes later runs wait forever.)
set -uo pipefail
cd "$(dirname "$0")/.."
C=${1:?usage: bash scripts/check_distributed.sh CONFIG [NUM_PROCESSES] [WORK_DIR]}
N=${2:-1}
W=${3:-/tmp/directanimator-check}
LOG=$W/$C.log
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TQDM_DISABLE=1
PY=${PYTHON:-python}
mkdir -p "$W"
: > "$LOG"  # one check per log
if [ ! -d "$W/ds" ]; then
  $PY - "$W" <<'EOF_PY' || exit 1
import sys; sys.path[:0] = ['bench', 'tests']
from pathlib import Path
from bench_trainers import _build
print(_build(Path(sys.argv[1]), 'cpu-mid', 4))
EOF_PY
fi
A=(--hub-dataset "$W/ds" --pretrained "$W/pipe" --cache-dir "$W/cache" --num-frames 13 --long-side 96
   --no-verify-media --report-to none --dataloader-num-workers 0 --checkpointing-steps 2 --lr-warmup-steps 1)
L=(accelerate launch --config_file "configs/accelerate/$C.yaml" --num_processes "$N" --num_machines 1)
fail=0
run() { local what=$1; shift; echo "### $*" >> "$LOG"
        if "$@" >> "$LOG" 2>&1; then echo "ok   $C: $what"; else echo "FAIL $C: $what (see $LOG)"; fail=1; fi; }
rm -rf "$W/$C-full" "$W/$C-cut" "$W/$C-s2"
run "same-ID, 4 steps" "${L[@]}" -m trainers.same_id "${A[@]}" --output-dir "$W/$C-full" --max-steps 4
run "same-ID killed after step 3" "${L[@]}" -m trainers.same_id "${A[@]}" --output-dir "$W/$C-cut" --max-steps 4 --stop-at-step 3
run "same-ID resumed" "${L[@]}" -m trainers.same_id "${A[@]}" --output-dir "$W/$C-cut" --max-steps 4 --resume latest
run "Same2X, 2 steps" "${L[@]}" -m trainers.same2x "${A[@]}" --output-dir "$W/$C-s2" --same-id-checkpoint "$W/$C-full" \
    --align-depth 3 --max-steps 2
$PY - "$W" "$C" <<'EOF_PY' || fail=1
import json, sys
from pathlib import Path
w, c = Path(sys.argv[1]), sys.argv[2]
def losses(run):
    return [json.loads(line)["loss/denoise"] for line in (w / run / "metrics.jsonl").read_text().splitlines()]
full, cut = losses(f"{c}-full"), losses(f"{c}-cut")
print("losses, uninterrupted:", full); print("losses, killed + resumed:", cut)
assert full == cut, "resume is not exact"
kind = next((ln.split(":", 1)[1].strip() for ln in Path(f"configs/accelerate/{c}.yaml").read_text().splitlines()
             if ln.startswith("distributed_type:")), "")
state = w / f"{c}-full" / "checkpoints" / "checkpoint-0000004" / "accelerate"
print("checkpoint state:", sorted(p.name for p in state.iterdir()))
# DeepSpeed's engine writes a pytorch_model/ folder, FSDP pytorch_model_fsdp*; plain DDP a model.safetensors
engine = {"DEEPSPEED": lambda n: n == "pytorch_model", "FSDP": lambda n: n.startswith("pytorch_model_fsdp")}.get(kind)
assert engine is None or any(engine(p.name) for p in state.iterdir()), f"{kind} config, but not its checkpoint"
if kind == "DEEPSPEED":
    print("DeepSpeed checkpoint:", sorted(p.name for p in (state / "pytorch_model").iterdir()))
from directanimator.modeling import CueFusionTransformer3DModel
model = CueFusionTransformer3DModel.from_pretrained(w / f"{c}-full" / "transformer")
print("final transformer loads:", sum(p.numel() for p in model.parameters()), "parameters")
print("Same2X losses:", [(r["loss/denoise"], r["loss/s2x"]) for r in map(json.loads, (w / f"{c}-s2" / "metrics.jsonl").read_text().splitlines())])
EOF_PY
exit $fail

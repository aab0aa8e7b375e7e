#!/usr/bin/env bash
# Rebuild the embedded demo model (models/demo/) from nothing, with the project's own commands, on a CPU.
#
#   bash scripts/make_demo_model.sh [WORK_DIR [DEST]]   (default WORK_DIR runs/demo, DEST models/demo; about 80 min on
#                                                        one core of a 2-core machine)
#
# 1. a synthetic world of drawn dancing people (Hub dataset format, pseudo cross-ID clips)
# 2. a small CogVideoX VAE trained on it
# 3. an initial pipeline folder: that VAE, a small random T5, a character tokenizer, a fresh CueFusion transformer
# 4. stage 1, same-ID            (python -m trainers.same_id)
# 5. stage 2, Same2X             (python -m trainers.same2x)
# 6. models/demo = the initial folder with the Same2X transformer, plus the training logs
#
# Every step is seeded; single-threaded so runs repeat (multi-threaded CPU kernels may reorder float sums).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-runs/demo}
DEST=${2:-models/demo}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 PYTHONHASHSEED=0
PY=${PYTHON:-python}
mkdir -p "$WORK"
SECONDS=0
stamp() { echo "[$(date -u +%H:%M:%S) +${SECONDS}s] $*"; }

stamp "1/6 synthetic world"
# 40 train identities x 6 of 80 train motions each (240 clips; every motion danced by 3 identities): too many
# motions to learn by heart, so the model has to learn to follow the cues (a full cross product of 6 motions did not)
$PY -m trainers.synthetic --out "$WORK/world" --identities 44 --motions 83 --motions-per-identity 6 --frames 17 \
    --size 64 --seed 0 --pseudo-per-clip 1 --test-identities 4 --test-motions 3 --fps 8 --overwrite

# The demo's text encoder is random and the app/CLI prompt defaults to "": train on empty captions so that the
# default prompt is the one the model saw (the trainers have no caption dropout option).
$PY - "$WORK/world/metadata.jsonl" <<'EOF_PY'
import json, os, sys
path = sys.argv[1]
rows = [json.loads(line) for line in open(path) if line.strip()]
with open(path + ".tmp", "w") as fh:
    fh.writelines(json.dumps({**row, "caption": ""}) + "\n" for row in rows)
os.replace(path + ".tmp", path)
EOF_PY

stamp "2/6 VAE"
# 16 latent channels (CogVideoX's own 48x compression; 8 channels blurred every figure to a grey blob, ~21 dB)
$PY -m trainers.experiments.vae --hub-dataset "$WORK/world" --output-dir "$WORK/vae" --widths 16,32,32,32 \
    --latent-channels 16 --size 64 --clip-frames 9 --image-fraction 0.8 --image-batch-size 4 --batch-size 1 \
    --max-steps 3000 --learning-rate 2e-3 --seed 0

stamp "3/6 initial pipeline folder"
$PY -m trainers.experiments.make_demo_pipeline --vae "$WORK/vae/vae" --out "$WORK/init" --size 64 --frames 17 \
    --layers 6 --heads 4 --head-dim 32 --text-dim 32 --text-length 32 --seed 0

COMMON=(--hub-dataset "$WORK/world" --num-frames 17 --long-side 64 --cache-dir "$WORK/cache" --cache-dtype float32
        --train-batch-size 4 --report-to none --seed 0 --adam-weight-decay 0)

stamp "4/6 stage 1 (same-ID)"
$PY -m trainers.same_id "${COMMON[@]}" --pretrained "$WORK/init" --output-dir "$WORK/same_id" \
    --max-steps 20000 --learning-rate 3e-4 --lr-warmup-steps 100 --lr-scheduler cosine \
    --checkpointing-steps 2000 --checkpoints-total-limit 1

stamp "5/6 stage 2 (Same2X)"
$PY -m trainers.same2x "${COMMON[@]}" --pretrained "$WORK/init" --same-id-checkpoint "$WORK/same_id" \
    --output-dir "$WORK/same2x" --align-depth 2 --s2x-weight 0.5 \
    --max-steps 600 --learning-rate 1e-4 --lr-warmup-steps 50 --lr-scheduler cosine \
    --checkpointing-steps 600 --checkpoints-total-limit 1

stamp "6/6 $DEST"
TMP="$DEST.tmp"
rm -rf "$TMP"
cp -r "$WORK/init" "$TMP"
rm -rf "$TMP/transformer"
cp -r "$WORK/same2x/transformer" "$TMP/transformer"
mkdir -p "$TMP/training"
cp "$WORK/vae/metrics.jsonl" "$TMP/training/vae_metrics.jsonl"
cp "$WORK/same_id/metrics.jsonl" "$TMP/training/same_id_metrics.jsonl"
cp "$WORK/same2x/metrics.jsonl" "$TMP/training/same2x_metrics.jsonl"
gzip -n -9 "$TMP"/training/*.jsonl   # 20 000 stage-1 lines: 4.4 MB as text, the folder must stay small
$PY -m trainers.plot_metrics "$TMP/training/loss_curves.png" "$TMP"/training/{vae,same_id,same2x}_metrics.jsonl.gz
if [ -f models/demo/README.md ]; then cp models/demo/README.md "$TMP/README.md"; fi
rm -rf "$DEST"
mv "$TMP" "$DEST"
stamp "done: $DEST ($(du -sh "$DEST" | cut -f1))"

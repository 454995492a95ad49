#!/usr/bin/env bash
# tubelet's GPU check (bench/bench_gpu.py), for a lent GPU machine. bench/bench_gpu_pack.sh
# copies this file to .gpucheck/run.sh beside the script, the video and the wheels; then,
# from the repository root, with carry [".gpucheck"]:   cd .gpucheck && bash run.sh
# Installs the carried wheels (sam2 and its hydra/iopath, PyAV, pycocotools, jsonschema),
# prints the card and versions, then runs every part within BUDGET seconds (default 285);
# the JSON and the log go to $OUT (gpu.json, gpu.log). Extra arguments go to the script.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
OUT=${OUT:-$HERE/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
SITE=${SITE:-/tmp/site}
PY=${PY:-python3}
$PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$HERE"/.whl/*.whl \
  || echo "WARNING: wheel install failed; parts that need them will report errors"
export PYTHONPATH="$SITE:$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version,clocks.sm,temperature.gpu --format=csv || true
$PY -c "import sys, torch; print('python', sys.version.split()[0], '| torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"
set -o pipefail
timeout -k 5 "${TIMEOUT:-330}" $PY "$HERE/bench_gpu.py" --video "$HERE/bedroom.mp4" --out "$OUT/gpu.json" \
  --budget "${BUDGET:-285}" "$@" 2>&1 | tee "$OUT/gpu.log"
echo "exit $?"

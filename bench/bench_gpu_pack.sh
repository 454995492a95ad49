#!/usr/bin/env bash
# Assemble .gpucheck/ (git-ignored through .git/info/exclude) for bench/bench_gpu.sh on a
# lent GPU machine (Python 3.12, x86-64, no network): the script, its driver, one video
# and the wheels that machine lacks (~38 MiB; the working tree travels within 64 MiB).
#   bash bench/bench_gpu_pack.sh            # in the checkout the device copies
# VIDEO=... picks another video (default: the SAM 2 demo's bedroom.mp4 from the test
# assets; their terms allow local benchmarks: never commit it). PY: a Python with torch,
# which sam2's setup.py imports to build its py3 wheel (without the CUDA extension, as
# the Makefile installs it).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST=${DEST:-$ROOT/.gpucheck}  # the checkout the device copies (a lead's, from a helper's worktree)
PY=${PY:-$ROOT/.venv/bin/python}
VIDEO=${VIDEO:-${TUBELET_ASSETS:-$ROOT/../shared/assets}/videos/sam2-demo/bedroom.mp4}
EXCLUDE=$(git -C "$ROOT" rev-parse --path-format=absolute --git-common-dir)/info/exclude
mkdir -p "$(dirname "$EXCLUDE")" "$DEST/.whl"
grep -qx '/.gpucheck/' "$EXCLUDE" 2>/dev/null || echo '/.gpucheck/' >>"$EXCLUDE"
rm -f "$DEST"/.whl/*.whl
# binary wheels for CPython 3.12 on manylinux x86-64; pure ones as they come
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$DEST/.whl" av==18.1.0 pycocotools==2.0.11 rpds-py==2026.9.1 referencing==0.37.0 \
  jsonschema==4.26.0 jsonschema-specifications==2025.9.1 hydra-core==1.3.8 omegaconf==2.3.1
# sdist-only packages, built here as py3 wheels
SAM2_BUILD_CUDA=0 "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$DEST/.whl" \
  sam2==1.1.0 iopath==0.1.10 antlr4-python3-runtime==4.9.3
install -m 644 "$VIDEO" "$DEST/bedroom.mp4"  # the assets are read-only
cp "$ROOT/bench/bench_gpu.py" "$DEST/bench_gpu.py"
cp "$ROOT/bench/bench_gpu.sh" "$DEST/run.sh"
du -sh "$DEST"

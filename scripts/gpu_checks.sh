#!/usr/bin/env bash
# The GPU checks of lit_dl, in one run on a machine with one CUDA GPU (written for an H100):
#   1. the host-sync check: fast-recipe steps under torch.cuda.set_sync_debug_mode("error");
#   2. the device tests that the CPU CI cannot run (device-resident batches, compile, channels_last);
#   3. scripts/benchmark_gpu.py: hand-written loop vs shipped vs fast vs fast+compile, images/s + ratios.
# Everything is printed and, when $OUT is set, also written to $OUT/gpu_checks.log.
#
# Run from a copy of the repository root:  bash scripts/gpu_checks.sh
# It needs torch (CUDA), lightning, torchmetrics, tensorboard, scikit-learn (usually present on GPU
# images) and jsonargparse[signatures]. Where jsonargparse is missing and there is no internet, fetch
# its wheels on a machine with pip first, into .whl/ of the repository copy:
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux2014_x86_64 -d .whl jsonargparse==4.53.0 docstring_parser==0.18.0 \
#     typeshed_client==2.15.0 importlib_resources
# and this script installs them into /tmp/site without touching the system packages.
set -uo pipefail
cd "$(dirname "$0")/.."
LOG="${OUT:-/tmp}/gpu_checks.log"
exec > >(tee "$LOG") 2>&1
export PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="$PWD:/tmp/site"
else
  export PYTHONPATH="$PWD"
fi
python3 - <<'PY' || exit 1
import torch, lightning, jsonargparse
print(f"torch {torch.__version__}, lightning {lightning.__version__}, jsonargparse {jsonargparse.__version__}")
print("cuda:", torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else "")
assert torch.cuda.is_available(), "no CUDA device: these are the GPU checks"
PY
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
status=0
echo "== 1. host-sync check (set_sync_debug_mode error)"
python3 scripts/benchmark_gpu.py --sync-check --warmup 5 --steps 10 || status=1
echo "== 2. device-path tests"
python3 -m pytest -q -p no:cacheprovider tests/data/test_device_batches.py tests/models/test_speed_switches.py || status=1
echo "== 3. SyncBatchNorm under configs/trainer/ddp.yaml, bf16 (one GPU: layers converted and trained)"
python3 scripts/check_sync_batchnorm_gpu.py --steps 30 || status=1
echo "== 4. benchmark"
python3 scripts/benchmark_gpu.py "$@" || status=1
echo "== done (status $status); log: $LOG"
exit $status

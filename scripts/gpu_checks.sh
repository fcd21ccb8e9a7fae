#!/usr/bin/env bash
# The GPU checks of lit_dl, in one run on a machine with one CUDA GPU (written for an H100):
#   1. the host-sync check: 60 fast-recipe steps (a log window, NonFiniteGuard checks) under
#      torch.cuda.set_sync_debug_mode("error");
#   2. `lit-dl doctor --format json` on the fast recipe (the same fake CIFAR files as the benchmark):
#      its host_syncs check, which only runs on CUDA, must be ok;
#   3. the device tests that the CPU CI cannot run (device-resident batches, compile, channels_last);
#   4. SyncBatchNorm under configs/trainer/ddp.yaml, bf16;
#   5. scripts/benchmark_gpu.py: hand-written loop vs shipped vs fast vs fast+compile, images/s + ratios;
#   6. scripts/benchmark_checkpoint.py on the fast recipe: the training thread's stall per checkpoint
#      (90 MB) with synchronous writes and with AtomicCheckpoint(async_write=True).
# Everything is printed and, when $OUT is set, also written to $OUT/gpu_checks.log.
#
# Run from a copy of the repository root:  bash scripts/gpu_checks.sh [benchmark_gpu.py arguments]
# GPU_CHECKS_SKIP="3 4" leaves out the steps named (device time is scarce; a rerun skips what passed).
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
python3 scripts/benchmark_gpu.py --sync-check --warmup 5 --steps 60 || status=1
echo "== 2. lit-dl doctor on the fast recipe (host_syncs must be ok)"
# The benchmark's fake data: 5 batches of (50000 + 5000) / 5 random CIFAR-shaped images, val_size 5000.
DOCTOR_DIR="$(mktemp -d)"
python3 - "$DOCTOR_DIR" <<'PY' || status=1
import sys
from pathlib import Path
sys.path.insert(0, "scripts")
from benchmark_gpu import write_fake_cifar
write_fake_cifar(Path(sys.argv[1]) / "data", per_batch=(50000 + 5000) // 5, n_test=100)
PY
python3 -m lit_dl doctor --config configs/cifar10_resnet18_fast.yaml \
  --data.init_args.root "$DOCTOR_DIR/data" --data.init_args.val_size 5000 \
  --format json > "${OUT:-/tmp}/doctor_fast.json"
echo "doctor exit status $? (1: it found errors; the step checks host_syncs only)"
python3 - "${OUT:-/tmp}/doctor_fast.json" <<'PY' || status=1
import json, sys
report = json.load(open(sys.argv[1]))
for f in report["findings"]:
    if f["status"] != "ok":
        print(f"  {f['check']}: {f['status']}: {f['found']}")
print("  counts:", report["counts"])
syncs = [f for f in report["findings"] if f["check"] == "host_syncs"]
assert syncs, "the doctor reported no host_syncs finding"
print(f"host_syncs: {syncs[0]['status']}: {syncs[0]['found']}")
for site in syncs[0]["data"].get("where", []):
    print(f"  sync at {site}")
assert syncs[0]["status"] == "ok", "host_syncs is not ok"
PY
rm -rf "$DOCTOR_DIR"
skip() { [[ " ${GPU_CHECKS_SKIP:-} " == *" $1 "* ]] && echo "(skipped: GPU_CHECKS_SKIP)"; }
echo "== 3. device-path tests"
skip 3 || python3 -m pytest -q -p no:cacheprovider tests/data/test_device_batches.py tests/models/test_speed_switches.py tests/test_host_reads.py || status=1
echo "== 4. SyncBatchNorm under configs/trainer/ddp.yaml, bf16 (one GPU: layers converted and trained)"
skip 4 || python3 scripts/check_sync_batchnorm_gpu.py --steps 30 || status=1
echo "== 5. benchmark"
python3 scripts/benchmark_gpu.py "$@" || status=1
echo "== 6. checkpoint stall: synchronous vs async_write (fast recipe, 3 epochs, no validation)"
skip 6 || python3 scripts/benchmark_checkpoint.py --fake-cifar --config configs/cifar10_resnet18_fast.yaml \
  --epochs 3 --repeats 2 -- --model.init_args.lr_scheduler.init_args.warmup_steps=10 \
  --trainer.limit_val_batches=0 || status=1
echo "== done (status $status); log: $LOG"
exit $status

#!/usr/bin/env bash
# GPU check (issue 13): on a CUDA machine, run
#   1. the library's unit tests with POPRISK_DEVICE=cuda,
#   2. every chapter in FAST mode on CUDA (timed: gpu.fast_seconds),
#   3. chapter 9 in full mode on CUDA (timed: gpu.seconds; the stored CPU outputs are left as they are),
#   4. the paper-scale MNIST configuration (experiments.paper_scale_config) on synthetic stand-in data of the
#      same shape (60,000 + 10,000 images of 28x28, 10 classes): 5 seeds trained, the quantization sweep,
# writing timings and results to one file, $OUT/gpu_check.md, and the timings to $OUT/execution_status.json
# (a copy of book/execution_status.json with the GPU times merged; copy it back to book/ to show them in the
# runtime banners). Budget: <= 8 minutes on one H200.
#
#   tools/gpu_check.sh [--dry-run] [OUT]      (OUT defaults to $OUT, else _build/gpu_check)
#
# --dry-run exercises the same steps on the CPU at toy size (one small unit-test file, one chapter FAST,
# a FAST stand-in for the full step, the paper-scale step at 1/100 of the data, 1 seed, 1 epoch), so that the
# script is known to work before a GPU is lent. tests/test_gpu_check.py runs it.
set -uo pipefail
cd "$(dirname "$0")/.."
DRY=0
if [[ "${1:-}" == "--dry-run" ]]; then DRY=1; shift; fi
OUTDIR="${1:-${OUT:-_build/gpu_check}}"
mkdir -p "$OUTDIR"
REPORT="$OUTDIR/gpu_check.md"
STATUS="$OUTDIR/execution_status.json"
PY="${PYTHON:-.venv/bin/python}"
cp book/execution_status.json "$STATUS"
export POPRISK_PROGRESS=0
if [[ $DRY == 1 ]]; then
  export POPRISK_DEVICE=cpu OMP_NUM_THREADS=1
  UNIT=(tests/test_config.py)
  FAST_NBS=(book/ch04_compression_generalizes.ipynb)
  FULL_NB=book/ch05_tradeoff.ipynb; FULL_ENV=(POPRISK_FAST=1)
  SCALE=0.01; SEEDS=1; EPOCHS=1
else
  export POPRISK_DEVICE=cuda
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'CUDA is not available: use --dry-run')" || exit 2
  UNIT=(tests/test_config.py tests/test_curvature.py tests/test_data.py tests/test_models_train.py
        tests/test_prune.py tests/test_quantize.py tests/test_experiments.py tests/test_device_path.py)
  UNIT=($(ls "${UNIT[@]}" 2>/dev/null))
  FAST_NBS=($(ls book/ch*.ipynb))
  FULL_NB=book/ch09_experiments.ipynb; FULL_ENV=()
  SCALE=1; SEEDS=5; EPOCHS=25
fi
failures=0
{
  echo "# GPU check $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "dry run: $DRY; device: $("$PY" -c 'import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU")')"
  echo "torch $("$PY" -c 'import torch; print(torch.__version__)'); poprisk $("$PY" -c 'import poprisk; print(poprisk.__version__)')"
  echo
  echo "| step | seconds | result |"
  echo "|---|---:|---|"
} > "$REPORT"

step() {  # step NAME COMMAND...: run, time, append one row (and the tail of a failure) to the report
  local name="$1"; shift
  local log="$OUTDIR/$(echo "$name" | tr -c 'a-zA-Z0-9' '_').log"
  local t0=$(date +%s.%N)
  "$@" > "$log" 2>&1
  local rc=$?
  local secs=$(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $t0}")
  local result="ok"
  [[ $rc == 0 ]] || { result="FAILED (exit $rc; see $(basename "$log"))"; failures=$((failures + 1)); }
  echo "| $name | $secs | $result $(grep -Eo '[0-9]+ passed[^=]*' "$log" | tail -1) |" >> "$REPORT"
  echo "$name: $result (${secs} s)"
}

step "unit tests" env POPRISK_FAST=1 "$PY" -m pytest -q -p no:randomly "${UNIT[@]}"
for nb in "${FAST_NBS[@]}"; do
  step "FAST $(basename "$nb" .ipynb)" env POPRISK_FAST=1 "$PY" tools/execute_notebooks.py --no-store \
    --status "$STATUS" "$nb"
done
step "full $(basename "$FULL_NB" .ipynb)" env "${FULL_ENV[@]}" "$PY" tools/execute_notebooks.py --no-store \
  --status "$STATUS" "$FULL_NB"
step "paper-scale MNIST (synthetic stand-in)" "$PY" - "$SCALE" "$SEEDS" "$EPOCHS" "$OUTDIR/paper_scale.csv" <<'PYEOF'
import sys, time
import torch
from poprisk import config, data, experiments

scale, seeds, epochs, out = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
cfg = experiments.paper_scale_config("mnist", download=False, check=False)
n_train, n_test = int(60000 * scale), int(10000 * scale)
cfg = cfg.replace_(seeds=tuple(range(seeds)), epochs=epochs, n_train=max(10, int(cfg.n_train * scale)),
                   n_val=max(10, int(cfg.n_val * scale)), curvature_samples=max(10, int(2000 * scale)),
                   methods=("kmeans", "hw_kmeans", "drhw"), betas=(30.0,), bits=(2,))
g = torch.Generator().manual_seed(0)
# Random images of MNIST's shape and range: the timings are the real workload's, the accuracies are chance.
split = data.Split(torch.rand(n_train, 1, 28, 28, generator=g), torch.randint(0, 10, (n_train,), generator=g),
                   torch.rand(n_test, 1, 28, 28, generator=g), torch.randint(0, 10, (n_test,), generator=g),
                   "mnist-synthetic")
dev = config.device()
t0 = time.perf_counter()
trained = experiments.train_models(cfg, split, cache_dir=None, device=dev, progress=False)
if dev.type == "cuda":
    torch.cuda.synchronize()
t_train = time.perf_counter() - t0
frame = experiments.run_sweeps(cfg, split, sweeps=("quantize",), trained=trained, device=dev, progress=False)
if dev.type == "cuda":
    torch.cuda.synchronize()
t_sweep = time.perf_counter() - t0 - t_train
frame.to_csv(out, index=False)
print(f"train {len(trained)} seeds x {cfg.epochs} epochs on {cfg.n_train} images: {t_train:.1f} s; "
      f"quantize sweep ({len(frame)} rows): {t_sweep:.1f} s; device {dev}")
PYEOF
grep -h "^train " "$OUTDIR"/paper_scale*.log >> "$REPORT" 2>/dev/null
echo >> "$REPORT"
echo "failures: $failures" >> "$REPORT"
echo "report: $REPORT"
exit $(( failures > 0 ))

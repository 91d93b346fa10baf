#!/usr/bin/env bash
# GPU check (issues 13, 18): runs on a lent device machine as it is (its own python3 with a CUDA torch, no
# network, no .venv), cold (an empty POPRISK_CACHE; every notebook in its own), in one device call:
#   unit   the library's device-path unit tests on the real GPU (POPRISK_TEST_DEVICE=cuda, POPRISK_DEVICE=cuda)
#   paper  the paper-scale MNIST configuration (experiments.paper_scale_config) on synthetic stand-in data of
#          the same shape (60,000 + 10,000 images of 28x28, 10 classes): 5 seeds x 25 epochs trained with no
#          cache (cache_dir=False), then the quantization sweep
#   full   chapter 9 in full mode on CUDA (gpu.seconds; the stored CPU outputs are left as they are)
#   fast   every chapter in FAST mode on CUDA (gpu.fast_seconds)
# The whole run keeps to tools/timeouts.py's GPU_CHECK_BUDGET (540 s, under the device's 600 s a command): a
# step is stopped when the budget runs out and a step that would start with under MIN_STEP s left is skipped;
# the table says which, so it always comes back.
#
# How to run it on the device machine (the tool `run` of this workplace):
#   1. here, once (pip fetches CPython 3.12 wheels of what the device image lacks, at requirements.txt's pins):
#        make gpu-wheels                  # -> .whl/ (32 wheels, about 16 MiB; ignored by git)
#   2. run(command="bash tools/gpu_check.sh", carry=[".whl"], timeout_s=600)
#      Two calls instead, if the budget skipped steps: command="bash tools/gpu_check.sh --only unit,paper",
#      then "bash tools/gpu_check.sh --only full,fast".
#   3. What comes back from $OUT (4 files): gpu_check.md (the table, also printed last), execution_status.json
#      (book/execution_status.json with the GPU times merged: copy it to book/, then render the status page with
#      `python -c "from tools.execute_notebooks import render_status_page as r; r()"`; the runtime banners
#      read it at the next build), paper_scale.csv (the sweep's rows) and gpu_check.log (every step's output).
#
#   tools/gpu_check.sh [--dry-run] [--only STEPS] [OUT]   (STEPS: comma-separated; OUT: $OUT, else _build/gpu_check)
#
# --dry-run goes through the same steps on the CPU at toy size (one small unit-test file, one chapter FAST, a
# FAST stand-in for the full step, the paper-scale step at 1/100 of the data, 1 seed, 1 epoch), so that the
# script is known to work before a GPU is lent: `make gpu-check-dry` (tests/test_gpu_check.py) runs it.
set -uo pipefail
cd "$(dirname "$0")/.."
DRY=0
ONLY=unit,paper,full,fast
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY=1; shift ;;
    --only) ONLY="${2:?--only needs a comma-separated list of steps}"; shift 2 ;;
    *) break ;;
  esac
done
for s in ${ONLY//,/ }; do
  [[ " unit paper full fast " == *" $s "* ]] || { echo "unknown step '$s' (steps: unit,paper,full,fast)" >&2; exit 2; }
done
OUTDIR="${1:-${OUT:-_build/gpu_check}}"
mkdir -p "$OUTDIR"
REPORT="$OUTDIR/gpu_check.md"
STATUS="$OUTDIR/execution_status.json"
LOG="$OUTDIR/gpu_check.log"
: > "$LOG"
PY="${PYTHON:-python3}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cp book/execution_status.json "$STATUS"

# The library from this checkout, not an installed copy; then the carried wheels (never in a dry run: they are
# for the device's Python 3.12, and the .venv here has them all).
export PYTHONPATH="$PWD/lib${PYTHONPATH:+:$PYTHONPATH}"
if [[ $DRY == 0 ]] && compgen -G ".whl/*.whl" > /dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" \
    .whl/*.whl >> "$LOG" 2>&1 || { echo "installing the carried .whl/ failed:"; tail -20 "$LOG"; exit 2; }
  export PYTHONPATH="$PYTHONPATH:$WORK/site"
fi
"$PY" -c "import poprisk, torch, nbformat, nbclient, ipykernel, mlxtend" >> "$LOG" 2>&1 || {
  echo "$PY lacks a package: run 'make gpu-wheels' here and carry .whl (see this script's header)"
  tail -5 "$LOG"; exit 2; }
# Cold: nothing trained earlier on this machine is loaded (tools/execute_notebooks.py gives each notebook a
# fresh cache of its own as well).
export POPRISK_CACHE="$WORK/cache" POPRISK_PROGRESS=0
if [[ $DRY == 1 ]]; then
  export POPRISK_DEVICE=cpu POPRISK_TEST_DEVICE=cpu OMP_NUM_THREADS=1
  UNIT=(tests/test_config.py); JOBS=()
  FAST_NBS=(book/ch04_compression_generalizes.ipynb)
  FULL_NB=book/ch05_tradeoff.ipynb; FULL_ENV=(POPRISK_FAST=1)
  SCALE=0.01; SEEDS=1; EPOCHS=1
else
  export POPRISK_DEVICE=cuda POPRISK_TEST_DEVICE=cuda
  "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'CUDA is not available: use --dry-run')" || exit 2
  UNIT=(tests/test_device_path.py tests/test_config.py tests/test_curvature.py tests/test_data.py
        tests/test_models_train.py tests/test_prune.py tests/test_quantize.py tests/test_experiments.py)
  UNIT=($(ls "${UNIT[@]}" 2>/dev/null)); JOBS=(-n 4 --dist loadfile)
  FAST_NBS=($(ls book/ch*.ipynb))
  FULL_NB=book/ch09_experiments.ipynb; FULL_ENV=()
  SCALE=1; SEEDS=5; EPOCHS=25
fi
BUDGET=$("$PY" -c "from tools import timeouts; print(timeouts.gpu_check_budget())")
MIN_STEP=20  # seconds: a step needs at least the kernel's start and the imports
failures=0
skipped=0
{
  echo "# GPU check $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  "$PY" -c '
import platform, torch, poprisk
dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
cuda = f", CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}" if torch.cuda.is_available() else ""
print(f"device: {dev}{cuda}; Python {platform.python_version()}, torch {torch.__version__}, poprisk {poprisk.__version__}")'
  echo "dry run: $DRY; steps: $ONLY; budget: $BUDGET s; cache: cold (empty POPRISK_CACHE)"
  echo
  echo "| step | seconds | result |"
  echo "|---|---:|---|"
} > "$REPORT"

wanted() { [[ ",$ONLY," == *",$1,"* ]]; }

step() {  # step NAME COMMAND...: run within what is left of the budget, time it, append one row to the report
  local name="$1"; shift
  local rest=$((BUDGET - SECONDS))
  if ((rest < MIN_STEP)); then
    echo "| $name | – | skipped: the ${BUDGET} s budget is spent (run it with --only) |" >> "$REPORT"
    skipped=$((skipped + 1)); echo "$name: skipped (budget)"; return
  fi
  local log="$WORK/step.log"
  local t0=$(date +%s.%N)
  timeout --kill-after=10 "$rest" "$@" > "$log" 2>&1
  local rc=$?
  local secs=$(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $t0}")
  local result="ok"
  if [[ $rc == 124 || $rc == 137 ]]; then
    result="FAILED: stopped at the budget's end (${rest} s left when it started)"; failures=$((failures + 1))
  elif [[ $rc != 0 ]]; then
    result="FAILED (exit $rc; see gpu_check.log)"; failures=$((failures + 1))
  fi
  echo "| $name | $secs | $result $(grep -Eo '[0-9]+ passed[^=]*' "$log" | tail -1) |" >> "$REPORT"
  { echo "===== $name: $result ($secs s)"; cat "$log"; } >> "$LOG"
  grep -h "^train " "$log" >> "$WORK/paper_lines" 2>/dev/null
  echo "$name: $result (${secs} s)"
}

if wanted unit; then
  step "unit tests ($POPRISK_TEST_DEVICE)" env POPRISK_FAST=1 "$PY" -m pytest -q -p no:randomly "${JOBS[@]}" "${UNIT[@]}"
fi
if wanted paper; then
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
# cache_dir=False: neither read nor write the cache (None would mean the default cache, warm on a rerun)
trained = experiments.train_models(cfg, split, cache_dir=False, device=dev, progress=False)
if dev.type == "cuda":
    torch.cuda.synchronize()
t_train = time.perf_counter() - t0
frame = experiments.run_sweeps(cfg, split, sweeps=("quantize",), trained=trained, cache_dir=False, device=dev,
                               progress=False)
if dev.type == "cuda":
    torch.cuda.synchronize()
t_sweep = time.perf_counter() - t0 - t_train
frame.to_csv(out, index=False)
print(f"train {len(trained)} seeds x {cfg.epochs} epochs on {cfg.n_train} images: {t_train:.1f} s; "
      f"quantize sweep ({len(frame)} rows): {t_sweep:.1f} s; device {dev}")
PYEOF
fi
if wanted full; then
  step "full $(basename "$FULL_NB" .ipynb)" env "${FULL_ENV[@]}" "$PY" tools/execute_notebooks.py --no-store \
    --status "$STATUS" "$FULL_NB"
fi
if wanted fast; then
  for nb in "${FAST_NBS[@]}"; do
    step "FAST $(basename "$nb" .ipynb)" env POPRISK_FAST=1 "$PY" tools/execute_notebooks.py --no-store \
      --status "$STATUS" "$nb"
  done
fi
{
  echo
  cat "$WORK/paper_lines" 2>/dev/null
  echo
  echo "failures: $failures; skipped: $skipped; total $SECONDS s"
} >> "$REPORT"
cat "$REPORT"
echo "report: $REPORT"
exit $((failures > 0))

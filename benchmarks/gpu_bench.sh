#!/usr/bin/env bash
# GPU throughput figures of issue 5: makes ~20,000 500×375 JPEGs, then runs `fewshot-gui bench`
# for resnet18 and efficientnet-lite0 (random weights: throughput only), each bounded in time;
# on a GPU also ResNet-18 with files read in threads instead of processes, and with PIL decoding.
#
#   bash benchmarks/gpu_bench.sh OUT_DIR          # on the GPU machine, from the repository root
#   BENCH_IMAGES=50 bash benchmarks/gpu_bench.sh /tmp/x   # tiny run (works on a CPU)
#
# Environment: BENCH_IMAGES (default 20000), BENCH_DEVICE (default: cuda when present, else cpu),
# BENCH_TIME_LIMIT (seconds per measurement, default 15), BENCH_MAKE_LIMIT (seconds to make
# images, default 60), BENCH_FOLDER (use this folder of images instead of making them).
# Writes OUT_DIR/<encoder>.json (+ .log), OUT_DIR/summary.txt; prints the summary.
set -uo pipefail
OUT_DIR="${1:?usage: gpu_bench.sh OUT_DIR}"
mkdir -p "$OUT_DIR"
export PYTHONPATH="${PYTHONPATH:-.}"
IMAGES="${BENCH_IMAGES:-20000}"
LIMIT="${BENCH_TIME_LIMIT:-15}"
MAKE_LIMIT="${BENCH_MAKE_LIMIT:-60}"
PROCS="$(nproc)"
DEVICE="${BENCH_DEVICE:-$(python -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')}"
SUMMARY="$OUT_DIR/summary.txt"
: > "$SUMMARY"
say() { echo "$*" | tee -a "$SUMMARY"; }

say "machine: $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo no GPU), $PROCS CPUs"
say "$(python -c 'import sys, torch, torchvision; print("python", sys.version.split()[0], "torch", torch.__version__, "torchvision", torchvision.__version__)')"

if [ -n "${BENCH_FOLDER:-}" ]; then
  FOLDER="$BENCH_FOLDER"
else
  FOLDER="$(mktemp -d "${TMPDIR:-/tmp}/fewshot-gpu-bench-XXXXXX")/photos"
  trap 'rm -rf "$(dirname "$FOLDER")"' EXIT
  python - "$FOLDER" "$IMAGES" "$PROCS" "$MAKE_LIMIT" <<'PY' | tee -a "$SUMMARY"
import sys, time
from pathlib import Path
from fewshot_gui.commands.bench import make_photos_parallel
folder, count, procs, limit = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
start = time.perf_counter()
made = make_photos_parallel(folder, count, procs, limit)
seconds = time.perf_counter() - start
print(f"made {made} JPEGs 500x375 in {seconds:.1f} s on {procs} processes ({made / seconds:.0f}/s)")
PY
fi

run_bench() {  # name, extra environment, encoder
  local name="$1" env_kv="$2" encoder="$3"
  say "--- $name: $encoder on $DEVICE ($env_kv)"
  env $env_kv timeout 150 python -m fewshot_gui bench --encoder "$encoder" --random-weights \
    --device "$DEVICE" --folder "$FOLDER" --time-limit "$LIMIT" --rounds 1 --skip-relabel --json \
    > "$OUT_DIR/$name.json" 2> "$OUT_DIR/$name.log"
  local rc=$?
  if [ $rc -ne 0 ]; then
    say "FAILED (exit $rc); last lines of $name.log:"
    tail -n 15 "$OUT_DIR/$name.log" | tee -a "$SUMMARY"
  else
    cat "$OUT_DIR/$name.json" | tee -a "$SUMMARY"
  fi
}

run_bench resnet18 "FEWSHOT_GPU_DECODE=1" resnet18
run_bench efficientnet-lite0 "FEWSHOT_GPU_DECODE=1" efficientnet-lite0
if [ "$DEVICE" != "cpu" ]; then
  run_bench resnet18-reader-threads "FEWSHOT_GPU_DECODE=1 FEWSHOT_READER_PROCESSES=0" resnet18
  run_bench resnet18-pil-decode "FEWSHOT_GPU_DECODE=0" resnet18
fi
say "done"

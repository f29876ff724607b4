#!/usr/bin/env bash
# tools/gpu_check.sh: everything strata can only check on a GPU, in one command, in under 8 minutes
# on a machine with an NVIDIA GPU (16 cores, no network, Debian 12 with the CUDA toolkit, cuBLAS and
# cuDNN, CMake, Ninja, Catch2, stb and OpenBLAS installed):
#   1. configure the real CUDA build with its tests in build-gpu/ (nvcc for this machine's GPU only:
#      CMAKE_CUDA_ARCHITECTURES=native, or STRATA_CUDA_ARCHITECTURES; CI compiles sm_80 and sm_90 and
#      checks their spills)
#   2. build the strata command and the CUDA test suite
#   3. run `ctest -L cuda` (the CUDA backend against the CPU reference, now on the device; the tests
#      that need PyTorch's references only when the Python has torch)
#   4. run `strata bench gpu` (the MiB step of DeepLabV3-R101 at 512x512, batch 8 and 24, f32 and
#      tf32, each eager and replayed as a CUDA graph, and PyTorch side by side when it has CUDA)
#   5. with more than one GPU and mpirun: `strata bench allreduce --backend nccl`, one rank per GPU
# and print one summary: each phase's result and time, the tests' counts, the benchmark's table.
# Each phase runs under the time left of the budget (STRATA_GPU_CHECK_SECONDS, default 470); an
# interrupted or timed-out run still prints what it has. Logs: build-gpu/gpu-check/.
#
# Usage: tools/gpu_check.sh [extra `strata bench gpu` options, e.g. --batch 8 --steps 5]
set -uo pipefail
cd "$(dirname "$0")/.."

budget=${STRATA_GPU_CHECK_SECONDS:-470}
logs=build-gpu/gpu-check
mkdir -p "$logs"
start=$SECONDS
summary=()
failed=0

python=${STRATA_PYTHON:-}
if [ -z "$python" ]; then
  if [ -x build/venv/bin/python ]; then python=$PWD/build/venv/bin/python; else python=/usr/bin/python3; fi
fi

print_summary() {
  echo
  echo "== gpu_check summary ($((SECONDS - start)) s of $budget s) =="
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'
  printf '%s\n' "${summary[@]}"
  if [ -s "$logs/ctest.log" ]; then
    echo "-- ctest -L '^cuda\$'"
    grep -E "tests passed|tests failed|\*\*\*Failed|\*\*\*Timeout|\*\*\*Exception|Not Run" "$logs/ctest.log" | tail -n 25
  fi
  if [ -s "$logs/allreduce.log" ]; then
    echo "-- strata bench allreduce (NCCL)"
    sed -n '/^all-reduce/,$p' "$logs/allreduce.log"
  fi
  if [ -s "$logs/bench.log" ]; then
    echo "-- strata bench gpu"
    if grep -q '^device:' "$logs/bench.log"; then sed -n '/^device:/,$p' "$logs/bench.log"; else tail -n 5 "$logs/bench.log"; fi
  fi
}

interrupted() {
  summary+=("interrupted after $((SECONDS - start)) s: the results below are partial")
  print_summary
  exit 130
}
trap interrupted INT TERM

# phase NAME LOG COMMAND...: runs COMMAND with its output in LOG (and on the terminal), under the
# time left; records the outcome.
phase() {
  local name=$1 log=$2
  shift 2
  local left=$((budget - (SECONDS - start)))
  if [ "$left" -le 5 ]; then
    summary+=("$(printf '%-16s skipped: the %d s budget is spent' "$name" "$budget")")
    return 1
  fi
  local t0=$SECONDS status
  echo "== $name (at most $left s)"
  timeout --foreground "$left" "$@" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  local outcome="ok"
  [ "$status" -eq 124 ] && outcome="timed out"
  [ "$status" -ne 0 ] && [ "$status" -ne 124 ] && outcome="failed (exit $status)"
  [ "$status" -ne 0 ] && failed=1
  summary+=("$(printf '%-16s %-22s %4d s   log %s' "$name" "$outcome" $((SECONDS - t0)) "$log")")
  return "$status"
}

if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  summary+=("no NVIDIA GPU is visible (nvidia-smi): this script measures nothing without one")
  print_summary
  exit 1
fi

phase configure "$logs/configure.log" \
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTRATA_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="${STRATA_CUDA_ARCHITECTURES:-native}" \
  -DSTRATA_PYTHON="$python" || { print_summary; exit 1; }
phase build "$logs/build.log" cmake --build build-gpu -j"$(nproc)" --target strata strata_cuda_tests \
  || { print_summary; exit 1; }

# The reference tests need PyTorch on the CPU (python3-torch); without it they are left out, and said so.
exclude="slow"
if ! "$python" -c "import torch" 2>/dev/null; then
  exclude="slow|torch"
  summary+=("$python has no torch: the CUDA tests against PyTorch's references are left out")
fi
phase "ctest -L cuda" "$logs/ctest.log" \
  ctest --test-dir build-gpu -L '^cuda$' -LE "$exclude" -j4 --timeout 300 --output-on-failure
phase "bench gpu" "$logs/bench.log" env STRATA_PYTHON="$python" build-gpu/apps/strata bench gpu "$@"
# With several GPUs: the data-parallel all-reduce's bus bandwidth over NCCL, one rank per GPU.
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
if [ "$gpus" -gt 1 ] && command -v mpirun >/dev/null; then
  phase "bench allreduce" "$logs/allreduce.log" \
    build-gpu/apps/strata bench allreduce --nproc "$gpus" --backend nccl --seconds 0.2
fi
print_summary
exit "$failed"

#!/usr/bin/env bash
# Runs on the GPU machine (no MLIR there): builds the runtime from source,
# then runs the GPU tests and/or benchmarks against the kernel library built
# here (build/kernels/kvc_kernels.cubin, carried along). Logs go to $OUT.
#   bash utils/gpu-run.sh [quick] [test] [sanitize] [bench] [prefill] [sass]
set -euo pipefail
out=${OUT:-/tmp/kvc-gpu}
mkdir -p "$out"
cmake -S runtime -B /tmp/kvc-rt -G Ninja -DCMAKE_BUILD_TYPE=Release > "$out/cmake.log"
cmake --build /tmp/kvc-rt >> "$out/cmake.log"
rt=/tmp/kvc-rt/lib/libkvc_rt.so
kernels=build/kernels/kvc_kernels.cubin
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee "$out/gpu.txt"
for step in "${@:-test bench}"; do
  case $step in
    test)
      python3 test/Integration/CUDA/decode-attention.py --runtime $rt --kernels $kernels \
        2>&1 | tee "$out/test.log" ;;
    prefill)
      python3 test/Integration/CUDA/prefill-attention.py --runtime $rt --kernels $kernels \
        2>&1 | tee "$out/prefill-test.log"
      python3 bench/gpu/prefill_attention.py --runtime $rt --kernels $kernels \
        2>&1 | tee "$out/prefill-bench.log"
      python3 bench/gpu/prefill_attention.py --runtime $rt --kernels $kernels --dtype f16 \
        2>&1 | tee "$out/prefill-bench-f16.log" ;;
    quick)
      python3 test/Integration/CUDA/decode-attention.py --quick --runtime $rt \
        --kernels $kernels 2>&1 | tee "$out/quick.log" ;;
    sanitize)
      /usr/local/cuda/bin/compute-sanitizer --tool memcheck --error-exitcode 1 \
        python3 test/Integration/CUDA/decode-attention.py --quick --runtime $rt \
        --kernels $kernels 2>&1 | tail -20 | tee "$out/sanitize.log"
      /usr/local/cuda/bin/compute-sanitizer --tool memcheck --error-exitcode 1 \
        python3 test/Integration/CUDA/prefill-attention.py --quick --runtime $rt \
        --kernels $kernels 2>&1 | tail -20 | tee -a "$out/sanitize.log" ;;
    bench)
      python3 bench/gpu/decode_attention.py --runtime $rt --kernels $kernels \
        2>&1 | tee "$out/bench.log" ;;
    sass)
      /usr/local/cuda/bin/cuobjdump -res-usage $kernels > "$out/res-usage.txt" 2>&1 || true
      /usr/local/cuda/bin/cuobjdump -sass -fun kvc_decode_split_d128_g4_bf16 $kernels \
        > "$out/decode-split.sass" 2>&1 || true
      /usr/local/cuda/bin/cuobjdump -sass -fun kvc_prefill_d128_g4_bf16 $kernels \
        > "$out/prefill.sass" 2>&1 || true ;;
  esac
done

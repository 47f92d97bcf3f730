#!/usr/bin/env bash
# CPU generation benchmark (not a test): times greedy generation of 64, 256 and
# 1024 tokens with examples/llama-tiny.mlir by full recompute and by
# prefill + decode, then prints the FLOP counts of both loops. Run from the
# repository root after building (utils/setup.sh).
set -euo pipefail
build=${BUILD_DIR:-build}
llvm_lib=$(/usr/lib/llvm-22/bin/llvm-config --libdir)
cat examples/llama-tiny.mlir examples/llama-tiny-driver.mlir bench/cpu/generate.mlir \
  | "$build/bin/kvc-opt" --inline --kvc-incrementalize --kvc-cpu-pipeline \
  | /usr/lib/llvm-22/bin/mlir-runner -e main -entry-point-result=void -O3 \
      -shared-libs="$llvm_lib/libmlir_runner_utils.so,$llvm_lib/libmlir_c_runner_utils.so"
"$build/bin/kvc-opt" examples/llama-tiny.mlir --inline --canonicalize \
  --kvc-count-flops="prompt-tokens=16 generated-tokens=64,256,1024" -o /dev/null

#!/usr/bin/env bash
# Sets up kvc on a fresh Debian 12 machine: installs the packages, configures
# and builds into build/, then compiles the bundled example for the CPU and
# runs it. Run as root (or with sudo). Re-running it rebuilds incrementally.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "== installing Debian packages"
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
  cmake ninja-build clang-22 lld-22 llvm-22-dev llvm-22-tools \
  libmlir-22-dev mlir-22-tools libgtest-dev > /dev/null

echo "== configuring"
cmake -G Ninja -S . -B build \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 \
  -DMLIR_DIR=/usr/lib/llvm-22/lib/cmake/mlir \
  -DLLVM_EXTERNAL_LIT=/usr/lib/llvm-22/bin/lit > build-configure.log \
  || { cat build-configure.log; exit 1; }
grep -E "^-- kvc:" build-configure.log || true

echo "== building"
cmake --build build

echo "== running examples/attention-decode.mlir on the CPU"
LLVM_BIN=/usr/lib/llvm-22/bin
LLVM_LIB=/usr/lib/llvm-22/lib
build/bin/kvc-opt examples/attention-decode.mlir --kvc-cpu-pipeline \
  | "$LLVM_BIN/mlir-runner" -e main -entry-point-result=void \
      -shared-libs="$LLVM_LIB/libmlir_runner_utils.so,$LLVM_LIB/libmlir_c_runner_utils.so"

#!/usr/bin/env bash
# kvc-compile's wall time for the TinyLlama-shaped config (22 layers) on this
# machine, --target=cuda (kernels to cubins with ptxas, host code to a shared
# library): the median of 3 runs. The issue's budget is 5 s on the 2-core
# development machine.
#   bash bench/model/compile-time.sh [build]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
out=$(mktemp -d)
times=()
for i in 1 2 3; do
  start=$(date +%s.%N)
  "$build/bin/kvc-compile" bench/model/tinyllama.json --target=cuda -o "$out/model"
  end=$(date +%s.%N)
  times+=("$(echo "$end - $start" | bc)")
done
rm -rf "$out"
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 2p)
echo "kvc-compile bench/model/tinyllama.json --target=cuda: ${times[*]} s; median $median s on $(nproc) cores"

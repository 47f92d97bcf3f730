# Runs the dataflow probe (batch 1, real attention over the cache) with
# fixed and claimed row slices, a few cache lengths, diagnosis switches and
# L2 prefetch distances (GPU machine). bench/RESULTS.md has the numbers.
cd "$(dirname "$0")" || exit 1
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -o /tmp/dataflow dataflow-step.cu || exit 1
for args in "--claim" "" "--claim --copies 1" "--claim --len 0" "--claim --len 300" \
    "--claim --len 1500" "--claim --slots 4" "--claim --skip 1" "--claim --skip 2" \
    "--claim --skip 4" "--claim --skip 4 --len 0" "--claim --skip 6" \
    "--claim --l2-ahead-mb 8" "--claim --l2-ahead-mb 16"; do
  echo "== dataflow $args"; timeout 60 /tmp/dataflow $args || echo "exit $?"
done

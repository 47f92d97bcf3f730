# Runs the dataflow probe (batch 1, real attention over the cache) with
# fixed and claimed row slices, h in one or two copies, a few cache lengths
# and ring sizes (GPU machine).
cd "$(dirname "$0")" || exit 1
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -o /tmp/dataflow dataflow-step.cu || exit 1
for args in "--claim" "" "--claim --copies 1" "--claim --len 0" "--claim --len 1500" \
    "--claim --slots 4" "--claim --skip 1" "--claim --skip 2" \
    "--claim --skip 3"; do
  echo "== dataflow $args"; timeout 60 /tmp/dataflow $args || echo "exit $?"
done

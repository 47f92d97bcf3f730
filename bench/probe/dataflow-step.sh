# Runs the dataflow probe (batch 1) with fixed and claimed row slices, h
# kept in one or several copies, a few ring shapes and attention delays
# (GPU machine).
cd "$(dirname "$0")" || exit 1
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -o /tmp/dataflow dataflow-step.cu || exit 1
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -DX_IN_SMEM -o /tmp/dataflow-xs dataflow-step.cu \
  || exit 1
echo "== x in shared memory: --claim --copies 2"
timeout 60 /tmp/dataflow-xs --att-ns 4000 --claim --copies 2 | grep -v stats
for args in "" "--claim" "--claim --copies 2" "--claim --copies 4" "--claim --copies 2 --att-ns 0" \
    "--claim --copies 2 --att-ns 8000" "--claim --copies 2 --skip 1" "--claim --copies 2 --skip 2" \
    "--claim --copies 2 --skip 3"; do
  echo "== dataflow $args"; timeout 60 /tmp/dataflow --att-ns 4000 $args || echo "exit $?"
done

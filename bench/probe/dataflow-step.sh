# Runs the dataflow probe (batch 1) with fixed and claimed row slices, h
# kept in one or several copies, a few ring shapes and attention delays
# (GPU machine).
cd "$(dirname "$0")" || exit 1
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -o /tmp/dataflow dataflow-step.cu || exit 1
for args in "" "--claim" "--claim --copies 2" "--claim --copies 4" "--claim --copies 8" \
    "--claim --copies 4 --att-ns 0" "--claim --copies 4 --att-ns 8000" \
    "--claim --copies 4 --slots 6 --slot-kb 32" "--claim --skip 1" "--claim --copies 4 --skip 2"; do
  echo "== dataflow $args"; timeout 60 /tmp/dataflow --att-ns 4000 $args || echo "exit $?"
done

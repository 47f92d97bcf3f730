# Runs the dataflow probe (batch 1, real attention over the cache) with
# fixed and claimed row slices, h in one or two copies, a few cache lengths
# and ring sizes (GPU machine).
cd "$(dirname "$0")" || exit 1
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -o /tmp/dataflow dataflow-step.cu || exit 1
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -DATT_UNROLL=4 -o /tmp/dataflow4 dataflow-step.cu \
  || exit 1
echo "== attention loads 4 passes ahead: --claim"
timeout 60 /tmp/dataflow4 --claim | grep -v stats
for args in "--claim" "" "--claim --len 0" "--claim --len 1500" "--claim --len 300" \
    "--claim --skip 1" "--claim --skip 2" "--claim --skip 4" "--claim --skip 4 --len 0" \
    "--claim --skip 6" "--claim --l2-ahead-mb 4" "--claim --l2-ahead-mb 8" \
    "--claim --l2-ahead-mb 16" "--claim --l2-ahead-mb 32" "--l2-ahead-mb 16" \
    "--claim --l2-ahead-mb 16 --len 0" "--claim --l2-ahead-mb 16 --skip 4"; do
  echo "== dataflow $args"; timeout 60 /tmp/dataflow $args || echo "exit $?"
done

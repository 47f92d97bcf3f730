# Runs the dataflow probe (batch 1) with a few ring shapes and attention
# delays (GPU machine), and the ring probe it is measured against.
cd "$(dirname "$0")" || exit 1
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -o /tmp/dataflow dataflow-step.cu || exit 1
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -o /tmp/probe persistent-step.cu || exit 1
for args in "--att-ns 0" "--att-ns 4000" "--att-ns 8000" "--att-ns 4000 --slots 4 --slot-kb 48" \
    "--att-ns 4000 --slots 6 --slot-kb 32" "--att-ns 4000 --slots 8 --slot-kb 16" \
    "--att-ns 4000 --skip 1" "--att-ns 4000 --skip 2" "--att-ns 4000 --skip 3"; do
  echo "== dataflow $args"; timeout 60 /tmp/dataflow $args || echo "exit $?"
done
echo "== ring, for comparison"; /tmp/probe --att-ns 4000 --slots 8 --slot-kb 22 --steps-per-launch 8 | grep persistent | tail -1

# Runs the persistent-step probes (batch 1 and batch 16) with a few
# configurations (GPU machine). A probe that fails does not stop the others.
cd "$(dirname "$0")" || exit 1
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -o /tmp/probe persistent-step.cu || exit 1
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -o /tmp/probe16 persistent-step16.cu || exit 1
for args in "--att-ns 0" "--att-ns 4000" "--att-ns 4000 --steps-per-launch 8" \
    "--att-ns 8000 --steps-per-launch 8" "--att-ns 4000 --slots 2 --slot-kb 88 --steps-per-launch 8" \
    "--att-ns 4000 --slots 8 --slot-kb 22 --steps-per-launch 8"; do
  echo "== probe $args"; /tmp/probe $args
done
for args in "--att-ns 4000" "--att-ns 4000 --steps-per-launch 8"; do
  echo "== probe16 $args"; /tmp/probe16 $args
done

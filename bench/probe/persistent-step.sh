# Runs the persistent-step probes (batch 1 and batch 16) with a few
# configurations (GPU machine).
set -e
cd "$(dirname "$0")"
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -o /tmp/probe persistent-step.cu
/tmp/probe --att-ns 0
/tmp/probe --att-ns 4000
/tmp/probe --att-ns 4000 --steps-per-launch 8
/tmp/probe --att-ns 8000 --steps-per-launch 8
/tmp/probe --att-ns 4000 --slots 2 --slot-kb 88 --steps-per-launch 8
/tmp/probe --att-ns 4000 --slots 8 --slot-kb 22 --steps-per-launch 8
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -o /tmp/probe16 persistent-step16.cu
/tmp/probe16 --att-ns 4000
/tmp/probe16 --att-ns 4000 --steps-per-launch 8

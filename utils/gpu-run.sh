#!/usr/bin/env bash
# Runs on the GPU machine (no MLIR there): builds the runtime from source,
# then runs the GPU tests and/or benchmarks against the kernel library built
# here (build/kernels/kvc_kernels.cubin, carried along). Logs go to $OUT.
#   bash utils/gpu-run.sh [lit] [quick] [test] [sanitize] [bench] [benchshapes] [prefill] [sass] [matmul] [model] [modelbench] [profile]
# The lit step needs LLVM's lit carried in .lit: on the development machine,
#   mkdir .lit && cp -r /usr/lib/llvm-22/utils/lit .lit/ &&
#   echo /.lit/ >> "$(git rev-parse --git-path info/exclude)"
set -euo pipefail
out=${OUT:-/tmp/kvc-gpu}
mkdir -p "$out"
cmake -S runtime -B /tmp/kvc-rt -G Ninja -DCMAKE_BUILD_TYPE=Release > "$out/cmake.log"
cmake --build /tmp/kvc-rt >> "$out/cmake.log"
rt=/tmp/kvc-rt/lib/libkvc_rt.so
run=/tmp/kvc-rt/bin/kvc-run
kernels=build/kernels/kvc_kernels.cubin
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee "$out/gpu.txt"
for step in "${@:-test bench}"; do
  case $step in
    test)
      python3 test/Integration/CUDA/decode-attention.py --runtime $rt --kernels $kernels \
        2>&1 | tee "$out/test.log" ;;
    prefill)
      python3 test/Integration/CUDA/prefill-attention.py --runtime $rt --kernels $kernels \
        2>&1 | tee "$out/prefill-test.log"
      python3 bench/gpu/prefill_attention.py --runtime $rt --kernels $kernels \
        2>&1 | tee "$out/prefill-bench.log"
      python3 bench/gpu/prefill_attention.py --runtime $rt --kernels $kernels --dtype f16 \
        2>&1 | tee "$out/prefill-bench-f16.log" ;;
    lit)
      # The REQUIRES: cuda lit tests, through lit itself (carried in .lit,
      # see README), with a site config for this machine: no LLVM here.
      root=/tmp/kvc-lit
      mkdir -p $root/test $root/lib $root/kernels
      ln -sf $rt $root/lib/libkvc_rt.so
      ln -sf "$PWD/$kernels" $root/kernels/kvc_kernels.cubin
      cat > $root/test/lit.site.cfg.py <<CFG
import lit.llvm
config.llvm_tools_dir = "/usr/bin"
config.mlir_lib_dir = ""
config.kvc_obj_root = "$root"
config.kvc_tools_dir = "$root/bin"
config.cuda_toolkit_dir = "/usr/local/cuda"
config.kvc_gpu_only = True
lit.llvm.initialize(lit_config, config)
lit_config.load_config(config, "$PWD/test/lit.cfg.py")
CFG
      python3 -c "import sys; sys.path.insert(0, '.lit/lit'); from lit.main import main; main()" \
        -sv $root/test/Integration/CUDA 2>&1 | tee "$out/lit.log" ;;
    quick)
      python3 test/Integration/CUDA/decode-attention.py --quick --runtime $rt \
        --kernels $kernels 2>&1 | tee "$out/quick.log" ;;
    sanitize)
      /usr/local/cuda/bin/compute-sanitizer --tool memcheck --error-exitcode 1 \
        python3 test/Integration/CUDA/decode-attention.py --quick --runtime $rt \
        --kernels $kernels 2>&1 | tail -20 | tee "$out/sanitize.log"
      /usr/local/cuda/bin/compute-sanitizer --tool memcheck --error-exitcode 1 \
        python3 test/Integration/CUDA/prefill-attention.py --quick --runtime $rt \
        --kernels $kernels 2>&1 | tail -20 | tee -a "$out/sanitize.log" ;;
    bench)
      python3 bench/gpu/decode_attention.py --runtime $rt --kernels $kernels \
        2>&1 | tee "$out/bench.log" ;;
    benchshapes)
      # Shapes between the issue's, where the decode planner's choices
      # (kernel, split length, cluster) change (Plan.h): Hq/Hkv 32/8 (short
      # splits from B2 L2048 and B8 L512; at D64 too), then TinyLlama's
      # (32/4 D64, 640 rows) at batch 1, 16, 64 and 32 and other 32/4 D64,
      # then 32/32 (one query row per kv head).
      python3 bench/gpu/decode_attention.py --runtime $rt --kernels $kernels \
        --shapes 1:8192 2:4096 4:2048 8:1024 1:16384 2:8192 8:2048 2:2048 8:512 \
        1:1024:8:64 8:512:8:64 \
        1:640:4:64 16:640:4:64 64:640:4:64 32:640:4:64 16:1024:4:64 16:2048:4:64 \
        4:2048:4:64 8:1024:4:64 \
        1:4096:32 4:1024:32 1:16384:32 8:256:32 8:512:32 12:512:32 16:512:32 \
        2>&1 | tee "$out/bench-shapes.log" ;;
    matmul)
      python3 test/Integration/CUDA/matmul.py --runtime $rt --kernels $kernels \
        2>&1 | tee "$out/matmul.log"
      python3 bench/gpu/projection.py --runtime $rt --kernels $kernels \
        2>&1 | tee "$out/projection-bench.log" ;;
    model)
      # Artifacts built here by kvc-compile --target=cuda into build/artifacts
      # (carried along): kvc-run against Hugging Face.
      for model in tiny-llama small-llama; do
        for dtype in f32 bf16; do
          a=build/artifacts/$model-cuda-$dtype
          [ -d $a ] || continue
          echo "== $model $dtype" | tee -a "$out/model.log"
          python3 utils/hf-generate-check.py test/Tools/Inputs/$model.json $a \
            --kvc-run $run --dtype $dtype 2>&1 | tee -a "$out/model.log"
        done
      done ;;
    modelbench)
      python3 bench/model/decode.py build/artifacts/tinyllama-cuda-bf16 --kvc-run $run \
        2>&1 | tee "$out/model-bench.log" ;;
    profile)
      # Per-kernel durations (ncu, clocks and caches untouched) of prefill
      # and two eager decode steps of TinyLlama at batch 1, prompt 512;
      # utils/kernel-profile.py sums them by kernel.
      python3 bench/model/save-random.py bench/model/tinyllama.json /tmp/kvc-prof
      python3 -c "import random; random.seed(0); print(' '.join(str(random.randrange(32000)) for _ in range(512)))" > /tmp/kvc-prompt.txt
      $run build/artifacts/tinyllama-cuda-bf16 --weights /tmp/kvc-prof \
        --prompts /tmp/kvc-prompt.txt --max-new-tokens 128 --quiet | tee "$out/profile-run.txt"
      /usr/local/cuda/bin/ncu --clock-control none --cache-control none \
        --metrics gpu__time_duration.sum --csv --log-file "$out/profile.csv" \
        $run build/artifacts/tinyllama-cuda-bf16 --weights /tmp/kvc-prof \
        --prompts /tmp/kvc-prompt.txt --max-new-tokens 3 --max-context 640 --no-graph \
        --quiet > /dev/null
      python3 utils/kernel-profile.py "$out/profile.csv" | tee "$out/profile.txt" ;;
    sass)
      /usr/local/cuda/bin/cuobjdump -res-usage $kernels > "$out/res-usage.txt" 2>&1 || true
      /usr/local/cuda/bin/cuobjdump -sass -fun kvc_decode_split_d128_g4_bf16 $kernels \
        > "$out/decode-split.sass" 2>&1 || true
      /usr/local/cuda/bin/cuobjdump -sass -fun kvc_prefill_d128_g4_bf16 $kernels \
        > "$out/prefill.sass" 2>&1 || true ;;
  esac
done

# Runs the one-kernel batch-1 decode probe (decode-cluster.cu) over a few
# cluster sizes, tile rows and ring depths (GPU machine), next to kvc's
# decode of the same shape. bench/RESULTS.md has the numbers.
cd "$(dirname "$0")" || exit 1
nvcc -O3 -gencode arch=compute_90a,code=sm_90a -o /tmp/decode-cluster decode-cluster.cu || exit 1
for args in "--splits 16 --rows 32 --stages 4" "--splits 16 --rows 32 --stages 2 --math 0" \
    "--splits 16 --rows 32 --stages 4 --math 0" "--splits 16 --rows 32 --stages 8 --math 0" \
    "--splits 16 --rows 64 --stages 4 --math 0" "--splits 8 --rows 64 --stages 4 --math 0" \
    "--splits 8 --rows 64 --stages 6 --math 0" "--splits 16 --rows 128 --stages 2 --math 0" \
    "--splits 16 --rows 32 --stages 4 --math 0 --len 8192" \
    "--splits 16 --rows 64 --stages 6 --math 0 --len 32768" \
    "--cluster 0 --splits 16 --rows 32 --stages 4" \
    "--cluster 0 --splits 16 --rows 32 --stages 2 --math 0" \
    "--cluster 0 --splits 16 --rows 32 --stages 4 --math 0" \
    "--cluster 0 --splits 16 --rows 32 --stages 8 --math 0" \
    "--cluster 0 --splits 16 --rows 64 --stages 4 --math 0" \
    "--cluster 0 --splits 32 --rows 32 --stages 4 --math 0" \
    "--cluster 0 --splits 32 --rows 64 --stages 2 --math 0" \
    "--cluster 0 --splits 64 --rows 32 --stages 2 --math 0" \
    "--cluster 0 --splits 8 --rows 64 --stages 6 --math 0"; do
  timeout 60 /tmp/decode-cluster $args || echo "exit $? ($args)"
done
# One multiprocessor's streaming rate (--math 0, partials): 32 or 16 blocks
# (8 kv heads x 4 or 2 splits) each over 4096 or 8192 rows (2 or 4 MB), and
# 128 blocks, at ring depths 1 to 6; RESULTS has the numbers (thirteenth
# session).
for args in "--splits 4 --stages 1" "--splits 4 --stages 2" "--splits 4 --stages 4" \
    "--splits 4 --stages 6" "--splits 16 --stages 1" "--splits 16 --stages 2" \
    "--splits 16 --stages 4" "--splits 2 --stages 4" "--splits 2 --stages 6"; do
  timeout 60 /tmp/decode-cluster --cluster 0 --math 0 --heads 8 --len 16384 --rows 64 $args ||
    echo "exit $? ($args)"
done

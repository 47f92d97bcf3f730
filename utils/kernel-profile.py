"""Sums an ncu CSV of kvc-run (gpu__time_duration per kernel) over the last
decode step: the kernels after the last-but-one greedy argmax launch.

  python3 utils/kernel-profile.py PROFILE.csv
"""
import collections
import csv
import sys

rows = []
with open(sys.argv[1]) as f:
    lines = [l for l in f if l.startswith('"')]
for r in csv.DictReader(lines):
    if r["Metric Name"] == "gpu__time_duration.sum":
        scale = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3}[r["Metric Unit"]]
        rows.append((r["Kernel Name"], r["Grid Size"], float(r["Metric Value"].replace(",", "")) * scale))
steps = [i for i, (name, _, _) in enumerate(rows) if name.startswith("kvc_argmax")]
if len(steps) < 2:
    sys.exit("fewer than two argmax launches: not a kvc-run decode profile")
step = rows[steps[-2] + 1: steps[-1] + 1]
total = sum(t for _, _, t in step)
print("last decode step: %d kernels, %.1f us summed" % (len(step), total))
groups = collections.defaultdict(list)
for name, grid, t in step:
    groups[(name[:60], grid)].append(t)
print("| kernel | grid | count | total us | mean us | share |")
print("|---|---|---:|---:|---:|---:|")
for (name, grid), ts in sorted(groups.items(), key=lambda kv: -sum(kv[1])):
    print("| %s | %s | %d | %.1f | %.2f | %.1f%% |"
          % (name, grid, len(ts), sum(ts), sum(ts) / len(ts), 100 * sum(ts) / total))

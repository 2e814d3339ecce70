#!/usr/bin/env bash
# The published third edition (results/published/fashion-mnist-power/): the honest-protocol
# studies of the two tuned variants, the grid (15 seeds), export and report.
# Resumable: rerun after an interruption; the studies are topped up to their budget (a total,
# never exceeded) and the grid skips finished cells.
# Usage: scripts/fashion-mnist-power.sh [RESULTS]   (default: results)
set -euo pipefail
results=${1:-results}
out=results/published/fashion-mnist-power
cfg=fashion-mnist-power
for method in ce drkd; do   # only the studies the grid reads (not dlb's, cs-kd's or zipf-ls')
  drkd-bench tune "$cfg" --method "$method" --workers 2 --results "$results"
done
drkd-bench grid "$cfg" --no-report --results "$results"
mkdir -p "$out"
drkd-bench export --results "$results" --out "$out/runs.csv"
drkd-bench report --from "$out/runs.csv" --out "$out"

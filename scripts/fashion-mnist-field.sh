#!/usr/bin/env bash
# The published second edition (results/published/fashion-mnist-field/): tune every method under
# one equal budget, run the grid (reference and tuned variants, 5 seeds), export and report.
# Resumable: rerun after an interruption; finished trials and cells are kept, the studies are only
# topped up to the budget (--up-to) and the grid skips finished cells.
# Usage: scripts/fashion-mnist-field.sh [RESULTS]   (default: results)
set -euo pipefail
results=${1:-results}
out=results/published/fashion-mnist-field
cfg=fashion-mnist-field
drkd-bench tune "$cfg" --up-to --workers 2 --results "$results"
drkd-bench grid "$cfg" --no-report --results "$results"
mkdir -p "$out"
drkd-bench export --results "$results" --out "$out/runs.csv"
drkd-bench report --from "$out/runs.csv" --out "$out"

#!/usr/bin/env bash
# The fifth edition's Fashion-MNIST `mlp` part (benchmark/configs/paper-question-5-fashion-mlp.yaml,
# declared before it ran): its 10 studies, then its grid (20 seeds x 6 cells x 2 conditions),
# then the export and its report:
#   results/published/fifth-edition/fashion-mlp/runs.csv.gz (and its journal, optuna.journal.gz).
# bf16 channels_last, the precision study's equivalent arm for this task (the memory format is
# not part of a cell: named here so every chip trains the studied arm). Resumable: rerun;
# studies top up to their 12 trials, the grid skips finished cells (--done-in PART for cells a
# committed part holds).
# Usage: nice -n 19 scripts/fashion-mlp-5.sh RESULTS [--done-in PART ...]
set -euo pipefail
results=${1:?results folder}
shift
config=paper-question-5-fashion-mlp
out=results/published/fifth-edition/fashion-mlp
mkdir -p "$out"
drkd-bench tune "$config" --results "$results" --workers "${WORKERS:-2}" \
  --memory-format channels_last
drkd-bench grid "$config" --results "$results" --workers "${WORKERS:-2}" --no-report --quiet \
  --memory-format channels_last "$@"
drkd-bench export --results "$results" --out "$out/runs.csv.gz" --every 5
gzip -c "$results/optuna.journal" > "$out/optuna.journal.gz"
drkd-bench report --from "$out/runs.csv.gz" --out "$out" --config "$config"

#!/usr/bin/env bash
# The precision equivalence study (benchmark/configs/precision-equivalence.yaml): each task in
# three arms, each arm its own results folder (the memory format is not part of a cell, so two
# formats of one cell must live in two stores), then the analysis. Resumable: rerun after an
# interruption; finished cells are skipped. Run from the repository root:
#   nice -n 19 bash scripts/precision-equivalence.sh [RESULTS (default results/precision)]
set -euo pipefail
results=${1:-results/precision}
workers=${WORKERS:-1}
arms=("fp32-contiguous:--memory-format contiguous"
      "fp32-channels_last:--memory-format channels_last"
      "bf16-channels_last:--memory-format channels_last --set train.precision=bf16")
for task in digits/mlp digits/cnn8 fashion-mnist/mlp fashion-mnist/cnn28s; do
  for arm in "${arms[@]}"; do
    name=${arm%%:*}
    # shellcheck disable=SC2086  # the arm's flags are words
    drkd-bench grid precision-equivalence --task "$task" --results "$results/$name" \
      --workers "$workers" --no-report --quiet ${arm#*:}
  done
done
python scripts/precision-equivalence.py "$results" results/published/precision-equivalence

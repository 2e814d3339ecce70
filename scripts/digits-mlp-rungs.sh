#!/usr/bin/env bash
# The fifth edition's answer against the training budget on digits `mlp` (issue: the paper's
# question at convergence, item 3): the comparison of benchmark/configs/paper-question-5-digits.yaml
# again at the ladder's other rungs, each rung tuned at its own budget under the same protocol
# (12 trials a study, 5-fold cross-validated, 3 fresh seeds a re-score, 20 grid seeds), into its
# own results folder (Optuna's study names do not carry the budget, so a rung's studies need
# their own journal). The budgets the config names (clean 120, noisy 60 epochs) are its main
# grid's and are not run again here. Each rung's runs are exported as a part:
#   results/published/fifth-edition/digits/parts/rung-<E>.csv.gz
# Declared before any rung ran. Resumable: rerun; studies top up to their budget, grids skip
# finished cells.
# Usage: scripts/digits-mlp-rungs.sh RESULTS [E ...]     (default: 30 60 120 240)
set -euo pipefail
results=${1:?results folder}
shift
rungs=${*:-30 60 120 240}
out=results/published/fifth-edition/digits/parts
mkdir -p "$out"
for e in $rungs; do
  case $e in
    60) tasks='digits:clean/mlp' ;;    # noisy mlp's own budget is 60: the main grid
    120) tasks='digits:sym40/mlp' ;;   # clean mlp's own budget is 120: the main grid
    *) tasks='digits:*/mlp' ;;
  esac
  set_epochs="task_train={\"digits:clean/mlp\": {epochs: $e}, \"digits:sym40/mlp\": {epochs: $e}}"
  r="$results/rung-$e"
  drkd-bench tune paper-question-5-digits --task "$tasks" --set "$set_epochs" --results "$r" \
    --workers "${WORKERS:-1}"
  drkd-bench grid paper-question-5-digits --task "$tasks" --set "$set_epochs" --results "$r" \
    --workers "${WORKERS:-1}" --no-report --quiet
  drkd-bench export --results "$r" --out "$out/rung-$e.csv.gz" --every 30
done

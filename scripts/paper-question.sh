#!/usr/bin/env bash
# The published fourth edition (results/published/paper-question/), one phase at a time: the
# honest-protocol studies of one group of tasks, a pilot of the grid on its first 5 seeds, the
# grid, and the field's grid (clean tasks only). The edition is longer than one sitting, so it
# runs task by task into one store; each phase exports its runs to parts/ (gzipped, committed), and the
# edition's runs.csv is their union (scripts/paper-question.sh RESULTS --publish).
# Resumable: rerun a phase after an interruption; the studies are topped up to their budget (a
# total, never exceeded) and the grids skip finished cells.
# Usage: scripts/paper-question.sh RESULTS 'TASK-PATTERN' [pilot]   e.g. 'digits:*/*'
#        SEEDS=K scripts/paper-question.sh RESULTS 'TASK-PATTERN'   (the grids on seeds 0..K-1
#                                      only: a phase sized to what one sitting can finish;
#                                      FIELD_SEEDS=J gives the field's grid, question 3, its own J)
#        scripts/paper-question.sh RESULTS --publish
set -euo pipefail
results=${1:?results folder}
out=results/published/paper-question
if [ "${2:-}" = "--publish" ]; then
    python3 - "$out" <<'PY'
import sys, pathlib, pandas as pd
out = pathlib.Path(sys.argv[1])
parts = sorted((out / "parts").glob("*.csv.gz"))
frame = pd.concat([pd.read_csv(p, low_memory=False) for p in parts], ignore_index=True)
# a run exported by two phases once (a row is a run's epoch; a tuning run has one row)
frame = frame.drop_duplicates(["run_id", "epoch"])
# gzipped (the epoch rows of every run are about 100 MB as text), byte-stable: no timestamp
frame.to_csv(out / "runs.csv.gz", index=False,
             compression={"method": "gzip", "compresslevel": 9, "mtime": 0})
print(f"{len(parts)} parts -> {frame['run_id'].nunique()} runs in {out / 'runs.csv.gz'}")
PY
    drkd-bench report --from "$out/runs.csv.gz" --out "$out" --config paper-question
    exit 0
fi
task=${2:?task pattern, e.g. 'digits:*/*'}
for method in ce drkd tfkd-self; do
  drkd-bench tune paper-question --method "$method" --task "$task" --workers 2 --results "$results"
done
if [ "${3:-}" = "pilot" ]; then
  drkd-bench grid paper-question --task "$task" --seeds 5 --no-report --results "$results"
  exit 0
fi
drkd-bench grid paper-question --task "$task" ${SEEDS:+--seeds "$SEEDS"} --no-report \
    --results "$results"
if drkd-bench grid paper-question-field --task "$task" --dry-run >/dev/null 2>&1; then
  field_seeds=${FIELD_SEEDS:-${SEEDS:-}}
  drkd-bench grid paper-question-field --task "$task" ${field_seeds:+--seeds "$field_seeds"} --no-report \
      --results "$results"
fi
mkdir -p "$out/parts"
name=$(printf '%s' "$task" | sed 's/[:/]/-/g; s/\*/all/g')   # digits:*/* -> digits-all-all
drkd-bench export --results "$results" --out "$results/export-$name.csv"
python3 scripts/paper-question-part.py "$results/export-$name.csv" "$out/parts/$name.csv" \
    "$results/optuna.journal" "$task"
gzip -9nf "$out/parts/$name.csv"   # -n: no timestamp, byte-stable; a phase's runs, epoch by epoch, are tens of MB as text

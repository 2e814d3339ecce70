"""A phase of the fourth edition, as committed: the training runs of the cells the current
paper-question grids have for the phase's tasks (a cell trained under an earlier rule of the code,
with another hash, is left out) and every tuning run.
Usage: python scripts/paper-question-part.py EXPORT.csv OUT.csv OPTUNA-STORAGE TASK-PATTERN"""
import sys
import pandas as pd
from benchmark import config, grid
from benchmark.commands.common import select_tasks
src, out, journal, pattern = sys.argv[1:5]
hashes = set()
for name in ("paper-question", "paper-question-field"):
    cfg = select_tasks(config.load_grid(name), [pattern])
    hashes |= {c.hash for c in grid.expand(cfg, journal)}
frame = pd.read_csv(src, low_memory=False)
train = frame["kind"] == "train"
stale = train & ~frame["cell_hash"].isin(hashes)
print(f"{frame.loc[train, 'run_id'].nunique()} training runs, {frame.loc[stale, 'run_id'].nunique()} of cells no current grid has (dropped); {len(hashes)} current cells")
frame[~stale].to_csv(out, index=False)

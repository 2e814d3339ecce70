"""A phase of the fourth edition, as committed: the training runs of the cells the current
paper-question grids have for the phase's tasks (a cell trained under an earlier rule of the code,
with another hash, is left out) and the tuning runs of those tasks (studies, trials, re-scores,
their teachers; a store that ran earlier phases holds theirs too).
Usage: python scripts/paper-question-part.py EXPORT.csv OUT.csv OPTUNA-STORAGE TASK-PATTERN"""
import fnmatch
import sys

import pandas as pd

from benchmark import config
from benchmark.commands.common import select_tasks
from benchmark.jobs import grid

src, out, journal, pattern = sys.argv[1:5]
hashes = set()
for name in ("paper-question", "paper-question-field"):
    cfg = select_tasks(config.load_grid(name), [pattern])
    hashes |= {c.hash for c in grid.expand(cfg, journal)}
frame = pd.read_csv(src, low_memory=False)
train = frame["kind"] == "train"
stale = train & ~frame["cell_hash"].isin(hashes)
task = frame["dataset"].astype(str) + "/" + frame["arch"].astype(str)
elsewhere = ~train & ~task.map(lambda t: fnmatch.fnmatchcase(t, pattern))
runs = {name: frame.loc[rows, "run_id"].nunique()
        for name, rows in (("train", train), ("stale", stale), ("elsewhere", elsewhere))}
print(f"{runs['train']} training runs, {runs['stale']} of cells no current grid has (dropped); "
      f"{len(hashes)} current cells")
print(f"{runs['elsewhere']} tuning runs of other tasks (left to their phase)")
frame[~stale & ~elsewhere].to_csv(out, index=False)

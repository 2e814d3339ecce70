"""Where README's main job spends its time: ``drkd-bench grid quick`` into a fresh results
folder, for this checkout and (``--before REV``) an earlier commit, alternated, each timed whole
and broken down from what its store recorded. Appends to results/published/speed/quick-profile.csv.

The breakdown, in worker-seconds (two workers: twice the cells' wall time at most):
- steps: the training epochs' own time (metric ``cost_train_seconds``: forward, backward, SGD,
  teacher forwards, augmentation);
- evaluation: each epoch's time after its training (``epoch_seconds`` − ``cost_train_seconds``:
  validation and test passes);
- cell overhead: each run's wall time in the store minus its epochs (start-up of the run, data,
  model, checkpoints, MLflow logging, the model artifact);
- and from the command's own lines: before the cells (imports, store, worker start-up), the
  cells' wall time, and after them (the report, its MLflow run, the index).

Usage: python scripts/quick-profile.py [--before REV] [--repeats N] [--csv FILE]
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import side_by_side  # scripts/: beside this file

ROOT = Path(__file__).resolve().parents[1]


def breakdown(results: Path) -> dict[str, float]:
    """Worker-seconds by part, from the store the quick grid wrote."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{(results / 'mlflow.db').resolve()}")
    exp = client.get_experiment_by_name("drkd-bench")
    runs = client.search_runs([exp.experiment_id], max_results=10_000)
    parts = {"steps": 0.0, "evaluation": 0.0, "cell_overhead": 0.0, "cells": 0}
    for r in runs:
        wall = ((r.info.end_time or r.info.start_time) - r.info.start_time) / 1000
        if r.info.status != "FINISHED" or r.data.tags.get("kind", "train") != "train":
            continue
        train = client.get_metric_history(r.info.run_id, "cost_train_seconds")
        epoch = client.get_metric_history(r.info.run_id, "epoch_seconds")
        steps, epochs = sum(m.value for m in train), sum(m.value for m in epoch)
        parts["steps"] += steps
        parts["evaluation"] += epochs - steps
        parts["cell_overhead"] += wall - epochs
        parts["cells"] += 1
    return parts


def run_quick(source: Path, results: Path) -> dict[str, float]:
    """The command's wall time, split where its lines say: before the cells (imports, store,
    workers), the cells (the grid's own "N trained ... S s" line), after them (the report, its
    MLflow run, the index)."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "benchmark.cli", "grid", "quick",
                             "--results", str(results), "--quiet"], cwd=source, env=env,
                            stdout=subprocess.PIPE, text=True)
    cells_done, cells = None, float("nan")
    for line in proc.stdout:
        found = re.search(r"^quick: \d+ trained, .* ([\d.]+)s$", line.strip())
        if found:
            cells_done, cells = time.perf_counter(), float(found.group(1))
    if proc.wait() != 0:
        raise SystemExit(f"grid quick failed with the code at {source}")
    end = time.perf_counter()
    return {"wall_s": end - start, "cells_s": cells,
            "before_cells_s": (cells_done - start) - cells, "report_s": end - cells_done}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", help="an earlier commit to time beside this checkout")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--csv", default=str(ROOT / "results" / "published" / "speed" /
                                        "quick-profile.csv"))
    args = p.parse_args()

    def one(source: Path, scratch: Path) -> dict:
        times = run_quick(source, scratch)
        return {k: round(v, 1) for k, v in {**times, **breakdown(scratch)}.items()}

    side_by_side.append_csv(side_by_side.run(one, args.before, args.repeats), args.csv)


if __name__ == "__main__":
    main()

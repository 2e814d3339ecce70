"""The compute a results store holds, per task: the wall-clock seconds of its runs (start to end,
one thread each) by kind (tuning trials, their teachers, re-scores, grid cells), their count, and
the chips, precisions and memory formats they ran with. A run's wall time is its core time only
when nothing else shared its core: runs that shared two cores with other jobs overstate it.

From an exported runs CSV (a published part, whose store is gone) it estimates each run's
training time as its mean epoch time times its epochs (the rows `export --every K` kept stand
for the others; start-up, evaluation outside the epochs and logging are left out), for the runs
with epochs only: a part keeps no per-epoch rows of tuning trials, so their compute is not
counted from a part.

    python scripts/store-compute.py RESULTS|PART.csv.gz [RESULTS|PART.csv.gz ...]
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd


def runs(results: Path) -> pd.DataFrame:
    from benchmark.store import location, tracking

    t = tracking.Tracker(location.default_uri(results), results=results)
    rows = []
    for r in t.runs(""):
        tags, info = r.data.tags, r.info
        if not info.end_time or tags.get("kind") in (None, "report", "superseded"):
            continue
        rows.append({"task": f"{tags.get('dataset', '?')}/{tags.get('arch', '?')}",
                     "kind": tags["kind"], "status": info.status,
                     "seconds": (info.end_time - info.start_time) / 1000.0,
                     "chip": f"{tags.get('cpu_vendor', '')} {tags.get('cpu', '')}".strip(),
                     "capability": tags.get("cpu_capability", ""),
                     "precision": r.data.params.get("train.precision", ""),
                     "memory_format": tags.get("memory_format", ""), "store": results.name})
    return pd.DataFrame(rows)


def runs_from_csv(path: Path) -> pd.DataFrame:
    from analysis import load

    epochs = load.epochs_from_csv(path, environment=True)
    epochs = epochs[epochs["status"] == "FINISHED"]
    rows = []
    for _, g in epochs.groupby("run_id", sort=False):
        first = g.iloc[0]
        kind = first["kind"]
        if kind in ("report", "superseded", "study", "trial", "rescore"):
            continue
        timed = g.dropna(subset=["epoch", "epoch_seconds"]) if "epoch_seconds" in g else g[:0]
        seconds = float(timed["epoch_seconds"].mean() * timed["epoch"].max()) if len(timed) \
            else 0.0
        tag = {k: str(first.get(f"tag.{k}", "") or "")
               for k in ("cpu_vendor", "cpu", "cpu_capability", "memory_format")}
        rows.append({"task": f"{first['dataset']}/{first['arch']}",
                     "kind": kind,
                     "status": "FINISHED", "seconds": seconds,
                     "chip": f"{tag['cpu_vendor']} {tag['cpu']}".strip(),
                     "capability": tag["cpu_capability"],
                     "precision": str(first.get("param.train.precision", "") or ""),
                     "memory_format": tag["memory_format"], "store": path.name})
    return pd.DataFrame(rows)


def core_hours(frame: pd.DataFrame) -> pd.DataFrame:
    """Hours per task and kind of run, and the total: the grid's cells, the tuning teachers and
    the studies. A study's run spans its trials and its re-scores (whose own runs are their
    summaries), one worker after another or several side by side (`tune --workers`): its wall
    time is its core time with one worker, and its trials' own times add up to more than it
    with several, so a study counts the larger of the two (with several workers that leaves out
    the re-scores' trainings, which no run times)."""
    table = (frame.pivot_table(index="task", columns="kind", values="seconds", aggfunc="sum",
                               fill_value=0.0) / 3600)
    studies = pd.concat([table.get(k, pd.Series(0.0, index=table.index))
                         for k in ("study", "trial")], axis=1).max(axis=1)
    rest = [k for k in ("train", "tuning-teacher") if k in table]
    table["total core-hours"] = studies + table[rest].sum(axis=1)
    return table.round(3)


def main(folders: list[Path]) -> str:
    frame = pd.concat([runs_from_csv(f) if f.is_file() else runs(f) for f in folders],
                      ignore_index=True)
    table = core_hours(frame)
    frame = frame[frame["kind"] != "study"]
    counts = frame.groupby("task").size().rename("runs")
    out = [f"Stores: {', '.join(str(f) for f in folders)}", "",
           "Core-hours (a store's runs: wall time; a part's: mean epoch time × epochs; one "
           "thread a run) per task and kind of run:", "",
           table.join(counts).to_string(), "",
           f"All tasks: {table['total core-hours'].sum():.2f} core-hours in {len(frame)} runs.",
           "", "Chips, precision and memory format (runs):", "",
           frame.groupby(["chip", "capability", "precision", "memory_format"]).size()
           .rename("runs").to_string(), ""]
    return "\n".join(out)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    print(main([Path(a) for a in sys.argv[1:]]))

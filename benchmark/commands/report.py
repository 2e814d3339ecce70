"""``drkd-bench report``: tables and figures from tracked results into RESULTS/."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.commands.common import (
    UsageError,
    analysis_flags,
    analysis_settings,
    os_error,
    pilot,
    writable,
)


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("report", help="tables and figures from tracked results into RESULTS/",
                       description="Read every run of the tracking store (or an exported CSV) "
                                   "and write tables (Markdown, CSV, LaTeX) and figures (PNG, "
                                   "PDF) under RESULTS/tables and RESULTS/figures.")
    p.add_argument("--from", dest="from_csv", help="an exported runs CSV instead of MLflow")
    p.add_argument("--tracking-uri")
    p.add_argument("--results", default="results")
    p.add_argument("--out", help="output folder (default: RESULTS)")
    analysis_flags(p)
    return p


def run(args) -> int:
    from analysis import report

    out = Path(args.out or args.results)
    analysis = analysis_settings(args)
    epochs, source = pilot(args)
    if epochs.empty or not (epochs["kind"] == "train").any():
        raise UsageError(f"no runs in {source}: nothing to report")
    if analysis.aggregate:
        from analysis import aggregate, load

        done = epochs[(epochs["kind"] == "train") & (epochs["status"] == "FINISHED")]
        tasks = aggregate.tasks_of(load.runs_from_epochs(done))
        if len(tasks) < 2:
            raise UsageError(f"--aggregate: an aggregate across tasks needs at least two tasks "
                             f"(dataset x condition x architecture); {source} has {len(tasks)}")
    writable(out)
    mixed = report.mixed_cells(epochs)
    if len(mixed):
        first = mixed.iloc[0]
        print(f"drkd-bench: warning: {len(mixed)} cells have finished runs with different "
              f"settings under one label (e.g. {first['dataset']}/{first['arch']}/"
              f"{first['variant']}/seed{first['seed']}: {first['hashes']} cell hashes); the "
              "report pools them. 'drkd-bench grid CONFIG' reports its own cells only",
              file=sys.stderr)
    try:
        written = report.build(epochs, out, source=source, analysis=analysis)
    except OSError as e:
        print(f"drkd-bench: report not written: {os_error(e, out)}", file=sys.stderr)
        return 1
    print(f"report: {len(written)} files under {out}/ (see {out}/README.md)")
    return 0

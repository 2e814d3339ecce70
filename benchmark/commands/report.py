"""``drkd-bench report``: tables and figures from tracked results, one folder per grid under
RESULTS/ (or one exported CSV's into --out)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.commands.common import (
    UsageError,
    analysis_block,
    analysis_flags,
    analysis_settings,
    os_error,
    pilot,
    writable,
)


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("report", help="tables and figures from tracked results, a folder per grid",
                       description="Read the runs of the tracking store and write each grid's "
                                   "report (README.md, report.html, tables as Markdown, CSV and "
                                   "LaTeX, figures as PNG and PDF) into its own folder, "
                                   "RESULTS/<grid>/, with an index of them in RESULTS/README.md; "
                                   "a grid's report holds its runs only. With --from, one "
                                   "exported CSV's report into --out (default RESULTS).")
    p.add_argument("--from", dest="from_csv", help="an exported runs CSV instead of MLflow")
    p.add_argument("--tracking-uri")
    p.add_argument("--results", default="results")
    p.add_argument("--out", help="output folder (default: RESULTS/<grid>, or RESULTS with "
                                 "--from)")
    p.add_argument("--grid", help="only this grid's report (default: every grid's)")
    p.add_argument("--pool-grids", action="store_true",
                   help="one report over the runs of every grid together, into RESULTS/"
                        "all-grids (or --out): runs under one label from different grids are "
                        "then averaged together")
    analysis_flags(p)
    return p


def run(args) -> int:
    from analysis import report

    out = Path(args.out or args.results)
    block = analysis_block(args)
    analysis = analysis_settings(args, block)
    epochs, source = pilot(args)
    if epochs.empty or not (epochs["kind"] == "train").any():
        raise UsageError(f"no runs in {source}: nothing to report")
    variants = sorted(set(epochs.loc[epochs["kind"] == "train", "variant"]))
    # a baseline the config names must be in the runs (the default, ce, may be absent from a
    # grid that compares other methods: its report then has no baseline comparisons)
    if "baseline" in block and analysis.baseline not in variants:
        raise UsageError(f"analysis.baseline: {analysis.baseline!r} is not a variant of the runs "
                         f"in {source}; theirs: {', '.join(variants)}")
    if analysis.aggregate:
        from analysis import aggregate, load

        done = epochs[(epochs["kind"] == "train") & (epochs["status"] == "FINISHED")]
        tasks = aggregate.tasks_of(load.runs_from_epochs(done))
        if len(tasks) < 2:
            raise UsageError(f"--aggregate: an aggregate across tasks needs at least two tasks "
                             f"(dataset x condition x architecture); {source} has {len(tasks)}")
    if not args.from_csv or args.grid:
        return _per_grid(args, epochs, source, analysis)
    writable(out)
    return _write(report, epochs, out, source, analysis)


def _per_grid(args, epochs, source, analysis) -> int:
    """The store's reports: each grid's into its folder (or the one --grid names, or all pooled
    with --pool-grids), then the index of the results folder."""
    from analysis import folders, report

    grids = folders.grids_of(epochs)
    results = Path(args.results)
    if args.pool_grids:
        out = Path(args.out or results / "all-grids")
        print(f"pooling {len(grids)} grid(s) ({', '.join(grids)}) into one report, as asked "
              "(--pool-grids): runs under one label from different grids are averaged together")
        todo = [(epochs, out, None)]
    elif args.grid:
        if args.grid not in grids:
            raise UsageError(f"--grid {args.grid}: no runs of that grid in {source}; its grids: "
                             f"{', '.join(grids) or 'none'}")
        todo = [(folders.of_grid(epochs, args.grid),
                 Path(args.out or folders.grid_folder(results, args.grid)), args.grid)]
    else:
        if args.out and len(grids) > 1:
            raise UsageError(f"--out: {source} holds {len(grids)} grids ({', '.join(grids)}); "
                             "give --grid NAME, or --pool-grids to pool them")
        todo = [(folders.of_grid(epochs, g), Path(args.out or folders.grid_folder(results, g)), g)
                for g in grids]
    for _, out, _ in todo:
        writable(out)
    code = 0
    for frame, out, grid in todo:
        written = _write(report, frame, out, source, analysis)
        if grid is not None and written == 0:  # a grid's report, whole: marked for the index
            folders.mark(out, grid)
        code = max(code, written)
    if not args.out and not args.from_csv:
        folders.write_index(results)
    return code


def _write(report, epochs, out: Path, source: str, analysis) -> int:
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

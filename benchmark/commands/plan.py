"""``drkd-bench plan``: size a grid from a pilot: seeds needed per comparison."""
from __future__ import annotations

import argparse
from pathlib import Path

from benchmark.commands.common import (
    UsageError,
    analysis_flags,
    analysis_settings,
    load_config,
    pilot,
    set_flag,
    writable,
)


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("plan", help="size a grid from a pilot: seeds needed per comparison",
                       description="Read a pilot (the tracking store, or an exported runs CSV "
                                   "with --from) and print, for every paired comparison of the "
                                   "report, the observed SD of the paired differences, the "
                                   "minimum detectable difference (MDE, at --power, two-sided "
                                   "alpha) at the pilot's seeds and at the seeds a config asks "
                                   "for, and the seeds needed to detect --detect points: at "
                                   "alpha, and at alpha / m (the first step of Holm over a family "
                                   "of m comparisons: the seeds that keep the power after "
                                   "correction). See docs/statistics.md.",
                       epilog="example: drkd-bench plan --from results/published/"
                              "fashion-mnist-field/runs.csv --detect 0.3 --config "
                              "fashion-mnist-field",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--from", dest="from_csv", help="an exported runs CSV instead of MLflow")
    p.add_argument("--tracking-uri")
    p.add_argument("--results", default="results")
    p.add_argument("--detect", type=float, default=0.3, metavar="POINTS",
                   help="the difference to detect, in percentage points (default 0.3)")
    p.add_argument("--seeds", type=int, help="also the MDE at this many seeds")
    p.add_argument("--variant", action="append", default=[], metavar="LABEL",
                   help="only comparisons of this variant (repeatable; default: all)")
    p.add_argument("--out", help="also write the plan as CSV here")
    set_flag(p)
    analysis_flags(p, aggregate=False)
    return p


def run(args) -> int:
    from analysis import plan

    if not 0 < args.detect < float("inf"):
        raise UsageError("--detect must be a finite number > 0 (percentage points)")
    if args.seeds is not None and args.seeds < 2:
        raise UsageError("--seeds must be >= 2")
    analysis = analysis_settings(args)
    seeds = args.seeds
    if seeds is None and args.config:
        seeds = len(load_config(args).seeds)
    epochs, source = pilot(args)
    frame = plan.plan(epochs, args.detect, seeds, analysis, variants=args.variant)
    if frame.empty:
        raise UsageError(f"no paired comparison in {source}: a pilot needs finished runs of "
                         "two variants on the same seeds")
    if args.out:
        writable(Path(args.out).parent)
        frame.to_csv(args.out, index=False)
    print(plan.render(frame, args.detect, seeds, analysis, source))
    return 0

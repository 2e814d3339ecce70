"""``drkd-bench reproduce``: retrain a sample of a published edition's cells and check their
final metrics bit for bit."""
from __future__ import annotations

import argparse
import signal
import time
from pathlib import Path

from benchmark.commands.common import UsageError, interrupt, read_runs_csv


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("reproduce", help="retrain a sample of a published edition's cells and "
                                         "check their final metrics bit for bit",
                       description="Rebuild cells of a published edition from the parameters "
                                   "their runs recorded (each must hash to its recorded cell "
                                   "hash), retrain them (and any pretrained self-teacher) in a "
                                   "temporary store on the CPU with the thread count they "
                                   "recorded (one when none), and print per "
                                   "cell whether the final metrics are bit-identical, their "
                                   "difference otherwise (test top-1 in points and test images)"
                                   ". It says first whether bit-identity is expected here (the "
                                   "recorded CPU capability and torch, numpy and oneDNN "
                                   "versions); where it is not, the sample's verdict is "
                                   "statistical: the retrained minus published test top-1, "
                                   "paired TOST within one seed SD of the edition. Exit code 0 "
                                   "when every cell is identical, or equivalent where identity "
                                   "is not expected; 1 otherwise, with the reason.",
                       epilog="example: drkd-bench reproduce results/published/"
                              "fashion-mnist-field --cells 5",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("edition", help="an edition's folder (holding runs.csv or runs.csv.gz) "
                                   "or a runs CSV")
    p.add_argument("--cells", type=int, default=3, metavar="N",
                   help="how many cells to draw at random (default 3)")
    p.add_argument("--cell", action="append", default=[], metavar="KEY",
                   help="a cell to retrain, e.g. fashion-mnist/mlp/ce/seed0 (repeatable; "
                        "instead of a random draw)")
    p.add_argument("--seed", type=int, default=0, help="the random draw's seed (default 0)")
    p.add_argument("--data-root", help="where datasets are looked for (also $DRKD_DATA)")
    return p


def run(args) -> int:
    from analysis import load
    from benchmark.jobs import reproduce

    path = Path(args.edition)
    csv = load.edition_csv(path) if path.is_dir() else path
    if args.cells < 1:
        raise UsageError("--cells must be >= 1")
    frame = read_runs_csv(csv, flag="")
    cells = reproduce.published_cells(frame)
    rebuilt = [c for c in cells if not c.problem]
    if not cells:
        raise UsageError(f"{csv}: no finished training run: nothing to reproduce")
    if not rebuilt and not args.cell:
        raise UsageError(f"{csv}: none of its {len(cells)} cells rebuilds with this code "
                         f"({cells[0].problem})")
    if not args.cell and args.cells > len(rebuilt):
        raise UsageError(f"--cells {args.cells}: the edition has {len(rebuilt)} cells this code "
                         f"rebuilds; give at most {len(rebuilt)}")
    expected, why = reproduce.expectation(frame)
    print(why)
    started = time.perf_counter()
    previous = signal.signal(signal.SIGTERM, interrupt)  # stopped: its temporary store goes
    try:
        results = reproduce.run(frame, args.cell, args.cells, args.seed, args.data_root)
    finally:
        signal.signal(signal.SIGTERM, previous)
    same, sizes = 0, {}
    for cell, new in results:
        name = cell.spec.data.name
        if name not in sizes:
            sizes[name] = reproduce.test_images(cell, args.data_root)
        ok, line = reproduce.verdict_line(cell, new, sizes[name])
        same += ok
        print(line)
    print(f"{same} of {len(results)} identical ({time.perf_counter() - started:.0f}s)")
    for line in reproduce.environment(frame):
        print(f"  environment: {line}")
    if same == len(results):
        return 0
    if expected:
        print(f"not reproduced: {len(results) - same} cell(s) differ where bit-identity is "
              "expected")
        return 1
    verdict, lines = reproduce.sample_verdict(frame, results)
    print("\n".join(lines))
    return 0 if verdict in ("identical", "equivalent") else 1

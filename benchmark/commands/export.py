"""``drkd-bench export``: one CSV of every run (cell key, params, per-epoch metrics)."""
from __future__ import annotations

import argparse
from pathlib import Path

from benchmark.commands.common import UsageError, store_uri, writable


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("export", help="one CSV of every run (cell key, params, per-epoch "
                                      "metrics)")
    p.add_argument("--tracking-uri")
    p.add_argument("--results", default="results")
    p.add_argument("--out", default=None, help="CSV path (default: RESULTS/runs.csv; a name "
                                               "ending .gz is gzipped)")
    p.add_argument("--every", type=int, default=1, metavar="K",
                   help="keep every K-th epoch row of a run and its last (default 1: all): a "
                        "480-epoch ladder's records without the rows no figure reads")
    return p


def run(args) -> int:
    from analysis import load

    uri = store_uri(args)
    out = Path(args.out or Path(args.results) / "runs.csv")
    if args.every < 1:
        raise UsageError("--every must be >= 1")
    frame = load.epochs_from_tracking(uri)
    if frame.empty:
        raise UsageError(f"no runs in {uri}: nothing to export")
    if args.every > 1:
        frame = load.thin_epochs(frame, args.every)
    writable(out.parent)
    tmp = out.with_name(f".{out.name}.tmp")  # the name hides .gz from pandas: say it
    frame.to_csv(tmp, index=False, compression="gzip" if out.suffix == ".gz" else None)
    tmp.replace(out)
    print(f"exported {frame['run_id'].nunique() if len(frame) else 0} runs, {len(frame)} epoch "
          f"rows to {out}")
    return 0

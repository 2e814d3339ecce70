"""``drkd-bench ui``: open the results in the MLflow UI (and the studies in optuna-dashboard)."""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from benchmark.commands.common import UsageError, store_uri


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("ui", help="open the results in the MLflow UI (and the studies in "
                                  "optuna-dashboard)",
                       description="Starts the MLflow UI on the tracking store and prints one "
                                   "URL: the runs table in training mode with the newest "
                                   "grid's results (--all-runs: every training run instead): "
                                   "final "
                                   "test/validation top-1 and ECE, grouped by dataset, arch and "
                                   "variant (tuning runs filtered out). When "
                                   "optuna-dashboard is installed (pip install -e '.[ui]') and "
                                   "there are studies, it starts that too. Ctrl-C stops both.")
    from benchmark.store.ui import DEFAULT_DASHBOARD_PORT, DEFAULT_HOST, DEFAULT_PORT

    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"address to serve on (default {DEFAULT_HOST})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"MLflow UI port (default {DEFAULT_PORT}, where the links studies write "
                        "point; 0: a free one)")
    p.add_argument("--dashboard-port", type=int, default=DEFAULT_DASHBOARD_PORT,
                   help=f"optuna-dashboard port (default {DEFAULT_DASHBOARD_PORT}; 0: a free "
                        "one)")
    p.add_argument("--storage", help="Optuna storage (default: RESULTS/optuna.journal)")
    p.add_argument("--all-runs", action="store_true",
                   help="print the URL of the table of every training run (failed ones "
                        "included) instead of the results view")
    p.add_argument("--tracking-uri")
    p.add_argument("--results", default="results")
    return p


def run(args) -> int:

    from benchmark.store import tracking, ui

    for flag in ("port", "dashboard_port"):
        if not 0 <= getattr(args, flag) < 65536:
            raise UsageError(f"--{flag.replace('_', '-')} must be a port number (0: a free one)")
    uri = store_uri(args)
    tracker = tracking.Tracker(uri, results=args.results)
    storage = args.storage or str(Path(args.results) / "optuna.journal")
    def stop(signum, frame):  # SIGTERM stops the servers as Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        ui.serve(tracker, storage, args.host, args.port, args.dashboard_port,
                 say=lambda line: print(line, flush=True),  # the URLs: standard output
                 note=lambda line: print(line, file=sys.stderr, flush=True),
                 view=ui.ALL_RUNS_KEY if args.all_runs else ui.VIEW_KEY)
    except RuntimeError as e:
        raise UsageError(str(e)) from None
    except KeyboardInterrupt:
        print("drkd-bench ui: stopped", file=sys.stderr)
    return 0

"""``drkd-bench grid``: run a benchmark grid from a YAML config."""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from benchmark.commands.common import (
    UsageError,
    common_flags,
    executor_flags,
    grid_config,
    os_error,
    runtime,
    say_if_busy,
    set_flag,
    storage_default,
    task_flag,
)
from benchmark.store.runtime import start_worker_server


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("grid", help="run a benchmark grid from a YAML config",
                       description="Run every cell of a grid config (a shipped name such as "
                                   "'quick' or a path), skipping cells already finished in the "
                                   "tracking store, then write the report.")
    p.add_argument("config", help="shipped config name (quick, fashion-mnist, paper-cifar100, "
                                  "paper-tiny-imagenet) or a YAML path")
    p.add_argument("--workers", type=int, help="local worker processes, the CPU threads divided "
                                               "between them (default: one per CPU core on the "
                                               "CPU, 1 with CUDA)")
    p.add_argument("--dry-run", action="store_true", help="print the cells and their order only")
    p.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-cell lines")
    p.add_argument("--verbose", action="store_true", help="one line per epoch of every cell too "
                                                          "(always in each run's MLflow metrics)")
    p.add_argument("--storage", help="Optuna storage for 'hyperparameters: tuned' (default: "
                                     "RESULTS/optuna.journal)")
    task_flag(p)
    set_flag(p)
    p.add_argument("--seeds", type=int, metavar="K", help="only the config's first K seeds (a "
                   "pilot to size the grid from with 'drkd-bench plan'; the cells are the "
                   "grid's own, so the full grid later skips them)")
    p.add_argument("--done-in", action="append", default=[], metavar="PART.csv[.gz]",
                   help="an exported part of this grid ('drkd-bench export') finished on another "
                        "machine or store: its finished cells are not trained again here "
                        "(repeatable). A self-teacher whose weights a remaining cell needs is "
                        "the exception: weights do not travel in a CSV")
    executor_flags(p)
    common_flags(p)
    return p


def run(args) -> int:
    if args.executor == "local" and args.workers != 1 and not args.dry_run:
        # every run that may have several workers: the server's imports (torch, the training
        # code) beside this process's own, from the start
        start_worker_server()
    from benchmark.jobs import grid, runner

    cfg = grid_config(args)
    if args.seeds is not None:
        if not 1 <= args.seeds <= len(cfg.seeds):
            raise UsageError(f"--seeds {args.seeds}: give 1 to {len(cfg.seeds)} (the config's "
                             "seeds)")
        cfg = dataclasses.replace(cfg, seeds=cfg.seeds[:args.seeds])
    cells = grid.expand(cfg, args.storage or storage_default(cfg, args.results))
    elsewhere = _done_in(args.done_in)
    if args.dry_run:
        deps = grid.dependencies(cells)
        by_hash = {c.hash: c for c in cells}
        done, where = _finished(args)
        done |= elsewhere
        where = " and ".join(w for w in (where, *args.done_in) if w)
        ours = sum(c.hash in done for c in cells)
        print(f"{cfg.name}: {len(cells)} cells"
              + (f", {ours} finished in {where} (marked 'done')" if where else ""))
        for i, c in enumerate(cells, 1):
            wait = f"  (after {by_hash[deps[c.hash]].key})" if c.hash in deps else ""
            mark = "  done" if c.hash in done else ""
            print(f"{i:>4}. {c.key}  {c.train.epochs} epochs{wait}{mark}")
        for line in grid.describe_variants(cfg):
            print(line)
        return 0
    rt = runtime(args)
    calibrated = None if args.workers else calibrated_workers(cells, rt)
    workers = args.workers or rt.default_workers(len(cells), calibrated)
    if calibrated == 1 and workers == 1:  # the calibration's split: one process, every thread
        from benchmark.store.runtime import cores

        rt = dataclasses.replace(rt, threads=cores())
        rt.apply()
    runner.check_data(cells, rt.data_root)
    tracker = rt.tracker()
    say_if_busy(workers, rt, args.executor)
    outcome = grid.run(cells, tracker, rt, workers=workers, quiet=args.quiet,
                       verbose=args.verbose, executor=args.executor,
                       ray_address=args.ray_address,
                       tags={"grid": cfg.name, "grid_config": cfg.digest},
                       done_elsewhere=elsewhere)
    aliases = grid.coincident(cfg, args.storage or storage_default(cfg, args.results))
    if aliases and grid.tag_aliases(tracker, aliases):
        for h, labels in aliases.items():
            same = next(c for c in cells if c.hash == h)
            print(f"  {', '.join(labels)} on {same.data.task}/{same.arch} seed {same.seed}: its "
                  f"study chose {same.label}'s own settings; that cell stands for both")
    print(f"{cfg.name}: {len(outcome.finished)} trained, {len(outcome.skipped)} already done, "
          f"{len(outcome.failed)} failed, {outcome.seconds:.1f}s")
    for key, reason in outcome.failed.items():
        print(f"  failed {key}: {reason}")
    if args.done_in and not args.no_report:
        print("the report below covers this store's runs; the cells of --done-in are in their "
              "parts: 'drkd-bench export' this store, then report from the parts together")
    if not args.no_report:
        from analysis import folders, report
        from benchmark.store import ui

        out = folders.grid_folder(Path(args.results), cfg.name)  # the grid's own folder
        try:
            written = report.from_tracking(tracker.uri, out, cfg.analysis_settings(),
                                           {c.hash for c in cells}, grid=cfg.name)
            folders.mark(out, cfg.name)
            folders.write_index(Path(args.results))
            key = ui.install_view(tracker, cfg.name)
            tracker.publish_report(out, cfg.name, key)
        except OSError as e:  # a full disk, a folder gone read-only: one line, the runs are kept
            print(f"drkd-bench: report not written: {os_error(e, out)}; the runs are "
                  "in the store: run 'drkd-bench report' once that is fixed", file=sys.stderr)
            return 1
        print(f"report: {len(written)} files under {out}/ (see {out}/README.md; every grid's "
              f"report: {args.results}/README.md; in MLflow, the run 'report {cfg.name}', "
              "linked from every run of the grid)")
    return 0 if outcome.ok else 1


def calibrated_workers(cells, rt) -> int | None:
    """The worker count this chip's calibration measured fastest for the grid's most common
    architecture on the CPU (None: one per core, on a GPU or without a calibration)."""
    if str(rt.device).startswith("cuda") or rt.gpus():
        return None
    from benchmark.jobs.speed import calibrate

    return calibrate.workers_for(cells)


def _done_in(paths: list[str]) -> set[str]:
    """The cell hashes of the finished training runs in exported parts (``--done-in``)."""
    import pandas as pd

    done: set[str] = set()
    for path in paths:
        try:
            part = pd.read_csv(path, usecols=["cell_hash", "status", "kind"], dtype=str)
        except FileNotFoundError:
            raise UsageError(f"--done-in {path}: no such file") from None
        except (ValueError, OSError, EOFError, pd.errors.ParserError):
            raise UsageError(f"--done-in {path}: not a part written by 'drkd-bench export' (it "
                             "needs the columns cell_hash, status and kind)") from None
        ok = (part["status"] == "FINISHED") & (part["kind"].fillna("train") == "train")
        done |= set(part.loc[ok, "cell_hash"].dropna())
    return done


def _finished(args) -> tuple[set[str], str]:
    """(the cell hashes finished in the store, the store's words), read only where a store
    exists (a dry run never creates one): ``(set(), "")`` otherwise."""
    from pathlib import Path

    from benchmark.store import tracking

    if not args.tracking_uri and not (Path(args.results) / "mlflow.db").is_file():
        return set(), ""
    from benchmark.commands.common import store_uri

    uri = store_uri(args)
    runs = tracking.Tracker(uri, results=args.results).runs("attributes.status = 'FINISHED'")
    return ({r.data.tags.get("cell_hash", "") for r in runs
             if r.data.tags.get("kind", "train") == "train"}, uri)

"""What the commands share: the usage error, the parser class, the flags several commands take,
and the checks that turn bad input into one line before any work is done."""
from __future__ import annotations

import argparse
import sys
import zlib
from pathlib import Path
from typing import Any

from benchmark.store.runtime import Runtime


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    """One-line errors, and no prefix matching: ``--seed`` is never taken for ``--seeds``."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self._before_help: list = []

    def on_help(self, fill) -> None:
        """Run ``fill(parser)`` when help is shown, not when the parser is built: help that names
        what the registries hold loads them (and torch) only for ``--help``."""
        self._before_help.append(fill)

    def format_help(self) -> str:
        for fill in self._before_help:
            fill(self)
        return super().format_help()

    def error(self, message: str) -> None:  # one line, exit code 2 (argparse prints usage too)
        raise UsageError(message)


def common_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite:///RESULTS/mlflow.db)")
    p.add_argument("--results", default="results", help="folder for the store, checkpoints and "
                                                        "reports (default: results)")
    p.add_argument("--data-root", help="where datasets are looked for (also $DRKD_DATA)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: cuda if "
                                                    "available)")
    p.add_argument("--memory-format", choices=("auto", "contiguous", "channels_last"),
                   default="auto", help="the layout the CPU trains in (default auto: what this "
                   "chip's calibration, speed --calibrate, measured faster per architecture; "
                   "contiguous without one; channels_last on CUDA). Changes the last bits of a "
                   "result, not the cell: runs record it as the tag memory_format")
    p.add_argument("--checkpoint-every", type=float, default=10.0, metavar="SECONDS",
                   help="least time between two resume checkpoints of a run, each followed by "
                        "its epochs' metrics in the store (default 10; 0: every epoch). A crash "
                        "loses at most this much training")


def executor_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local processes, or Ray tasks on a cluster (see README, 'Several "
                        "machines')")
    p.add_argument("--ray-address", help="a running Ray cluster (e.g. auto or "
                                         "ray://HEAD:10001); default: start a local one")
    p.add_argument("--cells-per-gpu", type=int, default=1, metavar="K",
                   help="cells (or trials) that share one GPU at a time: local workers go "
                        "round-robin over every visible GPU (K per GPU by default), Ray tasks "
                        "ask for 1/K of a GPU (default 1; see README, 'GPUs')")


def analysis_flags(p: argparse.ArgumentParser, aggregate: bool = True) -> None:
    p.add_argument("--config", help="read the statistics settings from this grid config's "
                                     "analysis: block (flags below override it)")
    p.add_argument("--family", metavar="KEYS", help="split every Holm family further by these "
                   "columns: a comma list of dataset, arch, setting, or 'all' for no split "
                   "(default: no split; the families themselves are declared in the config's "
                   "analysis.families: the headline, tuned against tuned, and the field)")
    p.add_argument("--margin", type=float, metavar="POINTS", help="the equivalence margin of the "
                   "TOST test, in percentage points (default 0.5)")
    p.add_argument("--alpha", type=float, help="the level of every test (default 0.05)")
    p.add_argument("--power", type=float, help="the power of the MDE and the plan (default 0.8)")
    if not aggregate:  # the command has no answer across tasks to add
        return
    p.add_argument("--aggregate", action="store_true", default=None,
                   help="add one answer across tasks (dataset x condition x architecture; at "
                        "least two): IQM, probability of improvement and performance profiles "
                        "with stratified-bootstrap intervals (rliable)")


def analysis_block(args) -> dict:
    """The ``analysis:`` block of ``--config`` with its ``--set`` keys, read alone (the rest of
    the config is the grid's to check, and its registries would import torch); {} without."""
    from benchmark.config import files

    if not args.config:
        return {}
    return files.read_analysis(args.config, parse_sets(getattr(args, "sets", [])))


def analysis_settings(args, block: dict | None = None):
    """The statistics settings: the config's analysis: block (``block``, when the caller has
    read it already), then the flags."""
    from analysis.stats import Analysis

    values = dict(analysis_block(args) if block is None else block)
    values.update({k: getattr(args, k) for k in ("family", "margin", "alpha", "power",
                                                  "aggregate")
                   if getattr(args, k, None) is not None})
    try:
        return Analysis.from_mapping(values, "analysis")
    except ValueError as e:
        raise UsageError(str(e).replace("analysis.", "--").replace("analysis:", "")) from None


def runtime(args) -> Runtime:
    """The run-time settings of a command (never part of a result's identity)."""
    if args.checkpoint_every < 0:
        raise UsageError("--checkpoint-every must be >= 0 seconds")
    check_device(args.device)
    cells_per_gpu = getattr(args, "cells_per_gpu", 1)
    if cells_per_gpu < 1:
        raise UsageError("--cells-per-gpu must be >= 1")
    writable(Path(args.results), create=False)  # read-only results: one line, before any work
    rt = Runtime(args.results, args.tracking_uri, args.data_root, args.device,
                 checkpoint_seconds=args.checkpoint_every, cells_per_gpu=cells_per_gpu,
                 memory_format=args.memory_format)
    if cells_per_gpu > 1 and not rt.gpus():
        raise UsageError(f"--cells-per-gpu {cells_per_gpu}: no CUDA device to share "
                         f"(--device {args.device})")
    return rt


def check_device(device: str) -> None:
    """``auto``, ``cpu`` or an available CUDA device, else one line."""
    import torch

    if device == "auto":
        return
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device {device!r}: expected auto, cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise UsageError(f"--device {device!r}: expected auto, cpu, cuda or cuda:N")
    if dev.type == "cuda":
        count = torch.cuda.device_count()
        if count == 0:
            raise UsageError(f"--device {device!r}: no CUDA device on this machine; use cpu")
        if dev.index is not None and dev.index >= count:
            raise UsageError(f"--device {device!r}: only {count} CUDA device(s) here "
                             f"(cuda:0 .. cuda:{count - 1})")


def parse_sets(sets: list[str]) -> dict[str, Any]:
    import yaml

    out = {}
    for item in sets:
        if "=" not in item:
            raise UsageError(f"--set {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value) if value.strip() else None
    return out


def storage_default(cfg, results: str) -> str:
    return cfg.tune.get("storage") or str((Path(results) / "optuna.journal").resolve())


def os_error(e: OSError, where) -> str:
    """An OS error in words: what, and the path (the one it names, else ``where``)."""
    import errno

    what = "no space left on device" if e.errno == errno.ENOSPC else (e.strerror or str(e))
    return f"{what} ({e.filename or where})"


def pilot(args):
    """(epochs frame, source words) from --from CSV or the tracking store."""
    from analysis import load, report

    if args.from_csv:
        return (read_runs_csv(Path(args.from_csv), environment=False),
                report.csv_source(args.from_csv))
    uri = store_uri(args)
    return load.epochs_from_tracking(uri), report.store_source(uri)


def store_uri(args) -> str:
    """The tracking store to read (which must exist), relocated if its folder was moved."""
    from benchmark.store import location

    uri = args.tracking_uri or location.default_uri(args.results)
    if not args.tracking_uri and not (Path(args.results) / "mlflow.db").is_file():
        raise UsageError(f"no tracking store at {Path(args.results) / 'mlflow.db'}; run a "
                         "grid first or pass --tracking-uri / --from")
    db = location.sqlite_file(uri)
    if db is not None and not db.is_file():
        raise UsageError(f"--tracking-uri {uri}: no such store (reading never creates one)")
    location.check_uri(uri)
    location.relocate(uri, args.results)
    return uri


def read_runs_csv(path: Path, flag: str = "--from ", environment: bool = True):
    """An exported runs CSV, or one line naming ``flag`` and the file (``flag=""``: the file
    is a positional argument); ``environment=False``: without the provenance tags."""
    import pandas as pd

    from analysis import load

    if not path.is_file():
        raise UsageError(f"{flag}{path}: no such file")
    try:
        frame = load.epochs_from_csv(path, environment)
    except KeyError as e:
        raise UsageError(f"{flag}{path}: not a runs CSV of drkd-bench export (no column "
                         f"{str(e).strip()})") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError,
            EOFError, OSError, zlib.error) as e:  # gzip: truncated (EOF), corrupt (OSError)
        words = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(f"{flag}{path}: not a readable CSV ({words})") from None
    missing = [c for c in ("run_id", "status", "kind", "dataset", "arch", "variant", "seed")
               if c not in frame.columns]
    if missing:
        raise UsageError(f"{flag}{path}: not a runs CSV of drkd-bench export (no column "
                         f"{missing[0]!r})")
    return frame


def writable(folder: Path, create: bool = True) -> None:
    """Check ``folder`` can be written, before any work is done: created and probed with a
    temporary file, or with ``create=False`` (nothing written yet) its nearest existing folder
    checked for write permission."""
    import os
    import tempfile

    if not create:
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not (existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)):
            raise UsageError(f"cannot create the results folder {folder}: {existing} is not a "
                             "writable folder")
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as e:
        raise UsageError(f"cannot write to {folder}: {e.strerror or e}") from None


def interrupt(signum, frame) -> None:
    """SIGTERM as Ctrl-C: the command unwinds (temporary folders removed, runs marked)."""
    raise KeyboardInterrupt


def task_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", action="append", default=[], metavar="PATTERN",
                   help="only the tasks matching PATTERN, DATASET[:CONDITION]/ARCH with shell "
                        "wildcards (e.g. 'digits:*/mlp', 'fashion-mnist:clean/*'); repeatable. "
                        "A cell is the same as in the whole grid (its hash names its settings, "
                        "not its grid), so a grid can be run task by task")


def select_tasks(cfg, patterns: list[str]):
    """``cfg`` restricted to the tasks (``dataset[:condition]/arch``) matching one of
    ``patterns`` (before any study is read: the other tasks' studies need not exist yet); the
    whole grid when there is none; one line when nothing matches."""
    from fnmatch import fnmatchcase

    if not patterns:
        return cfg
    tasks = [(d, a) for d, _, a in cfg.tasks()]
    kept = {(d, a) for d, a in tasks if any(fnmatchcase(f"{d}/{a}", p) for p in patterns)}
    if not kept:
        names = ", ".join(sorted(f"{d}/{a}" for d, a in tasks))
        raise UsageError(f"--task {' --task '.join(patterns)}: matches no task of this config "
                         f"({names})")
    return cfg.only(kept)


def set_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="change one key of the config, as if its file said it (repeatable; "
                        "YAML values): train.epochs=60, seeds=[0,1], "
                        "datasets.digits.val_fraction=0.2; checked by the config's schema, and "
                        "the changed cells hash as new cells")


def load_config(args):
    """The grid config ``args.config`` names, with the command line's ``--set`` keys."""
    from benchmark import config

    return config.load_grid(args.config, parse_sets(getattr(args, "sets", [])))


def grid_config(args):
    """The grid config a running command (grid, tune) reads, after the check they share."""
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be >= 1")
    # the chip's warnings name only the tasks this command runs (--task)
    return chip_settings(select_tasks(load_config(args), getattr(args, "task", None) or []))


def say_if_busy(workers: int, rt: Runtime, executor: str) -> None:
    """The one-line note of :func:`benchmark.store.runtime.busy_note` for a local run, printed
    after every check of the input (so a bad input's error stays its only line)."""
    from benchmark.store.runtime import busy_note

    note = busy_note(workers, rt.device) if executor == "local" else None
    if note:
        print(note, file=sys.stderr)


def chip_settings(cfg):
    """``cfg`` with ``train.precision: auto`` resolved from this chip's calibration, after one
    warning line per task set to bf16 by hand where the chip measured bf16 slower."""
    from benchmark import config
    from benchmark.jobs.speed import calibrate

    for line in calibrate.slower_bf16(cfg):
        print(f"drkd-bench: warning: {line}", file=sys.stderr)
    resolved = calibrate.precisions(cfg)
    return config.with_precisions(cfg, resolved) if resolved else cfg

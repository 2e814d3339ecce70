"""``drkd-bench``: train one run, run grids, tune, report, measure speed.

YAML configs supply defaults; flags override. Bad input gives one line and exit code 2.
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

from .runtime import Runtime, start_worker_server

EPILOG = """examples:
  drkd-bench list
  drkd-bench train --dataset digits --method drkd --set teacher=online --epochs 10
  drkd-bench grid quick            # the embedded quick grid, then the report in results/
  drkd-bench grid quick --dry-run  # the cells and their order
  drkd-bench report                # tables and figures from the tracking store
"""


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit code 2 (argparse prints usage too)
        raise UsageError(message)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite:///RESULTS/mlflow.db)")
    p.add_argument("--results", default="results", help="folder for the store, checkpoints and "
                                                        "reports (default: results)")
    p.add_argument("--data-root", help="where datasets are looked for (also $DRKD_DATA)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: cuda if "
                                                    "available)")
    p.add_argument("--checkpoint-every", type=float, default=10.0, metavar="SECONDS",
                   help="least time between two resume checkpoints of a run, each followed by "
                        "its epochs' metrics in the store (default 10; 0: every epoch). A crash "
                        "loses at most this much training")


def _executor(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local processes, or Ray tasks on a cluster (see README, 'Several "
                        "machines')")
    p.add_argument("--ray-address", help="a running Ray cluster (e.g. auto or "
                                         "ray://HEAD:10001); default: start a local one")
    p.add_argument("--cells-per-gpu", type=int, default=1, metavar="K",
                   help="cells (or trials) that share one GPU at a time: local workers go "
                        "round-robin over every visible GPU (K per GPU by default), Ray tasks "
                        "ask for 1/K of a GPU (default 1; see README, 'GPUs')")


def build_parser() -> argparse.ArgumentParser:
    import methods

    known = ", ".join(methods.names())  # what the registry holds, never a list kept by hand
    parser = Parser(prog="drkd-bench", description=__doc__.split("\n")[0] + " A reproducibility "
                    f"benchmark for teacher-free knowledge distillation ({known}).",
                    epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    p = sub.add_parser("list", help="methods with their hyperparameters, architectures, datasets, "
                                    "shipped configs")

    p = sub.add_parser("train", help="train and track one run",
                       description="Train one run and track it in MLflow. A method that needs a "
                                   "pretrained self-teacher trains (or reuses) the CE run of the "
                                   "same cell first.")
    p.add_argument("--dataset", required=True, help="digits, fashion-mnist, cifar10, cifar100, "
                                                    "tiny-imagenet")
    p.add_argument("--arch", help="architecture (default: the dataset's small CNN); timm:<name> "
                                  "for any timm model")
    p.add_argument("--method", required=True, help=f"one of: {known}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, help="number of epochs (default 15)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="a method hyperparameter (temperature=4, teacher=online, fidelity=code) "
                        "or a training setting (batch_size=128, lr=0.05, schedule=multistep, "
                        "val_fraction=0.2, train_subset=5000); repeatable")
    _common(p)

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
    _executor(p)
    _common(p)

    p = sub.add_parser("tune", help="Optuna search of each method's own hyperparameters on the "
                                    "validation split",
                       description="One Optuna study per (dataset, arch, method variant) of a "
                                   "config, named dataset/arch/label, searching the method's own "
                                   "ranges (drkd-bench list). Trials score the final-epoch "
                                   "validation top-1 (the test split is never loaded; ties go to "
                                   "the lower validation NLL) and are tracked as MLflow child "
                                   "runs of one parent run per study and storage. The honest "
                                   "protocol (the published one): --budget in images, the same "
                                   "for every variant (a DLB trial forwards twice CE's images, "
                                   "so it gets half the trials), --optimiser so that CE tunes "
                                   "too, --seeds-per-trial k so that one lucky seed cannot win, "
                                   "no pruning, and --rescore r: the winner trained again on r "
                                   "fresh seeds, printed beside its tuning score. A method "
                                   "with a pretrained "
                                   "self-teacher distils from the grid's own CE cell (same "
                                   "dataset, arch, seed and the grid's training settings), "
                                   "trained and tracked as that cell first if it has not "
                                   "finished. Rerunning continues the studies.")
    p.add_argument("config", help="shipped config name or YAML path (its tune: section is used)")
    p.add_argument("--method", help="only this method or variant label")
    p.add_argument("--trials", type=int, help="trials to add to each study (default: the "
                                              "config's tune.trials, else 20)")
    p.add_argument("--up-to", action="store_true",
                   help="read the trial count as each study's total: run only the trials a study "
                        "lacks to hold that many complete or pruned ones (an equal budget per "
                        "method that a rerun after an interruption tops up, never exceeds)")
    p.add_argument("--budget", type=float, help="each study's budget in images forwarded "
                   "(student and teacher models), in passes over the training set: a trial "
                   "costs seeds-per-trial x epochs x the variant's images per epoch relative to "
                   "CE's; the trial count follows, and is a total (tune.budget)")
    p.add_argument("--seeds-per-trial", type=int, metavar="K", help="train each trial on K "
                   "seeds and score the mean validation top-1 (tune.seeds_per_trial, default 1)")
    p.add_argument("--optimiser", action=argparse.BooleanOptionalAction, default=None,
                   help="also search the shared optimiser settings lr and weight_decay, for "
                        "every variant, CE included (tune.optimiser)")
    p.add_argument("--pruning", action=argparse.BooleanOptionalAction, default=None,
                   help="median pruning after epoch 2 (tune.pruning; default off, as the honest "
                        "protocol; not allowed with a budget or several seeds per trial)")
    p.add_argument("--rescore", type=int, metavar="R", help="after the study, train its winner "
                   "on R fresh seeds and print both scores: the winner's curse, measured "
                   "(tune.rescore)")
    p.add_argument("--timeout", type=float, help="stop a study after this many seconds")
    p.add_argument("--storage", help="Optuna storage: a journal file path (default "
                                     "RESULTS/optuna.journal) or an RDB URL (sqlite:///..., "
                                     "postgresql://...)")
    p.add_argument("--workers", type=int, default=1, help="local processes sharing each study")
    p.add_argument("--seed", type=int, default=0, help="sampler seed, mixed with each study's "
                   "name and the worker number (studies never share first trials)")
    p.add_argument("--show", action="store_true", help="print each study's best values and "
                                                       "trial counts, run nothing")
    _executor(p)
    _common(p)

    p = sub.add_parser("speed", help="measure the harness's overhead against the bare model step",
                       description="Images per second, side by side in one process after a "
                                   "warm-up (median of repeats): bare step, the harness's step "
                                   "per method, the data pipeline against torchvision's PIL "
                                   "DataLoader, and a whole tfkd-self epoch against a "
                                   "reference-style loop and its compute limit. Prints a table "
                                   "of ratios and writes it as CSV under RESULTS/.")
    p.add_argument("--dataset", default="fashion-mnist", help="the data's shape and classes "
                                                              "(synthetic images; default "
                                                              "fashion-mnist)")
    p.add_argument("--arch", action="append", help="an architecture to measure; repeat for "
                                                   "several (default: the dataset's default)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=20, help="steps per timed repeat")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats per case, after one "
                   "warm-up call (1: a smoke run without warm-up)")
    p.add_argument("--epoch-images", type=int, default=10_000, help="images in the epoch "
                                                                    "comparison")
    p.add_argument("--loader-workers", type=int, default=2, help="DataLoader workers of the "
                                                                 "reference pipeline")
    p.add_argument("--device", default="auto", help="cpu or cuda (default: cuda if available)")
    p.add_argument("--compile", nargs="?", const="all", metavar="ARCH,...",
                   help="also the CE step under torch.compile: compile time, rate, and whether "
                        "a 200-epoch run gains, compile included (every measured architecture, "
                        "or only those listed)")
    p.add_argument("--cells-per-gpu", metavar="K,K,...", help="also the aggregate rate of K CE "
                   "cells training at once on the device (one process each), e.g. 1,2,3,4")
    p.add_argument("--project", metavar="CONFIG", help="also the projected wall time of this "
                   "grid config on 1 and 8 GPUs from these measurements (every architecture of "
                   "the grid must be measured)")
    p.add_argument("--results", default="results")

    p = sub.add_parser("report", help="tables and figures from tracked results into RESULTS/",
                       description="Read every run of the tracking store (or an exported CSV) "
                                   "and write tables (Markdown, CSV, LaTeX) and figures (PNG, "
                                   "PDF) under RESULTS/tables and RESULTS/figures.")
    p.add_argument("--from", dest="from_csv", help="an exported runs CSV instead of MLflow")
    p.add_argument("--tracking-uri")
    p.add_argument("--results", default="results")
    p.add_argument("--out", help="output folder (default: RESULTS)")
    _analysis_flags(p)

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
    _analysis_flags(p)

    p = sub.add_parser("reproduce", help="retrain a sample of a published edition's cells and "
                                         "check their final metrics bit for bit",
                       description="Rebuild cells of a published edition from the parameters "
                                   "their runs recorded (each must hash to its recorded cell "
                                   "hash), retrain them (and any pretrained self-teacher) in a "
                                   "temporary store on the CPU with the thread count they "
                                   "recorded (one when none), and print per "
                                   "cell whether the final metrics are bit-identical, their "
                                   "difference otherwise, and what differs in the environment. "
                                   "Exit code 0 when every cell is identical, 1 otherwise.",
                       epilog="example: drkd-bench reproduce results/published/"
                              "fashion-mnist-field --cells 5",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("edition", help="an edition's folder (holding runs.csv) or a runs CSV")
    p.add_argument("--cells", type=int, default=3, metavar="N",
                   help="how many cells to draw at random (default 3)")
    p.add_argument("--cell", action="append", default=[], metavar="KEY",
                   help="a cell to retrain, e.g. fashion-mnist/mlp/ce/seed0 (repeatable; "
                        "instead of a random draw)")
    p.add_argument("--seed", type=int, default=0, help="the random draw's seed (default 0)")
    p.add_argument("--data-root", help="where datasets are looked for (also $DRKD_DATA)")

    p = sub.add_parser("export", help="one CSV of every run (cell key, params, per-epoch "
                                      "metrics)")
    p.add_argument("--tracking-uri")
    p.add_argument("--results", default="results")
    p.add_argument("--out", default=None, help="CSV path (default: RESULTS/runs.csv)")

    p = sub.add_parser("ui", help="open the results in the MLflow UI (and the studies in "
                                  "optuna-dashboard)",
                       description="Starts the MLflow UI on the tracking store and prints the "
                                   "URL of the runs table in training mode with the results "
                                   "visible: final test/validation top-1 and ECE, grouped by "
                                   "dataset, arch and variant (tuning runs filtered out). When "
                                   "optuna-dashboard is installed (pip install -e '.[ui]') and "
                                   "there are studies, it starts that too. Ctrl-C stops both.")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5000, help="MLflow UI port (0: a free one)")
    p.add_argument("--dashboard-port", type=int, default=8080,
                   help="optuna-dashboard port (0: a free one)")
    p.add_argument("--storage", help="Optuna storage (default: RESULTS/optuna.journal)")
    p.add_argument("--tracking-uri")
    p.add_argument("--results", default="results")

    p = sub.add_parser("download", help="fetch a dataset with torchvision (needs internet)")
    p.add_argument("dataset", help="fashion-mnist, cifar10 or cifar100")
    p.add_argument("--data-root", required=True)
    for command in sub.choices.values():  # on every command: what it may register is known
        command.add_argument("--plugin", action="append", default=[], metavar="MODULE|FILE.py",
                             help="import this module or .py file first (repeatable): it may "
                                  "register methods, teacher sources, batch plans, "
                                  "architectures and datasets; a grid config's plugins: list "
                                  "does the same. Installed packages' 'drkd_bench.plugins' "
                                  "entry points load by themselves")
    return parser


def _analysis_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="read the statistics settings from this grid config's "
                                     "analysis: block (flags below override it)")
    p.add_argument("--family", metavar="KEYS", help="what a family of comparisons is, for "
                   "Holm's adjustment: a comma list of dataset, arch, setting, or 'all' "
                   "(default: dataset,arch,setting)")
    p.add_argument("--margin", type=float, metavar="POINTS", help="the equivalence margin of the "
                   "TOST test, in percentage points (default 0.5)")
    p.add_argument("--alpha", type=float, help="the level of every test (default 0.05)")
    p.add_argument("--power", type=float, help="the power of the MDE and the plan (default 0.8)")
    p.add_argument("--aggregate", action="store_true", default=None,
                   help="add one answer across tasks (dataset x condition x architecture; at "
                        "least two): IQM, probability of improvement and performance profiles "
                        "with stratified-bootstrap intervals (rliable)")


def analysis_settings(args):
    """The statistics settings: the config's analysis: block, then the flags."""
    from analysis.stats import Analysis

    values = {}
    if args.config:
        from . import config

        values.update(config.load_grid(args.config).analysis)
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
    _writable(Path(args.results), create=False)  # read-only results: one line, before any work
    rt = Runtime(args.results, args.tracking_uri, args.data_root, args.device,
                 checkpoint_seconds=args.checkpoint_every, cells_per_gpu=cells_per_gpu)
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


def cmd_list(args) -> int:
    import methods

    from . import config, data, models
    from .plugins import BUILT_IN, origin

    def came(kind: str, name: str) -> str:
        o = origin(kind, name)
        return "" if o is BUILT_IN else f"  (from {o})"

    print("methods:")
    for name in methods.names():
        m = methods.get(name)
        teacher = m.teacher if m.teacher != "param" else "|".join(m.params["teacher"].choices)
        print(f"  {name:<10} teacher={teacher}  batches={m.batch_plan}  {m.summary}  [{m.paper}]"
              + came("method", name))
        if m.source:
            print(f"      follows {m.source}")
        for key, p in m.params.items():
            extra = f" choices {'/'.join(map(str, p.choices))}" if p.choices else ""
            extra += f" valid {p.valid}" if p.valid else ""
            extra += (f" search [{p.low:g}, {p.high:g}]{' log' if p.log else ''}"
                      if p.tunable else "")
            default = "preset" if p.default is None else p.default
            print(f"      {key:<14} default {default}{extra}  {p.help}")
        for fidelity, values in m.presets.items():
            print(f"      fidelity={fidelity}: " + ", ".join(f"{k}={v}" for k, v in values.items()))
        if m.control:
            print("      control (control: true): " + ", ".join(
                f"{k}={v}" for k, v in m.control.items()) + f" - {m.control_summary}")
    print("architectures:")
    for name in models.names():
        print(f"  {name:<13} {models.describe(name)}" + came("architecture", name))
    print("  timm:<name>   any timm model, built with pretrained=False")
    print("datasets:")
    for name in data.names():
        s = data.get_spec(name)
        print(f"  {name:<14} {s.num_classes} classes, default arch {s.default_arch}; {s.source}"
              + came("dataset", name))
    from . import plans, teachers

    extra = [(k, n) for k, names in (("teacher source", teachers.SOURCES),
                                     ("batch plan", plans.PLANS)) for n in names
             if origin(k, n) is not BUILT_IN]
    if extra:
        print("from plugins:")
        for kind, name in extra:
            print(f"  {kind} {name}{came(kind, name)}")
    print("every entry without '(from ...)' is built in")
    print("configs:", ", ".join(sorted(config.shipped_configs())))
    return 0


def cmd_train(args) -> int:
    import dataclasses

    import methods

    from . import config, runner

    sets = parse_sets(args.sets)
    train_fields = {f.name for f in dataclasses.fields(config.TrainSettings)}
    data_fields = {"val_fraction", "split_seed", "train_subset", "split"}
    method = methods.get(args.method)
    train = {k: sets.pop(k) for k in list(sets) if k in train_fields}
    data_settings = {k: sets.pop(k) for k in list(sets) if k in data_fields}
    unknown = [k for k in sets if k not in method.params]
    if unknown:
        raise UsageError(f"--set {unknown[0]}: not a hyperparameter of {args.method} "
                         f"({', '.join(method.params) or 'none'}) nor a training setting "
                         f"({', '.join(sorted(train_fields | data_fields))})")
    if args.epochs is not None:
        train["epochs"] = args.epochs
    spec = config.make_spec(args.dataset, args.arch, args.method, args.seed, sets, train,
                            **data_settings)
    config.check_data(spec.data, "--set")
    rt = runtime(args)
    runner.load_data(spec.data, rt.data_root)  # a missing dataset fails before any store exists
    tracker = rt.tracker()
    started = time.perf_counter()
    try:
        outcome = runner.run_cell(
            spec, tracker, rt, on_epoch=lambda s, row: print(runner.epoch_line(s, row), flush=True))
    except runner.CellFailed as e:  # recorded as FAILED in the store with its reason
        print(f"drkd-bench: training failed: {e}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - started
    final = outcome.final
    if outcome.skipped:
        print(f"{spec.key}: already finished in the tracking store (run {outcome.run_id})")
    print(f"{spec.key}: test top-1 {100 * final.get('test_top1', float('nan')):.2f}%, "
          f"val top-1 {100 * final.get('val_top1', float('nan')):.2f}% in {seconds:.1f}s; "
          f"MLflow run {outcome.run_id} in {tracker.uri}")
    return 0


def cmd_grid(args) -> int:
    from . import config, grid, runner

    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be >= 1")
    cfg = config.load_grid(args.config)
    cells = grid.expand(cfg, args.storage or _storage_default(cfg, args.results))
    if args.dry_run:
        deps = grid.dependencies(cells)
        by_hash = {c.hash: c for c in cells}
        print(f"{cfg.name}: {len(cells)} cells")
        for i, c in enumerate(cells, 1):
            wait = f"  (after {by_hash[deps[c.hash]].key})" if c.hash in deps else ""
            print(f"{i:>4}. {c.key}  {c.train.epochs} epochs{wait}")
        for line in grid.describe_variants(cfg):
            print(line)
        return 0
    rt = runtime(args)
    workers = args.workers or rt.default_workers(len(cells))
    if workers > 1 and args.executor == "local":
        start_worker_server()
    runner.check_data(cells, rt.data_root)
    tracker = rt.tracker()
    outcome = grid.run(cells, tracker, rt, workers=workers, quiet=args.quiet,
                       verbose=args.verbose, executor=args.executor,
                       ray_address=args.ray_address, tags={"grid": cfg.name})
    aliases = grid.coincident(cfg, args.storage or _storage_default(cfg, args.results))
    if aliases and grid.tag_aliases(tracker, aliases):
        for h, labels in aliases.items():
            same = next(c for c in cells if c.hash == h)
            print(f"  {', '.join(labels)} on {same.data.task}/{same.arch} seed {same.seed}: its "
                  f"study chose {same.label}'s own settings; that cell stands for both")
    print(f"{cfg.name}: {len(outcome.finished)} trained, {len(outcome.skipped)} already done, "
          f"{len(outcome.failed)} failed, {outcome.seconds:.1f}s")
    for key, reason in outcome.failed.items():
        print(f"  failed {key}: {reason}")
    if not args.no_report:
        from analysis import report

        from . import ui

        try:
            written = report.from_tracking(tracker.uri, Path(args.results),
                                           cfg.analysis_settings(), {c.hash for c in cells})
            ui.install_view(tracker)
            tracker.publish_report(Path(args.results), cfg.name, ui.VIEW_KEY)
        except OSError as e:  # a full disk, a folder gone read-only: one line, the runs are kept
            print(f"drkd-bench: report not written: {_os_error(e, args.results)}; the runs are "
                  "in the store: run 'drkd-bench report' once that is fixed", file=sys.stderr)
            return 1
        print(f"report: {len(written)} files under {args.results}/ (see {args.results}/README.md;"
              f" in MLflow, the run 'report {cfg.name}', linked from every run of the grid)")
    return 0 if outcome.ok else 1


def _storage_default(cfg, results: str) -> str:
    return cfg.tune.get("storage") or str((Path(results) / "optuna.journal").resolve())


def cmd_tune(args) -> int:
    from . import config

    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be >= 1")
    cfg = config.load_grid(args.config)
    trials = args.trials if args.trials is not None else int(cfg.tune.get("trials", 20))
    if trials < 1:
        raise UsageError("--trials must be >= 1")
    if args.timeout is not None and not 0 < args.timeout < float("inf"):
        raise UsageError(f"--timeout {args.timeout}: expected a finite number of seconds > 0")
    flags = {"budget": args.budget, "seeds_per_trial": args.seeds_per_trial,
             "optimiser": args.optimiser, "pruning": args.pruning, "rescore": args.rescore}
    given = {k: v for k, v in flags.items() if v is not None}
    if given:
        import dataclasses

        merged = config._parse_tune({**cfg.tune, **given}, cfg.path + " (with flags)")
        config._check_space(merged.get("space") or {}, list(cfg.variants), cfg.path,
                            bool(merged.get("optimiser")))
        cfg = dataclasses.replace(cfg, tune=merged)
    from . import runner, tune

    defs = tune.studies(cfg, args.method)
    storage = args.storage or _storage_default(cfg, args.results)
    if args.show:
        for line in tune.show(defs, storage, args.results):
            print(line)
        return 0
    rt = runtime(args)
    if (args.workers or 1) > 1 and args.executor == "local":
        start_worker_server()
    runner.check_data([d.spec for d in defs], rt.data_root)
    if "://" in storage:  # an RDB URL that cannot be opened fails before the store is touched
        tune.open_storage(storage, args.results)
    tracker = rt.tracker()
    timeout = args.timeout if args.timeout is not None else cfg.tune.get("timeout")
    tune.run(defs, trials=trials, timeout=timeout, storage=storage, tracker=tracker,
             rt=rt, seed=args.seed, up_to=args.up_to,
             workers=args.workers, executor=args.executor, ray_address=args.ray_address)
    return 0


def cmd_speed(args) -> int:
    from . import config, data, models, speed

    check_device(args.device)
    if args.dataset not in speed.SHAPES:
        raise UsageError(f"--dataset {args.dataset!r}: choose one of: {', '.join(speed.SHAPES)}")
    archs = args.arch or [data.get_spec(args.dataset).default_arch]
    for arch in archs:
        models.check(arch)
    for flag in ("batch", "steps", "repeats", "epoch_images"):
        if getattr(args, flag) < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be >= 1")
    if args.epoch_images < args.batch:
        raise UsageError("--epoch-images must be at least --batch")
    ks: list[int] = []
    if args.cells_per_gpu:
        try:
            ks = sorted({int(k) for k in args.cells_per_gpu.split(",")})
        except ValueError:
            raise UsageError(f"--cells-per-gpu {args.cells_per_gpu!r}: expected integers "
                             "such as 1,2,3,4") from None
        if ks[0] < 1:
            raise UsageError("--cells-per-gpu: every K must be >= 1")
    compiled = [] if args.compile in (None, "all") else args.compile.split(",")
    if set(compiled) - set(archs):
        raise UsageError(f"--compile {args.compile}: not among the measured architectures "
                         f"({', '.join(archs)})")
    if args.project:
        cfg = config.load_grid(args.project)
        missing = sorted(set(cfg.architectures) - set(archs))
        if missing:
            raise UsageError(f"--project {args.project}: measure every architecture of the grid "
                             f"too (missing --arch {' --arch '.join(missing)})")
    import torch

    from .train import device_name, resolve_device

    dev = resolve_device(args.device)
    started = time.perf_counter()
    say = lambda s: print(f"  measuring {s} ...", file=sys.stderr, flush=True)  # noqa: E731
    measured = {}
    for arch in archs:
        rows = speed.measure(args.dataset, arch, args.batch, args.steps, args.repeats,
                             args.epoch_images, args.loader_workers, args.device,
                             compile=args.compile == "all" or arch in compiled, say=say)
        if ks:
            rows += speed.cells_per_device(args.dataset, arch, args.batch, args.steps,
                                           args.repeats, ks, args.device, say=say)
        measured[arch] = rows
        meta = {"dataset": args.dataset, "arch": arch, "batch": args.batch,
                "device": device_name(dev), "threads": torch.get_num_threads(),
                "data": speed.DATA_NOTE, "torch": torch.__version__}
        print(f"drkd-bench speed: {args.dataset}-shaped synthetic data, {arch}, batch "
              f"{args.batch}, {device_name(dev)}, {torch.get_num_threads()} threads")
        print(speed.table(rows))
        path = Path(args.results) / f"speed_{args.dataset}_{arch.replace(':', '-')}_{dev.type}.csv"
        speed.write_csv(rows, path, meta)
        print(f"written to {path}")
    if args.project:
        rows = speed.project(cfg, measured)
        print(speed.table(rows))
        for r in rows:
            print(f"  {r.name}: {r.seconds / 3600:.2f} h")
        path = Path(args.results) / f"speed_projection_{cfg.name}_{dev.type}.csv"
        speed.write_csv(rows, path, {"dataset": args.dataset, "archs": "+".join(archs),
                                     "device": device_name(dev), "data": speed.DATA_NOTE})
        print(f"written to {path}")
    print(f"peak resident memory {speed.peak_rss_mb():.0f} MB; "
          f"{time.perf_counter() - started:.0f}s")
    return 0


def cmd_report(args) -> int:
    from analysis import report

    out = Path(args.out or args.results)
    analysis = analysis_settings(args)
    epochs, source = _pilot(args)
    if epochs.empty or not (epochs["kind"] == "train").any():
        raise UsageError(f"no runs in {source}: nothing to report")
    if analysis.aggregate:
        from analysis import aggregate, load

        done = epochs[(epochs["kind"] == "train") & (epochs["status"] == "FINISHED")]
        tasks = aggregate.tasks_of(load.runs_from_epochs(done))
        if len(tasks) < 2:
            raise UsageError(f"--aggregate: an aggregate across tasks needs at least two tasks "
                             f"(dataset x condition x architecture); {source} has {len(tasks)}")
    _writable(out)
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
        print(f"drkd-bench: report not written: {_os_error(e, out)}", file=sys.stderr)
        return 1
    print(f"report: {len(written)} files under {out}/ (see {out}/README.md)")
    return 0


def _os_error(e: OSError, where) -> str:
    """An OS error in words: what, and the path (the one it names, else ``where``)."""
    import errno

    what = "no space left on device" if e.errno == errno.ENOSPC else (e.strerror or str(e))
    return f"{what} ({e.filename or where})"


def _pilot(args):
    """(epochs frame, source words) from --from CSV or the tracking store."""
    from analysis import load, report

    if args.from_csv:
        return _read_runs_csv(Path(args.from_csv)), report.csv_source(args.from_csv)
    uri = _store_uri(args)
    return load.epochs_from_tracking(uri), report.store_source(uri)


def cmd_plan(args) -> int:
    from analysis import plan

    if not 0 < args.detect < float("inf"):
        raise UsageError("--detect must be a finite number > 0 (percentage points)")
    if args.seeds is not None and args.seeds < 2:
        raise UsageError("--seeds must be >= 2")
    analysis = analysis_settings(args)
    seeds = args.seeds
    if seeds is None and args.config:
        from . import config

        seeds = len(config.load_grid(args.config).seeds)
    epochs, source = _pilot(args)
    frame = plan.plan(epochs, args.detect, seeds, analysis, variants=args.variant)
    if frame.empty:
        raise UsageError(f"no paired comparison in {source}: a pilot needs finished runs of "
                         "two variants on the same seeds")
    if args.out:
        _writable(Path(args.out).parent)
        frame.to_csv(args.out, index=False)
    print(plan.render(frame, args.detect, seeds, analysis, source))
    return 0


def _store_uri(args) -> str:
    """The tracking store to read (which must exist), relocated if its folder was moved."""
    from . import tracking

    uri = args.tracking_uri or tracking.default_uri(args.results)
    if not args.tracking_uri and not (Path(args.results) / "mlflow.db").is_file():
        raise UsageError(f"no tracking store at {Path(args.results) / 'mlflow.db'}; run a "
                         "grid first or pass --tracking-uri / --from")
    db = tracking.sqlite_file(uri)
    if db is not None and not db.is_file():
        raise UsageError(f"--tracking-uri {uri}: no such store (reading never creates one)")
    tracking.check_uri(uri)
    tracking.relocate(uri, args.results)
    return uri


def _read_runs_csv(path: Path, flag: str = "--from "):
    """An exported runs CSV, or one line naming ``flag`` and the file (``flag=""``: the file
    is a positional argument)."""
    import pandas as pd

    from analysis import load

    if not path.is_file():
        raise UsageError(f"{flag}{path}: no such file")
    try:
        frame = load.epochs_from_csv(path)
    except KeyError as e:
        raise UsageError(f"{flag}{path}: not a runs CSV of drkd-bench export (no column "
                         f"{str(e).strip()})") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        raise UsageError(f"{flag}{path}: not a CSV ({str(e).strip().splitlines()[0]})") from None
    missing = [c for c in ("run_id", "status", "kind", "dataset", "arch", "variant", "seed")
               if c not in frame.columns]
    if missing:
        raise UsageError(f"{flag}{path}: not a runs CSV of drkd-bench export (no column "
                         f"{missing[0]!r})")
    return frame


def _writable(folder: Path, create: bool = True) -> None:
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


def _interrupt(signum, frame) -> None:
    """SIGTERM as Ctrl-C: the command unwinds (temporary folders removed, runs marked)."""
    raise KeyboardInterrupt


def cmd_reproduce(args) -> int:
    from . import reproduce

    path = Path(args.edition)
    csv = path / "runs.csv" if path.is_dir() else path
    if args.cells < 1:
        raise UsageError("--cells must be >= 1")
    frame = _read_runs_csv(csv, flag="")
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
    started = time.perf_counter()
    previous = signal.signal(signal.SIGTERM, _interrupt)  # stopped: its temporary store goes
    try:
        results = reproduce.run(frame, args.cell, args.cells, args.seed, args.data_root)
    finally:
        signal.signal(signal.SIGTERM, previous)
    same = 0
    for cell, new in results:
        ok, line = reproduce.verdict_line(cell, new)
        same += ok
        print(line)
    print(f"{same} of {len(results)} identical ({time.perf_counter() - started:.0f}s)")
    for line in reproduce.environment(frame):
        print(f"  environment: {line}")
    return 0 if same == len(results) else 1


def cmd_export(args) -> int:
    from analysis import load

    uri = _store_uri(args)
    out = Path(args.out or Path(args.results) / "runs.csv")
    frame = load.epochs_from_tracking(uri)
    if frame.empty:
        raise UsageError(f"no runs in {uri}: nothing to export")
    _writable(out.parent)
    tmp = out.with_name(f".{out.name}.tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(out)
    print(f"exported {frame['run_id'].nunique() if len(frame) else 0} runs, {len(frame)} epoch "
          f"rows to {out}")
    return 0


def cmd_ui(args) -> int:
    import signal

    from . import tracking, ui

    for flag in ("port", "dashboard_port"):
        if not 0 <= getattr(args, flag) < 65536:
            raise UsageError(f"--{flag.replace('_', '-')} must be a port number (0: a free one)")
    uri = _store_uri(args)
    tracker = tracking.Tracker(uri, results=args.results)
    storage = args.storage or str(Path(args.results) / "optuna.journal")
    def stop(signum, frame):  # SIGTERM stops the servers as Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        ui.serve(tracker, storage, args.host, args.port, args.dashboard_port,
                 say=lambda line: print(line, flush=True))
    except RuntimeError as e:
        raise UsageError(str(e)) from None
    except KeyboardInterrupt:
        print("drkd-bench ui: stopped", file=sys.stderr)
    return 0


def cmd_download(args) -> int:
    import torchvision

    cls = {"fashion-mnist": torchvision.datasets.FashionMNIST,
           "cifar10": torchvision.datasets.CIFAR10,
           "cifar100": torchvision.datasets.CIFAR100}.get(args.dataset)
    if cls is None:
        raise UsageError(f"download: {args.dataset!r} is not downloadable here; choose one of: "
                         "fashion-mnist, cifar10, cifar100")
    for train in (True, False):
        cls(args.data_root, train=train, download=True)
    return 0


COMMANDS = {"list": cmd_list, "train": cmd_train, "grid": cmd_grid, "tune": cmd_tune,
            "speed": cmd_speed,
            "report": cmd_report, "plan": cmd_plan, "reproduce": cmd_reproduce,
            "export": cmd_export, "ui": cmd_ui, "download": cmd_download}


def _load_plugins(argv: list[str]) -> None:
    """Installed packages' entry points, then every ``--plugin X`` of the command line, before
    the parser is built."""
    from . import plugins

    plugins.load_entry_points()
    for i, arg in enumerate(argv):
        if arg == "--plugin" and i + 1 < len(argv):
            plugins.load(argv[i + 1])
        elif arg.startswith("--plugin="):
            plugins.load(arg.split("=", 1)[1])


def main(argv: list[str] | None = None) -> int:
    import methods

    from .config import ConfigError
    from .data import DataError
    from .models import ModelError
    from .plugins import PluginError
    from .runtime import TrackingError

    try:
        _load_plugins(sys.argv[1:] if argv is None else argv)
        parser = build_parser()  # after the plugins: --help lists what they registered
        args = parser.parse_args(argv)
        return COMMANDS[args.command](args)
    except (UsageError, ConfigError, DataError, ModelError, TrackingError, PluginError,
            methods.MethodError) as e:
        print(f"drkd-bench: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into head
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("drkd-bench: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

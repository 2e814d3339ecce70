"""``drkd-bench train``: train and track one run."""
from __future__ import annotations

import argparse
import sys
import time

from benchmark.commands.common import UsageError, common_flags, parse_sets, runtime


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="train and track one run",
                       description="Train one run and track it in MLflow. A method that needs a "
                                   "pretrained self-teacher trains (or reuses) the CE run of the "
                                   "same cell first.")
    p.add_argument("--dataset", required=True, help="digits, fashion-mnist, cifar10, cifar100, "
                                                    "tiny-imagenet")
    p.add_argument("--arch", help="architecture (default: the dataset's small CNN); timm:<name> "
                                  "for any timm model")
    method = p.add_argument("--method", required=True, help="one of the registered methods")
    p.on_help(lambda _: setattr(method, "help", f"one of: {_methods()}"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, help="number of epochs (default 15)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="a method hyperparameter (temperature=4, teacher=online, fidelity=code) "
                        "or a training or data setting, bare or as a config writes it "
                        "(batch_size=128 or train.batch_size=128, lr=0.05, schedule=multistep, "
                        "val_fraction=0.2 or data.val_fraction=0.2, train_subset=5000); "
                        "repeatable")
    common_flags(p)
    return p


def _methods() -> str:
    import methods

    return ", ".join(methods.names())


def run(args) -> int:
    import dataclasses

    import methods
    from benchmark import config
    from benchmark.jobs import runner

    if not 0 <= args.seed < config.MAX_SEED:  # before any store is made
        raise UsageError(f"--seed {args.seed}: give a seed in [0, {config.MAX_SEED})")
    sets = {k.removeprefix("train.").removeprefix("data."): v
            for k, v in parse_sets(args.sets).items()}  # train.epochs as a config writes it
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
    if str(train.get("precision", "fp32")) in ("auto", "bf16"):  # as the chip's calibration says
        from benchmark import data
        from benchmark.jobs.speed import calibrate

        arch = args.arch or data.get_spec(args.dataset).default_arch
        train["precision"], warning = calibrate.resolve_one(args.dataset, arch,
                                                            str(train["precision"]))
        if warning:
            print(f"drkd-bench: warning: {warning}", file=sys.stderr)
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

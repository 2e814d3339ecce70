"""``drkd-bench tune``: Optuna search of each method's own hyperparameters on the validation
split."""
from __future__ import annotations

import argparse

from benchmark.commands.common import (
    UsageError,
    common_flags,
    executor_flags,
    grid_config,
    runtime,
    say_if_busy,
    set_flag,
    storage_default,
    task_flag,
)
from benchmark.store.runtime import start_worker_server


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("tune", help="Optuna search of each method's own hyperparameters on the "
                                    "validation split",
                       description="One Optuna study per (dataset, arch, method variant) of a "
                                   "config, named dataset/arch/label, searching the method's own "
                                   "ranges (drkd-bench list). Trials score the final-epoch "
                                   "validation top-1 (the test split is never loaded; the best "
                                   "trial is Optuna's, the earliest of tied values) and are "
                                   "tracked as MLflow child "
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
    task_flag(p)
    set_flag(p)
    executor_flags(p)
    common_flags(p)
    return p


def run(args) -> int:
    cfg = grid_config(args)
    trials = args.trials if args.trials is not None else int(cfg.tune.get("trials", 20))
    if trials < 1:
        raise UsageError("--trials must be >= 1")
    if args.timeout is not None and not 0 < args.timeout < float("inf"):
        raise UsageError(f"--timeout {args.timeout}: expected a finite number of seconds > 0")
    flags = {"budget": args.budget, "seeds_per_trial": args.seeds_per_trial,
             "optimiser": args.optimiser, "pruning": args.pruning, "rescore": args.rescore}
    given = {k: v for k, v in flags.items() if v is not None}
    if given:
        from benchmark import config

        cfg = config.with_tune(cfg, given)
    from benchmark.jobs import runner, tune

    defs = tune.studies(cfg, args.method)  # grid_config kept the --task tasks only
    storage = args.storage or storage_default(cfg, args.results)
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
    say_if_busy(args.workers or 1, rt, args.executor)
    timeout = args.timeout if args.timeout is not None else cfg.tune.get("timeout")
    tune.run(defs, trials=trials, timeout=timeout, storage=storage, tracker=tracker,
             rt=rt, seed=args.seed, up_to=args.up_to,
             workers=args.workers, executor=args.executor, ray_address=args.ray_address)
    return 0

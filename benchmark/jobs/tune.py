"""Optuna search of the distillation hyperparameters (the only module that imports optuna).

One study per (dataset, arch, method variant) of a config, named ``dataset/arch/label`` with the
variant's label (the method, its teacher source when given, or the config's ``label``). The
search space comes from the method registry (``Param.low/high/log``), optionally narrowed by the
config's ``tune.space``. The objective is the final-epoch *validation* top-1: the data given to a
trial has no test split.

Storage: a journal file under ``results/`` by default (safe for several local processes), or any
RDB URL (``sqlite:///...``, ``postgresql://...``) with Optuna's heartbeat and retry of stale
trials. For the journal file the same is done here: each trial records a heartbeat per epoch and a
trial whose heartbeat is older than the grace period is failed and its parameters re-queued.
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import math
import os
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from tqdm import tqdm

import methods
from benchmark import data as data_mod
from benchmark.config import (
    OPTIMISER_PARAMS,
    RESERVED_SEEDS,
    ConfigError,
    GridConfig,
    RunSpec,
    Variant,
    split_optimiser,
    variant_spec,
)
from benchmark.jobs import train
from benchmark.jobs.runner import load_data, run_cell
from benchmark.models import teachers
from benchmark.store.claims import holder_gone
from benchmark.store.runtime import Runtime, start_worker, worker_context
from benchmark.store.tracking import Tracker

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 120


def default_storage(results: Path | str = "results") -> str:
    return str((Path(results) / "optuna.journal").resolve())


def open_storage(url: str | None, results: Path | str = "results"):
    """Optuna storage for ``url``: an RDB URL or a journal file path; a URL that cannot be
    opened is one :class:`ConfigError` line."""
    url = url or default_storage(results)
    try:
        if "://" in url:
            kwargs: dict[str, Any] = {}
            if url.startswith("sqlite"):
                kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
            return optuna.storages.RDBStorage(
                url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(3),
                **kwargs)
        Path(url).parent.mkdir(parents=True, exist_ok=True)
        backend = optuna.storages.journal.JournalFileBackend(
            url, lock_obj=optuna.storages.journal.JournalFileOpenLock(url))
        return optuna.storages.JournalStorage(backend)
    except Exception as e:  # noqa: BLE001 - SQLAlchemy's and Optuna's many errors: one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"Optuna storage {redact(url)!r} cannot be opened: {first}") from None


def redact(url: str) -> str:
    """``url`` without its password (for messages and tags)."""
    if "://" in url and "@" in url.split("://", 1)[1]:
        scheme, rest = url.split("://", 1)
        auth, host = rest.rsplit("@", 1)
        return f"{scheme}://{auth.split(':', 1)[0]}:***@{host}" if ":" in auth else url
    return url


def study_name(dataset: str, arch: str, variant: Variant) -> str:
    """``dataset/arch/label``: one study per grid variant (two variants of one method that differ
    in anything, a fidelity preset say, never share a study). A variant that reads its values
    from the study (``hyperparameters: tuned``) names it without its ``-tuned`` suffix."""
    label = variant.label.removesuffix("-tuned") if variant.tuned else variant.label
    return f"{dataset}/{arch}/{label}"


#: The optimiser's search space (``config.OPTIMISER_PARAMS``) as (low, high, log).
OPTIMISER_SPACE = {k: (p.low, p.high, p.log) for k, p in OPTIMISER_PARAMS.items()}


@dataclass(frozen=True)
class Study:
    name: str
    spec: RunSpec  # the variant's fixed settings; trials override the searched hyperparameters
    space: dict[str, tuple[float, float, bool]]  # name -> (low, high, log)
    teacher: RunSpec | None = None  # the grid's CE cell that is the self-teacher, if any
    #: Each trial trains these seeds and scores the mean of their validation top-1.
    seeds: tuple[int, ...] = (0,)
    #: The study's own trial count under a budget in images (None: the command's ``--trials``).
    trials: int | None = None
    images_per_trial: float = 0.0  # relative to one epoch of the training set (CE's epoch = 1)
    pruning: bool = True
    rescore: int = 0  # fresh seeds the winner is trained on after the study

    def teacher_for(self, seed: int) -> RunSpec | None:
        """The self-teacher of a trial's ``seed``: the grid's CE cell of that seed."""
        if self.teacher is None:
            return None
        return dataclasses.replace(self.teacher, seed=seed,
                                   data=self.teacher.data.for_seed(seed - self.teacher.seed))


def protocol(tune: dict) -> dict[str, Any]:
    """The tuning protocol a config's ``tune:`` section (or the flags) declares, defaults filled:
    ``seeds_per_trial`` (1), ``budget`` (None: count trials), ``optimiser`` (false),
    ``pruning`` (off unless asked: the honest protocol's rule, so that a short study never ends
    with a few complete trials and the rest stopped at epoch 2; refused with a budget or
    several seeds per trial), ``rescore`` (0)."""
    k = int(tune.get("seeds_per_trial") or 1)
    budget = tune.get("budget")
    pruning = tune.get("pruning")
    if pruning is None:
        pruning = False
    return {"seeds_per_trial": k, "budget": budget, "optimiser": bool(tune.get("optimiser")),
            "pruning": bool(pruning), "rescore": int(tune.get("rescore") or 0)}


def studies(grid: GridConfig, method: str | None = None) -> list[Study]:
    """One study per (dataset, arch, variant) whose method has something to search; a variant
    that reads the tuned values (``hyperparameters: tuned``) and its reference twin are one
    study, listed once."""
    from benchmark.config.compute import cost_factor

    out = []
    names: set[str] = set()
    tune = grid.tune
    proto = protocol(tune)
    for dataset, ds, arch in grid.tasks():
        for v in grid.tunable_variants():
            if method and method not in (v.method, v.label):
                continue
            m = methods.get(v.method)
            space = {k: (p.low, p.high, p.log) for k, p in m.search_space().items()}
            if proto["optimiser"]:
                space.update(OPTIMISER_SPACE)
            for k, bounds in (tune.get("space") or {}).items():
                if k in space:
                    space[k] = (float(bounds[0]), float(bounds[1]), space[k][2])
            name = study_name(dataset, arch, v)
            if not space or name in names:
                continue
            names.add(name)
            hp = v.hyperparameters_for(arch)
            seed = TRIAL_SEED + int(tune.get("seed", 0))  # never a seed the grid evaluates
            grid_settings = grid.train_for(dataset, arch)
            settings = dataclasses.replace(grid_settings, **({"epochs": tune["epochs"]}
                                                             if tune.get("epochs") else {}))
            spec = variant_spec(ds, arch, v, hp, seed, settings)
            # the self-teacher is the grid's own CE cell (the grid's epochs, not tune's)
            teacher = variant_spec(ds, arch, v, hp, seed, grid_settings).teacher_spec()
            k = proto["seeds_per_trial"]
            per_trial = k * settings.epochs * cost_factor(v.method, hp)
            trials = None
            if proto["budget"] is not None:
                trials = int(float(proto["budget"]) // per_trial)
                if trials < 1:
                    raise ConfigError(
                        f"{grid.path}: tune.budget {proto['budget']:g} is less than one "
                        f"trial of {name} ({per_trial:g}: {k} seeds x {settings.epochs} "
                        f"epochs x {per_trial / k / settings.epochs:g} images per epoch)")
            out.append(Study(name, spec, space, teacher,
                             seeds=tuple(seed + i for i in range(k)), trials=trials,
                             images_per_trial=per_trial, pruning=proto["pruning"],
                             rescore=proto["rescore"]))
    if not out:
        which = f" for method {method!r}" if method else ""
        raise ConfigError(f"{grid.path}: nothing to tune{which} (ce has no search space unless "
                          "tune.optimiser is true)")
    return out


def tuned_hyperparameters(grid: GridConfig, dataset: str, arch: str, variant: Variant,
                          storage: str | None = None) -> dict[str, Any]:
    """The best trial's parameters of the matching study; a clear error when there is none."""
    name = study_name(dataset, arch, variant)
    url = storage or grid.tune.get("storage") or default_storage()
    hint = (f"no tuned values for study {name!r} in {url}; run: drkd-bench tune {grid.path} "
            f"--method {variant.method}")
    if "://" not in url and not Path(url).is_file():  # reading must not create a journal
        raise ConfigError(hint)
    try:
        study = optuna.load_study(study_name=name, storage=open_storage(url))
    except KeyError:
        raise ConfigError(hint) from None
    best = chosen_trial(study)
    if best is None:
        raise ConfigError(hint + " (it has no complete trial)")
    return dict(best.params)


# --- running ------------------------------------------------------------------------------------

def _teacher(study: Study, dataset: data_mod.TensorData, tracker: Tracker, rt: Runtime,
             seed: int | None = None) -> Any:
    """The self-teacher for tuning: the grid's CE cell of the same dataset, arch, seed and
    training settings, trained (and tracked) as that cell first when it has not finished."""
    tspec = study.teacher_for(study.spec.seed if seed is None else seed)
    if tspec is None:
        return None
    folder = tracker.results / "checkpoints" / "tune-teachers" / tspec.hash
    found = tracker.teacher_checkpoint(tspec.hash, folder)
    if found is None:  # tracked, but not as a cell a report evaluates: its seed is tuning's
        run_cell(tspec, tracker, rt, extra_tags={"kind": "tuning-teacher"})
        found = tracker.teacher_checkpoint(tspec.hash, folder)
    c, h, _ = dataset.image_shape
    dev = train.resolve_device(rt.device)
    return teachers.load_model(found[1], study.spec.arch, c, dataset.num_classes, h, dev)


def _prepare(study_def: Study, tracker: Tracker, rt: Runtime, seeds=None):
    """Per seed of ``seeds`` (default: the study's trial seeds): the data that seed trains on,
    without its test split, on the device (with ``split: per-seed`` each seed its own split,
    as its self-teacher's), and its self-teacher (None for a method without one)."""
    dev = train.resolve_device(rt.device)
    seeds = study_def.seeds if seeds is None else seeds
    data = {s: without_test(load_data(trial_spec(study_def, {}, s).data, rt.data_root)).to(dev)
            for s in seeds}
    return data, {s: _teacher(study_def, data[s], tracker, rt, s) for s in seeds}


def trial_spec(study_def: Study, params: dict[str, Any], seed: int) -> RunSpec:
    """The run a trial's ``params`` mean for ``seed``: the searched hyperparameters resolved by
    the method, the optimiser settings (``lr``, ``weight_decay``) in the training settings."""
    searched, train_values = split_optimiser(params)
    hp = {**study_def.spec.hyperparameters, **searched}
    return dataclasses.replace(
        study_def.spec, seed=seed, hyperparameters=methods.get(study_def.spec.method).resolve(hp),
        train=dataclasses.replace(study_def.spec.train, **train_values),
        data=study_def.spec.data.for_seed(seed - study_def.spec.seed))  # split: per-seed


def score(study_def: Study, params: dict[str, Any], seeds, dataset: dict, teachers_by_seed: dict,
          rt: Runtime, on_epoch=None) -> dict[str, Any]:
    """Train ``params`` once per seed (``dataset``: each seed's data, from :func:`_prepare`); the
    mean validation top-1 (the trial's value), its SD over the seeds, the mean validation NLL
    and the images forwarded (student and teacher models)."""
    values, nlls, images = [], [], 0.0
    for i, seed in enumerate(seeds):
        spec = trial_spec(study_def, params, seed)
        result = train.train(spec, dataset[seed], teacher_model=teachers_by_seed.get(seed),
                             device=rt.device, on_epoch=on_epoch if i == 0 else None)
        value = result.final["val_top1"]
        if not math.isfinite(value):
            raise train.TrainingDiverged("validation accuracy is not finite")
        values.append(value)
        nlls.append(result.final["val_nll"])
        images += sum(r.get("cost_student_images", 0.0) + r.get("cost_teacher_images", 0.0)
                      for r in result.history)
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
    return {"value": float(np.mean(values)), "values": values, "sd": sd,
            "nll": float(np.mean(nlls)), "images": images, "seeds": list(seeds)}


def without_test(d: data_mod.TensorData) -> data_mod.TensorData:
    return dataclasses.replace(d, test_x=None, test_y=None)


def _safe(fn, *args, **kwargs):
    """Tracking must never kill a study: log the problem and go on."""
    try:
        return fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001
        warnings.warn(f"tracking failed, the study goes on: {type(e).__name__}: {e}",
                      stacklevel=2)
        return None


def parent_run(tracker: Tracker, study: Study, storage: str) -> str:
    """The study's one MLflow parent run for this storage (found again on a rerun, marked
    RUNNING), created in the command's own process before any worker starts."""
    where = redact(storage)
    found = [r for r in tracker.runs(f"tags.kind = 'study' and tags.study = '{study.name}'")
             if r.data.tags.get("storage") == where]
    if found:
        tracker.set_status(found[0].info.run_id, "RUNNING")
        return found[0].info.run_id
    return tracker.new_run(f"study {study.name}", {
        "kind": "study", "study": study.name, "storage": where, "dataset": study.spec.data.task,
        "arch": study.spec.arch, "method": study.spec.method, "variant": study.spec.label})


def _staleness(study: optuna.Study, t: optuna.trial.FrozenTrial, grace: float,
               now: float) -> tuple[bool, bool, float]:
    """(dead, process gone, last heartbeat) of a RUNNING trial: its process is gone (on this
    host) or, for the journal storage (no built-in heartbeat), its heartbeat is older than
    ``grace`` seconds."""
    journal = isinstance(study._storage, optuna.storages.JournalStorage)
    beat = t.user_attrs.get("heartbeat", t.datetime_start.timestamp() if t.datetime_start
                            else now)
    gone = holder_gone(str(t.user_attrs.get("process", "")))
    return gone or (journal and now - beat > grace), gone, beat


def dead(study: optuna.Study, t: optuna.trial.FrozenTrial, grace: float = GRACE_SECONDS,
         now: float | None = None) -> bool:
    """A RUNNING trial whose process is gone or whose journal heartbeat is stale."""
    return _staleness(study, t, grace, time.time() if now is None else now)[0]


def fail_stale_journal_trials(study: optuna.Study, grace: float = GRACE_SECONDS,
                              tracker: Tracker | None = None) -> int:
    """Fail RUNNING trials whose process is gone (on this host) or, for the journal storage (no
    built-in heartbeat), whose heartbeat is older than ``grace`` seconds; re-queue their
    parameters and mark their MLflow runs FAILED with the reason. Returns how many."""
    now, count = time.time(), 0
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        stale, gone, beat = _staleness(study, t, grace, now)
        if not stale:
            continue
        try:
            study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        except Exception:  # noqa: BLE001 - another worker got there first
            continue
        study.enqueue_trial(t.params, user_attrs={"retried_from": t.number})
        count += 1
        run_id = t.user_attrs.get("mlflow_run_id")
        if tracker is not None and run_id:
            why = ("its process died" if gone else
                   f"no heartbeat for {now - beat:.0f}s (its process died)")
            _safe(tracker.set_tags, run_id, {"state": "FAIL", "failure_reason": why})
            _safe(tracker.set_status, run_id, "FAILED")
    return count


def run_study(study_def: Study, *, trials: int, timeout: float | None, storage: str | None,
              tracker: Tracker, rt: Runtime, seed: int, worker: int = 0,
              parent: str | None = None) -> optuna.Study:
    """Run ``trials`` more trials of the study in this process (worker ``worker``); each trial
    is an MLflow run nested under ``parent``, and trial and run name each other."""
    st = open_storage(storage, tracker.results)
    sampler = optuna.samplers.TPESampler(seed=sampler_seed(study_def.name, seed, worker),
                                         n_startup_trials=5)
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
              if study_def.pruning else optuna.pruners.NopPruner())
    study = optuna.create_study(study_name=study_def.name, storage=st, direction="maximize",
                                sampler=sampler, pruner=pruner, load_if_exists=True)
    fail_stale_journal_trials(study, tracker=tracker)
    journal = isinstance(study._storage, optuna.storages.JournalStorage)
    where = redact(storage or default_storage(tracker.results))
    describe_study(study, study_def, where)
    dataset, teacher_models = _prepare(study_def, tracker, rt)

    def objective(trial: optuna.Trial) -> float:
        params = {k: trial.suggest_float(k, low, high, log=log)
                  for k, (low, high, log) in study_def.space.items()}
        spec = trial_spec(study_def, params, study_def.seeds[0])
        run_id = _safe(tracker.new_run, f"{study_def.name} trial {trial.number}",
                       {"kind": "trial", "study": study_def.name, "trial": str(trial.number),
                        "optuna_storage": where, "dataset": spec.data.task, "arch": spec.arch,
                        "method": spec.method, "variant": spec.label, "seed": str(spec.seed)},
                       {**spec.flat_params()}, parent)
        if run_id:
            trial.set_user_attr("mlflow_run_id", run_id)
        import os
        import socket

        trial.set_user_attr("process", f"{socket.gethostname()} {os.getpid()}")
        state = "FAIL"

        def report(row: dict) -> None:
            if journal:  # RDB storages have Optuna's own heartbeat
                trial.set_user_attr("heartbeat", time.time())
            if study_def.pruning:
                trial.report(row["val_top1"], row["epoch"])
            if run_id and len(study_def.seeds) == 1:  # one seed: its curve is the trial's
                _safe(tracker.log_epoch, run_id, row)
            if study_def.pruning and trial.should_prune():
                raise optuna.TrialPruned()

        try:
            got = score(study_def, params, study_def.seeds, dataset, teacher_models, rt, report)
            trial.set_user_attr("val_nll", got["nll"])
            trial.set_user_attr("seed_values", got["values"])
            trial.set_user_attr("images", got["images"])
            if run_id:
                _safe(tracker.log_epoch, run_id, {
                    "epoch": spec.train.epochs, "val_top1": got["value"], "val_nll": got["nll"],
                    "trial_val_sd": got["sd"], "trial_seeds": len(got["values"]),
                    "trial_images": got["images"]})
            state = "COMPLETE"
            return got["value"]
        except optuna.TrialPruned:
            state = "PRUNED"
            raise
        finally:
            if run_id:  # a pruned trial stopped early by design: FINISHED, tagged PRUNED
                _safe(tracker.set_tags, run_id, {"state": state})
                _safe(tracker.set_status, run_id, RUN_STATUS[state])

    bar = tqdm(total=trials, desc=study_def.name, unit="trial", leave=False, dynamic_ncols=True,
               disable=not sys.stderr.isatty())

    def log_best(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        bar.update(1)
        best = best_trial(study)
        tqdm.write(trial_line(study_def.name, trial, best), file=sys.stdout)
        if parent is None:
            return
        if best is None:
            return
        metrics = {"best_val_top1": best.value, "trials": len(study.trials),
                   **{f"best_{k}": v for k, v in best.params.items()}}
        _safe(tracker.log_epoch, parent, {"epoch": len(study.trials), **metrics})

    try:
        study.optimize(objective, n_trials=trials, timeout=timeout, callbacks=[log_best],
                       catch=(train.TrainingDiverged,))
    finally:
        bar.close()
    return study


#: The MLflow status of a trial's run for each Optuna end state: a pruned trial did what it was
#: asked (stop once it trailed the median), so it is not drawn as a failure (MLflow has no
#: "pruned" status; the run's ``state`` tag says PRUNED and the tables leave it out).
RUN_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "FINISHED", "FAIL": "FAILED"}


def trial_line(name: str, trial: optuna.trial.FrozenTrial,
               best: optuna.trial.FrozenTrial | None) -> str:
    """One line per finished trial: its state and validation top-1, and the running best."""
    last = max(trial.intermediate_values, default=None)
    if trial.state == optuna.trial.TrialState.COMPLETE:
        value = f"val_top1 {100 * trial.value:.2f}%"
    elif last is not None:  # pruned (or failed) at an epoch: its last reported value
        value = f"last val_top1 {100 * trial.intermediate_values[last]:.2f}% at epoch {last}"
    else:
        value = "no value"
    running = "no complete trial yet" if best is None else \
        f"best val_top1 {100 * best.value:.2f}% (trial {best.number})"
    return f"{name} trial {trial.number}: {trial.state.name.lower()}, {value}; {running}"


def describe_study(study: optuna.Study, study_def: Study, storage: str) -> None:
    """Name the objective and say what the study is, for optuna-dashboard and ``--show``
    (``storage`` as shown to people: without its password)."""
    study.set_metric_names(["val_top1"])  # a fraction, as the MLflow metric of the same name
    spec = study_def.spec
    # the objective first: optuna-dashboard's best-trial box shows a bare number, and the
    # attributes table beside it shows its first rows
    attrs = {"objective": "val_top1: final-epoch validation top-1 (fraction); ties broken by "
                          "validation NLL",
             "dataset": spec.data.task, "arch": spec.arch, "method": spec.method,
             "variant": spec.label, "epochs": spec.train.epochs, "seed": spec.seed,
             "seeds_per_trial": len(study_def.seeds), "pruning": study_def.pruning,
             "images_per_trial": study_def.images_per_trial,
             "budget_trials": study_def.trials,
             "search_space": {k: {"low": lo, "high": hi, "log": log}
                              for k, (lo, hi, log) in study_def.space.items()},
             "storage": storage}
    for key, value in attrs.items():
        if study.user_attrs.get(key) != value:
            study.set_user_attr(key, value)


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The best complete trial by Optuna's own rule (``study.best_trial``: the highest validation
    top-1, the earliest trial among equals), so that ``tune``, the grid and optuna-dashboard's
    "Best Trial" name one trial; near-ties are settled by re-scoring on fresh seeds (the
    honest protocol's :func:`rescore`), not by a second metric. None when none completed."""
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not done:
        return None
    return min(done, key=_rank)


def _rank(t: optuna.trial.FrozenTrial) -> tuple[float, int]:
    return (-t.value, t.number)


def sampler_seed(name: str, seed: int, worker: int = 0) -> int:
    """The sampler's seed: ``--seed`` and the worker, mixed with the study's name so that two
    studies never propose the same first trials (stable across processes, unlike ``hash``)."""
    digest = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")
    return (digest + seed + worker) % 2 ** 31


def _worker(study_def: Study, kwargs: dict, worker: int, rt: Runtime,
            env: dict | None = None) -> None:
    rt = start_worker(rt, env)  # env None: a Ray task, which keeps its own
    run_study(study_def, tracker=rt.tracker(), rt=rt, worker=worker, **kwargs)


def shares(trials: int, workers: int) -> list[int]:
    """Trials per worker, summing to ``trials`` exactly (a shared stop count would let workers
    that start at the same moment overshoot it)."""
    return [trials // workers + (w < trials % workers) for w in range(workers)]


def run(study_defs: list[Study], *, trials: int, timeout: float | None, storage: str | None,
        tracker: Tracker, rt: Runtime, seed: int, workers: int = 1, executor: str = "local",
        ray_address: str | None = None, up_to: bool = False, say=print) -> list[optuna.Study]:
    """Each study in turn; ``workers`` processes (local or Ray tasks) share one study. With
    ``up_to``, ``trials`` is each study's total of finished (complete or pruned) trials and only
    the missing ones run."""
    out = []
    for s in study_defs:
        started = time.perf_counter()
        since = datetime.datetime.now()
        existing = _existing(s.name, storage, tracker)
        reaped = 0
        if existing:  # trials (and their MLflow runs) whose process died: FAILED, re-queued
            if not isinstance(existing._storage, optuna.storages.JournalStorage):
                reaped += len(optuna.storages.fail_stale_trials(existing) or [])
            reaped += fail_stale_journal_trials(existing, tracker=tracker)
        if reaped:
            say(f"{s.name}: {reaped} trial(s) whose process died marked failed; their "
                "parameters are queued again")
        todo = trials if s.trials is None else s.trials
        if (up_to or s.trials is not None) and existing:  # a budget is always a total
            done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
            todo -= len(existing.get_trials(deepcopy=False, states=done))
            if todo <= 0:
                say(summary_line(existing) + "; budget already spent")
                if s.rescore:
                    say(rescore(existing, s, storage, tracker, rt, workers))
                out.append(existing)
                continue
        ensure_reference(s, storage, tracker, say)
        url = storage or default_storage(tracker.results)
        parent = _safe(parent_run, tracker, s, url)
        status = "FAILED"
        try:
            study = _run_workers(s, trials=todo, timeout=timeout, storage=storage,
                                 tracker=tracker, rt=rt, seed=seed, workers=workers,
                                 executor=executor, ray_address=ray_address, parent=parent)
            status = "FINISHED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            if parent:
                _safe(tracker.set_status, parent, status)
        seconds = time.perf_counter() - started
        new = sum(1 for t in study.trials if t.datetime_start and t.datetime_start >= since
                  and t.state.is_finished())  # a re-queued trial run now counts as new
        say(summary_line(study, seconds, new))
        if s.rescore:
            say(rescore(study, s, storage, tracker, rt, workers))
        out.append(study)
    return out


#: Fresh seeds for re-scoring start here (never a trial's seed).
#: Seeds that no grid cell evaluates (a config's seeds must lie below RESCORE_SEED): a study's
#: trials train ``TRIAL_SEED + tune.seed + i`` and its re-scores ``RESCORE_SEED + that + i``, so
#: that tuning never selects on the runs the report then evaluates.
RESCORE_SEED = RESERVED_SEEDS
TRIAL_SEED = 2 * RESERVED_SEEDS


#: How many of a study's best trials are re-scored on fresh seeds before one is chosen (the
#: reference trial is re-scored too, wherever it ranked).
CANDIDATES = 3


def candidates(study: optuna.Study, top: int = CANDIDATES) -> list[optuna.trial.FrozenTrial]:
    """The trials a study's choice is made among: its ``top`` best complete trials (the order of
    :func:`best_trial`) and its reference trial (trial 0's enqueued reference values)."""
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    ranked = sorted(done, key=_rank)
    out = ranked[:top]
    out += [t for t in ranked[top:] if t.user_attrs.get("reference")]
    return out


def chosen_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """The trial a grid's tuned variant uses: the study's recorded choice (the best mean on
    fresh seeds among :func:`candidates`) when it was re-scored, else :func:`best_trial`."""
    choice = study.user_attrs.get("choice")
    if choice is not None:
        for t in study.get_trials(deepcopy=False):
            if t.number == choice["trial"]:
                return t
    return best_trial(study)


#: A re-scoring worker's study, seeds, runtime and prepared data (:func:`_init_rescorer`).
_rescorer: dict = {}


def _init_rescorer(s: Study, seeds: list[int], rt: Runtime, devices, env: dict) -> None:
    rt = start_worker(rt, env, devices)
    dataset, teacher_models = _prepare(s, rt.tracker(), rt, seeds)
    _rescorer.update(s=s, seeds=seeds, rt=rt, dataset=dataset, teachers=teacher_models)


def _rescore_in_worker(params: dict) -> dict:
    w = _rescorer
    return score(w["s"], params, w["seeds"], w["dataset"], w["teachers"], w["rt"])


def _rescores(s: Study, todo: list, seeds: list[int], tracker: Tracker, rt: Runtime,
              workers: int = 1):
    """(trial, score) of each candidate in ``todo``, as each finishes. With ``workers`` > 1 the
    candidates go to a pool of that many local processes (the grid's mechanism), each with its
    share of the CPU threads as the trials' workers have. A candidate's score depends on its
    parameters, its seeds and the threads it trains with, never on which process trains it."""
    if not todo:
        return
    if workers <= 1 or len(todo) == 1:
        dataset, teacher_models = _prepare(s, tracker, rt, seeds)
        for t in todo:
            yield t, score(s, dict(t.params), seeds, dataset, teacher_models, rt)
        return
    _prepare(s, tracker, rt, seeds)  # a missing self-teacher trained once, not once per worker
    workers = min(workers, len(todo))
    wrt = rt.for_workers(tracker.results, tracker.uri, workers)
    ctx = worker_context()
    devices = ctx.Queue()
    for device in wrt.worker_devices(workers):
        devices.put(device)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_rescorer,
                             initargs=(s, seeds, wrt, devices, dict(os.environ))) as pool:
        futures = {pool.submit(_rescore_in_worker, dict(t.params)): t for t in todo}
        try:
            for f in as_completed(futures):
                yield futures[f], f.result()
        finally:  # stopped early (an error, an interrupt): start no further candidate
            for f in futures:
                f.cancel()


def rescore(study: optuna.Study, s: Study, storage: str | None, tracker: Tracker,
            rt: Runtime, workers: int = 1) -> str:
    """Train each of the study's :func:`candidates` on ``s.rescore`` fresh seeds (validation
    split, as the trials; the same seeds for every candidate) and choose the best mean there:
    the value that picked the candidates is not the value that chooses among them, so the
    winner's curse is measured, and a tuned variant never ships settings that lose to its
    reference on fresh seeds unless the table says so. Recorded in the study (user attributes
    ``rescores`` and ``choice``) and as MLflow runs (``kind=rescore``); a candidate is re-scored
    once."""
    pool = candidates(study)
    if not pool:
        return f"{s.name}: no complete trial to re-score"
    seeds = [RESCORE_SEED + s.spec.seed + i for i in range(s.rescore)]
    done = {int(k): v for k, v in (study.user_attrs.get("rescores") or {}).items()}
    todo = [t for t in pool if len(done.get(t.number, {}).get("values", [])) != s.rescore]
    for t, got in _rescores(s, todo, seeds, tracker, rt, workers):
        done[t.number] = {"selected": t.value, **got}
        study.set_user_attr("rescores", {str(k): v for k, v in done.items()})
        spec = trial_spec(s, dict(t.params), seeds[0])
        run_id = _safe(tracker.new_run, f"{s.name} rescore trial {t.number}",
                       {"kind": "rescore", "study": s.name, "trial": str(t.number),
                        "reference": str(bool(t.user_attrs.get("reference"))).lower(),
                        "dataset": spec.data.task, "arch": spec.arch, "method": spec.method,
                        "variant": spec.label, "seed": str(seeds[0])}, spec.flat_params())
        if run_id:
            _safe(tracker.log_epoch, run_id, {
                "epoch": spec.train.epochs, "val_top1": got["value"],
                "trial_val_sd": got["sd"], "trial_seeds": len(seeds),
                "trial_images": got["images"], "selected_val_top1": t.value})
            _safe(tracker.set_status, run_id, "FINISHED")
    scored = [(t, done[t.number]) for t in pool]
    win, got = max(scored, key=lambda p: (p[1]["value"], p[0].value, -p[0].number))
    study.set_user_attr("choice", {"trial": win.number, "rescored": got["value"],
                                   "selected": win.value, "candidates": [t.number for t in pool]})
    ref = next((t for t in pool if t.user_attrs.get("reference")), None)
    ref_text = ""
    if ref is not None:
        ref_value = done[ref.number]["value"]
        ref_text = (f"; the reference (trial {ref.number}) {100 * ref_value:.2f}%"
                    + (" is the choice" if ref is win else
                       f", {100 * (got['value'] - ref_value):+.2f} points behind the choice"))
    best = best_trial(study)
    drop = 100 * (got["value"] - win.value)
    return (f"{s.name}: chose trial {win.number} among {len(pool)} re-scored on {len(seeds)} "
            f"fresh seeds: {100 * win.value:.2f}% on its tuning seeds, {100 * got['value']:.2f}% "
            f"(SD {100 * got['sd']:.2f}) fresh ({drop:+.2f} points)"
            + (f"; the study's best by tuning value was trial {best.number}"
               if best is not None and best.number != win.number else "") + ref_text)


def reference_params(s: Study) -> dict[str, float] | None:
    """The variant's reference values of every searched parameter (the method's resolved
    hyperparameters, the grid's lr and weight_decay), or None when one lies outside its search
    range (a narrowed ``tune.space``)."""
    out = {}
    for k, (low, high, _) in s.space.items():
        value = getattr(s.spec.train, k) if k in OPTIMISER_SPACE else s.spec.hyperparameters[k]
        if value is None or not low <= float(value) <= high:
            return None
        out[k] = float(value)
    return out


def ensure_reference(s: Study, storage: str | None, tracker: Tracker, say=print) -> None:
    """A new study's trial 0 is the variant at its reference values (enqueued), so that the
    reference always competes and the report can read tuned against reference inside it."""
    study = optuna.create_study(study_name=s.name, storage=open_storage(storage,
                                                                         tracker.results),
                                direction="maximize", load_if_exists=True)
    if study.trials:
        return
    params = reference_params(s)
    if params is None:
        say(f"{s.name}: the reference values lie outside the search space; no reference trial")
        return
    study.enqueue_trial(params, user_attrs={"reference": True})


def _run_workers(s: Study, *, trials: int, timeout: float | None, storage: str | None,
                 tracker: Tracker, rt: Runtime, seed: int, workers: int, executor: str,
                 ray_address: str | None, parent: str | None) -> optuna.Study:
    wrt = rt.for_workers(tracker.results, tracker.uri, workers)
    kwargs = dict(timeout=timeout, storage=storage, seed=seed, parent=parent)
    per_worker = [dict(kwargs, trials=n) for n in shares(trials, workers) if n]
    if len(per_worker) > 1:  # train a missing self-teacher once, not once per worker
        _prepare(s, tracker, rt)
    if executor == "ray":
        from benchmark.store import distributed

        distributed.init(ray_address, workers, wrt.threads, quiet=True)
        distributed.run_all(_worker, [(s, kw, w, wrt) for w, kw in enumerate(per_worker)],
                            wrt.threads, wrt.gpu_share())
    elif workers <= 1:
        return run_study(s, trials=trials, tracker=tracker, rt=rt, **kwargs)
    else:
        ctx = worker_context()
        devices = wrt.worker_devices(len(per_worker))  # round-robin over the GPUs
        procs = [ctx.Process(target=_worker,
                             args=(s, kw, w, dataclasses.replace(wrt, device=devices[w]),
                                   dict(os.environ)))
                 for w, kw in enumerate(per_worker)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        if any(p.exitcode for p in procs):
            raise RuntimeError(f"{s.name}: a tuning worker exited with an error")
    return optuna.load_study(study_name=s.name, storage=open_storage(storage, tracker.results))


def _existing(name: str, storage: str | None, tracker: Tracker) -> optuna.Study | None:
    """The study as stored, or None when it does not exist yet."""
    try:
        return optuna.load_study(study_name=name, storage=open_storage(storage, tracker.results))
    except KeyError:
        return None


def summary_line(study: optuna.Study, seconds: float | None = None, new: int | None = None,
                 look_for_dead: bool = False) -> str:
    """The study in one line: trials by state (a failed trial that was re-queued says so; with
    ``look_for_dead``, a RUNNING trial whose process is gone is counted as dead, not running),
    the best trial, and the new trials' time."""
    states = [t.state.name for t in study.trials]
    if look_for_dead:
        now = time.time()
        states = ["DEAD" if t.state == optuna.trial.TrialState.RUNNING and dead(study, t, now=now)
                  else t.state.name for t in study.trials]
    retried = sum(1 for t in study.trials if "retried_from" in t.user_attrs)
    words = {"FAIL": f"fail {states.count('FAIL')}" + (
                 f" ({retried} re-queued: its process died)" if retried else ""),
             "DEAD": f"dead {states.count('DEAD')} (process gone; failed and re-queued at the "
                     "next tune)"}
    counts = ", ".join(words.get(s, f"{s.lower()} {states.count(s)}")
                       for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "DEAD", "WAITING")
                       if s in states)
    best = best_trial(study)
    best_text = "no complete trial yet" if best is None else (
        f"best val {100 * best.value:.2f}% (trial {best.number}) with "
        + ", ".join(f"{k}={v:.4g}" for k, v in best.params.items()))
    timing = (f"; {new} new in {seconds:.1f}s ({seconds / new:.1f}s/trial)"
              if seconds is not None and new else "")
    return f"{study.study_name}: {len(states)} trials ({counts}); {best_text}{timing}"


def show(study_defs: list[Study], storage: str | None, results: Path | str) -> list[str]:
    lines = []
    for s in study_defs:
        try:
            study = optuna.load_study(study_name=s.name, storage=open_storage(storage, results))
            lines.append(summary_line(study, look_for_dead=True))
        except KeyError:
            lines.append(f"{s.name}: no study yet")
    return lines

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
import hashlib
import math
import multiprocessing as mp
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

import methods

from . import data as data_mod
from . import teachers, train
from .config import ConfigError, GridConfig, RunSpec, Variant, variant_spec
from .runner import load_data
from .runtime import Runtime
from .tracking import Tracker

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

HEARTBEAT_SECONDS = 30
GRACE_SECONDS = 120


def default_storage(results: Path | str = "results") -> str:
    return str((Path(results) / "optuna.journal").resolve())


def open_storage(url: str | None, results: Path | str = "results"):
    url = url or default_storage(results)
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


def study_name(dataset: str, arch: str, variant: Variant) -> str:
    """``dataset/arch/label``: one study per grid variant (two variants of one method that differ
    in anything, a fidelity preset say, never share a study). A variant that reads its values
    from the study (``hyperparameters: tuned``) names it without its ``-tuned`` suffix."""
    label = variant.label.removesuffix("-tuned") if variant.tuned else variant.label
    return f"{dataset}/{arch}/{label}"


@dataclass(frozen=True)
class Study:
    name: str
    spec: RunSpec  # the variant's fixed settings; trials override the searched hyperparameters
    space: dict[str, tuple[float, float, bool]]  # name -> (low, high, log)


def studies(grid: GridConfig, method: str | None = None) -> list[Study]:
    """One study per (dataset, arch, variant) whose method has something to search."""
    out = []
    tune = grid.tune
    for dataset, (ds, _) in grid.datasets.items():
        for arch in grid.architectures:
            for v in grid.variants:
                if method and method not in (v.method, v.label):
                    continue
                m = methods.get(v.method)
                space = {k: (p.low, p.high, p.log) for k, p in m.search_space().items()}
                for k, bounds in (tune.get("space") or {}).items():
                    if k in space:
                        space[k] = (float(bounds[0]), float(bounds[1]), space[k][2])
                if not space:
                    continue
                hp = v.hyperparameters_for(arch)
                settings = dataclasses.replace(grid.train_for(dataset, arch),
                                               **({"epochs": tune["epochs"]}
                                                  if tune.get("epochs") else {}))
                spec = variant_spec(ds, arch, v, hp, int(tune.get("seed", grid.seeds[0])),
                                    settings)
                out.append(Study(study_name(dataset, arch, v), spec, space))
    if not out:
        which = f" for method {method!r}" if method else ""
        raise ConfigError(f"{grid.path}: nothing to tune{which} (ce has no search space)")
    return out


def tuned_hyperparameters(grid: GridConfig, dataset: str, arch: str, variant: Variant,
                          storage: str | None = None) -> dict[str, Any]:
    """The best trial's parameters of the matching study; a clear error when there is none."""
    name = study_name(dataset, arch, variant)
    url = storage or grid.tune.get("storage") or default_storage()
    hint = (f"no tuned values for study {name!r} in {url}; run: drkd-bench tune {grid.path} "
            f"--method {variant.method}")
    try:
        study = optuna.load_study(study_name=name, storage=open_storage(url))
        best = study.best_trial
    except (KeyError, ValueError):
        raise ConfigError(hint) from None
    return dict(best.params)


# --- running ------------------------------------------------------------------------------------

def _teacher(spec: RunSpec, dataset: data_mod.TensorData, tracker: Tracker, device) -> Any:
    """The self-teacher for tuning: the grid's finished CE cell when it exists, else a CE run
    trained here on the training split only (cached under results/checkpoints/tune-teachers)."""
    tspec = spec.teacher_spec()
    if tspec is None:
        return None
    c, h, _ = dataset.image_shape
    folder = tracker.results / "checkpoints" / "tune-teachers" / tspec.hash
    found = tracker.teacher_checkpoint(tspec.hash, folder)
    path = found[1] if found else folder / "model.pt"
    if found is None and not path.is_file():
        teachers.save_model(train.train(tspec, dataset, device=device).model, path)
    return teachers.load_model(path, spec.arch, c, dataset.num_classes, h, device)


def _prepare(study_def: Study, tracker: Tracker, rt: Runtime):
    """The study's data without its test split, on the device, and its self-teacher (or None)."""
    dev = train.resolve_device(rt.device)
    dataset = without_test(load_data(study_def.spec.data, rt.data_root)).to(dev)
    return dataset, _teacher(study_def.spec, dataset, tracker, dev)


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


def _parent_run(tracker: Tracker, study: Study) -> str | None:
    def find_or_create():
        found = tracker.runs(f"tags.kind = 'study' and tags.study = '{study.name}'")
        if found:
            return found[0].info.run_id
        return tracker.new_run(f"study {study.name}", {"kind": "study", "study": study.name,
                                                        "dataset": study.spec.data.name,
                                                        "arch": study.spec.arch,
                                                        "method": study.spec.method})
    return _safe(find_or_create)


def fail_stale_journal_trials(study: optuna.Study, grace: float = GRACE_SECONDS) -> int:
    """For the journal storage (no built-in heartbeat): fail RUNNING trials whose heartbeat is
    older than ``grace`` seconds and re-queue their parameters. Returns how many."""
    if not isinstance(study._storage, optuna.storages.JournalStorage):
        return 0
    now, count = time.time(), 0
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        beat = t.user_attrs.get("heartbeat", t.datetime_start.timestamp() if t.datetime_start
                                else now)
        if now - beat > grace:
            try:
                study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
            except Exception:  # noqa: BLE001 - another worker got there first
                continue
            study.enqueue_trial(t.params, user_attrs={"retried_from": t.number})
            count += 1
    return count


def run_study(study_def: Study, *, trials: int, timeout: float | None, storage: str | None,
              tracker: Tracker, rt: Runtime, seed: int, worker: int = 0) -> optuna.Study:
    """Run ``trials`` more trials of the study in this process (worker ``worker``)."""
    st = open_storage(storage, tracker.results)
    sampler = optuna.samplers.TPESampler(seed=sampler_seed(study_def.name, seed, worker),
                                         n_startup_trials=5)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
    study = optuna.create_study(study_name=study_def.name, storage=st, direction="maximize",
                                sampler=sampler, pruner=pruner, load_if_exists=True)
    fail_stale_journal_trials(study)
    dataset, teacher_model = _prepare(study_def, tracker, rt)
    parent = _parent_run(tracker, study_def)

    def objective(trial: optuna.Trial) -> float:
        hp = dict(study_def.spec.hyperparameters)
        for k, (low, high, log) in study_def.space.items():
            hp[k] = trial.suggest_float(k, low, high, log=log)
        spec = dataclasses.replace(study_def.spec,
                                   hyperparameters=methods.get(study_def.spec.method).resolve(hp))
        run_id = _safe(tracker.new_run, f"{study_def.name} trial {trial.number}",
                       {"kind": "trial", "study": study_def.name, "trial": str(trial.number),
                        "dataset": spec.data.name, "arch": spec.arch, "method": spec.method,
                        "variant": spec.label, "seed": str(spec.seed)},
                       {**spec.flat_params()}, parent)
        state = "FAIL"

        def report(row: dict) -> None:
            trial.set_user_attr("heartbeat", time.time())
            trial.report(row["val_top1"], row["epoch"])
            if run_id:
                _safe(tracker.log_epoch, run_id, row)
            if trial.should_prune():
                raise optuna.TrialPruned()

        try:
            result = train.train(spec, dataset, teacher_model=teacher_model, device=rt.device,
                                 on_epoch=report)
            value = result.final["val_top1"]
            if not math.isfinite(value):
                raise train.TrainingDiverged("validation accuracy is not finite")
            state = "COMPLETE"
            return value
        except optuna.TrialPruned:
            state = "PRUNED"
            raise
        finally:
            if run_id:
                _safe(tracker.set_tags, run_id, {"state": state})
                _safe(tracker.set_status, run_id, "FINISHED" if state != "FAIL" else "FAILED")

    def log_best(study: optuna.Study, _trial) -> None:
        if parent is None:
            return
        try:
            best = study.best_trial
        except ValueError:
            return
        metrics = {"best_val_top1": best.value, "trials": len(study.trials),
                   **{f"best_{k}": v for k, v in best.params.items()}}
        _safe(tracker.log_epoch, parent, {"epoch": len(study.trials), **metrics})

    study.optimize(objective, n_trials=trials, timeout=timeout, callbacks=[log_best],
                   catch=(train.TrainingDiverged,))
    return study


def sampler_seed(name: str, seed: int, worker: int = 0) -> int:
    """The sampler's seed: ``--seed`` and the worker, mixed with the study's name so that two
    studies never propose the same first trials (stable across processes, unlike ``hash``)."""
    digest = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")
    return (digest + seed + worker) % 2 ** 31


def _worker(study_def: Study, kwargs: dict, worker: int, rt: Runtime) -> None:
    rt.apply()
    run_study(study_def, tracker=rt.tracker(), rt=rt, worker=worker, **kwargs)


def shares(trials: int, workers: int) -> list[int]:
    """Trials per worker, summing to ``trials`` exactly (a shared stop count would let workers
    that start at the same moment overshoot it)."""
    return [trials // workers + (w < trials % workers) for w in range(workers)]


def run(study_defs: list[Study], *, trials: int, timeout: float | None, storage: str | None,
        tracker: Tracker, rt: Runtime, seed: int, workers: int = 1, executor: str = "local",
        ray_address: str | None = None, say=print) -> list[optuna.Study]:
    """Each study in turn; ``workers`` processes (local or Ray tasks) share one study."""
    out = []
    for s in study_defs:
        started = time.perf_counter()
        before = _count(s.name, storage, tracker)
        wrt = rt.for_workers(tracker.results, tracker.uri, workers)
        kwargs = dict(timeout=timeout, storage=storage, seed=seed)
        per_worker = [dict(kwargs, trials=n) for n in shares(trials, workers) if n]
        if len(per_worker) > 1:  # train a missing self-teacher once, not once per worker
            _prepare(s, tracker, rt)
        if executor == "ray":
            from . import distributed

            distributed.init(ray_address, workers, wrt.threads, quiet=True)
            distributed.run_all(_worker, [(s, kw, w, wrt) for w, kw in enumerate(per_worker)],
                                wrt.threads)
            study = optuna.load_study(study_name=s.name,
                                      storage=open_storage(storage, tracker.results))
        elif workers <= 1:
            study = run_study(s, trials=trials, timeout=timeout, storage=storage,
                              tracker=tracker, rt=rt, seed=seed)
        else:
            ctx = mp.get_context("spawn")
            procs = [ctx.Process(target=_worker, args=(s, kw, w, wrt))
                     for w, kw in enumerate(per_worker)]
            for p in procs:
                p.start()
            for p in procs:
                p.join()
            if any(p.exitcode for p in procs):
                raise RuntimeError(f"{s.name}: a tuning worker exited with an error")
            study = optuna.load_study(study_name=s.name, storage=open_storage(storage,
                                                                              tracker.results))
        seconds = time.perf_counter() - started
        say(summary_line(study, seconds, len(study.trials) - before))
        out.append(study)
    return out


def _count(name: str, storage: str | None, tracker: Tracker) -> int:
    try:
        return len(optuna.load_study(study_name=name, storage=open_storage(
            storage, tracker.results)).trials)
    except KeyError:
        return 0


def summary_line(study: optuna.Study, seconds: float | None = None, new: int | None = None) -> str:
    states = [t.state.name for t in study.trials]
    counts = ", ".join(f"{s.lower()} {states.count(s)}" for s in ("COMPLETE", "PRUNED", "FAIL",
                                                                  "RUNNING") if s in states)
    try:
        best = study.best_trial
        best_text = f"best val {100 * best.value:.2f}% with " + ", ".join(
            f"{k}={v:.4g}" for k, v in best.params.items())
    except ValueError:
        best_text = "no complete trial yet"
    timing = (f"; {new} new in {seconds:.1f}s ({seconds / new:.1f}s/trial)"
              if seconds is not None and new else "")
    return f"{study.study_name}: {len(states)} trials ({counts}); {best_text}{timing}"


def show(study_defs: list[Study], storage: str | None, results: Path | str) -> list[str]:
    lines = []
    for s in study_defs:
        try:
            study = optuna.load_study(study_name=s.name, storage=open_storage(storage, results))
            lines.append(summary_line(study))
        except KeyError:
            lines.append(f"{s.name}: no study yet")
    return lines

"""Running studies: trials in worker processes (or Ray), a heartbeat per epoch, and stale trials
of a journal file failed and their parameters re-queued (Optuna's heartbeat does this for an
RDB); then the re-scoring and the choice."""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import os
import sys
import time

import optuna
from tqdm import tqdm

from benchmark.jobs import train
from benchmark.jobs.tune import choice
from benchmark.jobs.tune.choice import best_trial
from benchmark.jobs.tune.liveness import fail_stale_journal_trials
from benchmark.jobs.tune.objective import parent_run, prepare, safe, score, trial_spec
from benchmark.jobs.tune.rescore import ensure_reference, rescore
from benchmark.jobs.tune.show import summary_line
from benchmark.jobs.tune.studies import Study, default_storage, open_storage, redact
from benchmark.store.runtime import Runtime, start_worker, worker_context
from benchmark.store.tracking import Tracker


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
    dataset, teacher_models = prepare(study_def, tracker, rt)

    def objective(trial: optuna.Trial) -> float:
        params = {k: trial.suggest_float(k, low, high, log=log)
                  for k, (low, high, log) in study_def.space.items()}
        spec = trial_spec(study_def, params, study_def.seeds[0])
        run_id = safe(tracker.new_run, f"{study_def.name} trial {trial.number}",
                       {"kind": "trial", "study": study_def.name, "trial": str(trial.number),
                        "optuna_storage": where, "dataset": spec.data.task, "arch": spec.arch,
                        "method": spec.method, "variant": spec.label, "seed": str(spec.seed),
                        **study_def.tags}, {**spec.flat_params()}, parent)
        if run_id:
            trial.set_user_attr("mlflow_run_id", run_id)
            link_trial(trial, tracker.experiment_id, run_id)
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
                safe(tracker.log_epoch, run_id, row)
            if study_def.pruning and trial.should_prune():
                raise optuna.TrialPruned()

        try:
            got = score(study_def, params, study_def.seeds, dataset, teacher_models, rt, report)
            trial.set_user_attr("val_nll", got["nll"])
            trial.set_user_attr("seed_values", got["values"])
            trial.set_user_attr("images", got["images"])
            if run_id:
                safe(tracker.log_epoch, run_id, {
                    "epoch": spec.train.epochs, "val_top1": got["value"], "val_nll": got["nll"],
                    "trial_val_sd": got["sd"], "trial_seeds": len(got["values"]),
                    "trial_images": got["images"]})
            state = "COMPLETE"
            return got["value"]
        except optuna.TrialPruned:
            state = "PRUNED"
            raise
        finally:
            if run_id:  # a pruned trial stopped early by design: KILLED, tagged PRUNED
                safe(tracker.set_tags, run_id, {"state": state})
                safe(tracker.set_status, run_id, RUN_STATUS[state])

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
        safe(tracker.log_epoch, parent, {"epoch": len(study.trials), **metrics})

    try:
        study.optimize(objective, n_trials=trials, timeout=timeout, callbacks=[log_best],
                       catch=(train.TrainingDiverged,))
    finally:
        bar.close()
    return study


#: The MLflow status of a trial's run for each Optuna end state: a pruned trial did what it was
#: asked (stop once it trailed the median), so it is drawn neither as a failure nor with the
#: finished tick of a complete one: KILLED, MLflow's "stopped" (it has no "pruned" status; the
#: run's ``state`` tag says PRUNED and the tables leave it out; older stores marked it FINISHED).
RUN_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}


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
    attrs = {"objective": choice.RULE,
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



def link_trial(trial: optuna.Trial, experiment_id: str, run_id: str) -> None:
    """The trial's note in optuna-dashboard (Markdown, which it renders; its user attributes are
    plain text): a link to the trial's MLflow run where ``drkd-bench ui`` serves it by default.
    Without optuna-dashboard installed there is nothing to show it, and no note is written."""
    try:
        from optuna_dashboard import save_note
    except ImportError:
        return
    from benchmark.store.ui import DEFAULT_PORT, run_link

    save_note(trial, f"MLflow run of this trial: [{run_id}]({run_link(experiment_id, run_id)}) "
                     f"(the MLflow UI of `drkd-bench ui`, port {DEFAULT_PORT} by default)")


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
        parent = safe(parent_run, tracker, s, url)
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
                safe(tracker.set_status, parent, status)
        seconds = time.perf_counter() - started
        new = sum(1 for t in study.trials if t.datetime_start and t.datetime_start >= since
                  and t.state.is_finished())  # a re-queued trial run now counts as new
        summary = summary_line(study, seconds, new)
        say(summary)
        chosen = ""
        if s.rescore:
            chosen = rescore(study, s, storage, tracker, rt, workers)
            say(chosen)
        if parent:
            safe(describe_run, tracker, parent, study, summary, chosen)
        out.append(study)
    return out


def describe_run(tracker: Tracker, run_id: str, study: optuna.Study, summary: str,
                 chosen: str) -> None:
    """The study's MLflow run says what the study did and which trial the grid uses (the
    re-scored choice, else the best complete trial), with that trial's metrics beside Optuna's
    winner's, and where to see every trial."""
    from benchmark.store.ui import dashboard_link

    best = best_trial(study)
    made = study.user_attrs.get("choice") or {}
    used = made.get("trial", best.number if best is not None else None)
    page = dashboard_link(study._study_id)
    lines = [f"Optuna study {study.study_name}. {summary}.",
             (chosen + "." if chosen else
              f"The grid uses trial {used}, the best complete trial." if used is not None
              else "No trial completed."),
             "Every trial: the child runs below (a pruned trial ends KILLED), or this study in "
             f"optuna-dashboard, [{page}]({page}) as `drkd-bench ui` serves it by default"
             + (f" (the chosen trial: [trial {used}]({dashboard_link(study._study_id, used)}))"
                if used is not None else "") + ".",
             f"Rule: {choice.RULE}"]
    tracker.set_tags(run_id, {"mlflow.note.content": "\n\n".join(lines),
                              **({"chosen_trial": str(used)} if used is not None else {})})
    if "rescored" in made:
        tracker.log_epoch(run_id, {"epoch": len(study.trials),
                                   "chosen_val_top1_fresh": made["rescored"],
                                   "chosen_val_top1": made["selected"]})


def _run_workers(s: Study, *, trials: int, timeout: float | None, storage: str | None,
                 tracker: Tracker, rt: Runtime, seed: int, workers: int, executor: str,
                 ray_address: str | None, parent: str | None) -> optuna.Study:
    wrt = rt.for_workers(tracker.results, tracker.uri, workers)
    kwargs = dict(timeout=timeout, storage=storage, seed=seed, parent=parent)
    per_worker = [dict(kwargs, trials=n) for n in shares(trials, workers) if n]
    if len(per_worker) > 1:  # train a missing self-teacher once, not once per worker
        prepare(s, tracker, rt)
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

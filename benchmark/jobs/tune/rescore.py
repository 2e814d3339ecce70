"""Re-scoring: a study's candidates (and its reference trial) trained again on fresh seeds,
shared among worker processes; the best mean among them is the study's choice."""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed

import optuna

from benchmark.jobs.tune.choice import best_trial, candidates, rescored_rank
from benchmark.jobs.tune.objective import prepare, safe, score, trial_spec
from benchmark.jobs.tune.studies import OPTIMISER_SPACE, RESCORE_SEED, Study, open_storage
from benchmark.store.runtime import Runtime, start_worker, worker_context
from benchmark.store.tracking import Tracker

#: A re-scoring worker's study, seeds, runtime and prepared data (:func:`_init_rescorer`).
_rescorer: dict = {}


def _init_rescorer(s: Study, seeds: list[int], rt: Runtime, devices, env: dict) -> None:
    rt = start_worker(rt, env, devices)
    dataset, teacher_models = prepare(s, rt.tracker(), rt, seeds)
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
        dataset, teacher_models = prepare(s, tracker, rt, seeds)
        for t in todo:
            yield t, score(s, dict(t.params), seeds, dataset, teacher_models, rt)
        return
    prepare(s, tracker, rt, seeds)  # a missing self-teacher trained once, not once per worker
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
        run_id = safe(tracker.new_run, f"{s.name} rescore trial {t.number}",
                       {"kind": "rescore", "study": s.name, "trial": str(t.number),
                        "reference": str(bool(t.user_attrs.get("reference"))).lower(),
                        "dataset": spec.data.task, "arch": spec.arch, "method": spec.method,
                        "variant": spec.label, "seed": str(seeds[0]), **s.tags},
                       spec.flat_params())
        if run_id:
            safe(tracker.log_epoch, run_id, {
                "epoch": spec.train.epochs, "val_top1": got["value"],
                "trial_val_sd": got["sd"], "trial_seeds": len(seeds),
                "trial_images": got["images"], "selected_val_top1": t.value})
            safe(tracker.set_status, run_id, "FINISHED")
    scored = [(t, done[t.number]) for t in pool]
    win, got = min(scored, key=lambda p: rescored_rank(p[0], p[1]["value"]))
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

"""A journal file's trials: each records a heartbeat per epoch; a trial whose heartbeat is
older than the grace period (or whose process is gone) is dead, failed, and its parameters
re-queued (Optuna's own heartbeat does this for an RDB)."""
from __future__ import annotations

import time

import optuna

from benchmark.jobs.tune.objective import safe
from benchmark.jobs.tune.studies import GRACE_SECONDS
from benchmark.store.claims import holder_gone
from benchmark.store.tracking import Tracker


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
            safe(tracker.set_tags, run_id, {"state": "FAIL", "failure_reason": why})
            safe(tracker.set_status, run_id, "FAILED")
    return count

"""``tune --show``: a line per study, its trials and its choice."""
from __future__ import annotations

import time
from pathlib import Path

import optuna

from benchmark.jobs.tune.choice import best_trial
from benchmark.jobs.tune.liveness import dead
from benchmark.jobs.tune.studies import Study, open_storage


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

"""The one rule that ranks a study's trials and names the trial a grid uses: the best complete
trial, its candidates for re-scoring, and the recorded choice."""
from __future__ import annotations

import optuna

#: The rule, in words, wherever a study shows it (its ``objective`` attribute, in MLflow and
#: optuna-dashboard): what :func:`best_trial` does, and nothing else.
RULE = ("val_top1: final-epoch validation top-1 (fraction); the best trial has the highest, "
        "the earlier trial among equal values (Optuna's best_trial); near-ties are settled by "
        "re-scoring the top trials on fresh seeds: the choice is the highest fresh mean, then "
        "the higher tuning value, then the earlier trial")


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


def rescored_rank(t: optuna.trial.FrozenTrial, fresh: float) -> tuple[float, float, int]:
    """The re-scoring's order (smallest first): the higher mean on fresh seeds, then the higher
    tuning value, then the earlier trial (:data:`RULE`; the report's tuning_choice reads the
    recorded choice in the same order)."""
    return (-fresh, -t.value, t.number)




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

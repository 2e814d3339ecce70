"""Optuna search of the distillation hyperparameters (the only package that imports optuna):
what a study is (``studies``), a trial's objective (``objective``), running studies
(``workers``), a journal's stale trials (``liveness``), re-scoring (``rescore``), the one rule
that ranks and chooses (``choice``) and ``tune --show`` (``show``).
"""

from .choice import CANDIDATES, best_trial, candidates, chosen_trial
from .liveness import dead, fail_stale_journal_trials
from .objective import parent_run, score, trial_spec, without_test
from .rescore import _rescores, ensure_reference, reference_params, rescore
from .show import show, summary_line
from .studies import (
    GRACE_SECONDS,
    HEARTBEAT_SECONDS,
    OPTIMISER_SPACE,
    RESCORE_SEED,
    TRIAL_SEED,
    Study,
    default_storage,
    open_storage,
    protocol,
    redact,
    studies,
    study_name,
    tuned_hyperparameters,
)
from .workers import (
    RUN_STATUS,
    describe_study,
    run,
    run_study,
    sampler_seed,
    shares,
    trial_line,
)

__all__ = [
    "CANDIDATES",
    "GRACE_SECONDS",
    "HEARTBEAT_SECONDS",
    "OPTIMISER_SPACE",
    "RESCORE_SEED",
    "RUN_STATUS",
    "Study",
    "TRIAL_SEED",
    "_rescores",
    "best_trial",
    "candidates",
    "chosen_trial",
    "dead",
    "default_storage",
    "describe_study",
    "ensure_reference",
    "fail_stale_journal_trials",
    "open_storage",
    "parent_run",
    "protocol",
    "redact",
    "reference_params",
    "rescore",
    "run",
    "run_study",
    "sampler_seed",
    "score",
    "shares",
    "show",
    "studies",
    "study_name",
    "summary_line",
    "trial_line",
    "trial_spec",
    "tuned_hyperparameters",
    "without_test",
]

"""Statistics over seeds, chosen so that a reviewer can sign each sentence the report writes.

- Per cell (dataset, arch, variant): mean, std and a 95% interval for the mean that stays inside
  the metric's range (percentile bootstrap over seeds; an accuracy or a share never leaves
  [0, 1]).
- Per paired comparison (two variants matched by seed): the mean difference with its 95%
  Student-t interval and the two-sided paired t-test (as before); the Holm-adjusted p within a
  declared family of comparisons; the TOST equivalence p at a declared margin (also Holm-adjusted
  within the family); the minimum detectable difference at 80% power from the observed paired
  SD; and a verdict that is exactly one of ``better``, ``worse``, ``equivalent``,
  ``inconclusive``.
- Per ranking (one dataset, arch and setting): a paired bootstrap over seeds gives each variant's
  rank interval and its probability of ranking first; the probability of improvement
  P(X > baseline) over seed pairs is the Mann-Whitney U statistic over n·m (Agarwal et al. 2021).

The arithmetic comes from scipy and statsmodels; ``docs/statistics.md`` explains every choice.

Modules: ``settings`` (the ``analysis:`` settings), ``intervals`` (a cell's mean),
``variants`` (roles and which comparisons), ``paired`` (one comparison), ``families`` (Holm
within a family; the verdict rule), ``power`` (MDE, seeds needed), ``equivalence`` (TOST,
bounds), ``fragility`` (sensitivity of a verdict), ``verdicts`` (the words), ``compute`` (equal
compute), ``ladder`` (convergence), ``rankings``. The names below are the package's public faces.
"""

from .budget import by_budget
from .compute import (
    COMPUTE_TOLERANCE,
    COST_COLUMNS,
    answer,
    equal_compute,
    equal_compute_rows,
    run_images,
    run_seconds,
)
from .equivalence import SENSITIVITY, equivalence_bound
from .families import adjust, family_of, holm, verdict
from .fragility import fragile_why, sensitivity
from .intervals import bounded_interval, summarize, t_interval
from .ladder import budget_factor, convergence, ladder, ladder_budgets
from .paired import DIFF_DIGITS, HIDDEN, PAIR_COLUMNS, paired, paired_rows
from .power import mde, paired_power, seed_matrix, seeds_needed
from .rankings import TIE_DIGITS, rank_uncertainty, ranking_sets
from .settings import CELL, FAMILY_KEYS, METHOD_ORDER, VERDICTS, Analysis, Family
from .variants import (
    BUDGET_MARK,
    CONTROL_SUFFIX,
    LATTICE,
    RIVALS,
    TUNED_SUFFIX,
    baseline_for,
    comparisons,
    control_of,
    is_budget,
    is_control,
    is_lattice,
    is_tuned,
    reference_of,
    setting_of,
    variant_order,
)
from .verdicts import points_text, sentence, verdict_interval

__all__ = [
    "Analysis",
    "BUDGET_MARK",
    "CELL",
    "COMPUTE_TOLERANCE",
    "CONTROL_SUFFIX",
    "COST_COLUMNS",
    "DIFF_DIGITS",
    "FAMILY_KEYS",
    "Family",
    "HIDDEN",
    "LATTICE",
    "METHOD_ORDER",
    "PAIR_COLUMNS",
    "RIVALS",
    "SENSITIVITY",
    "TIE_DIGITS",
    "TUNED_SUFFIX",
    "VERDICTS",
    "adjust",
    "by_budget",
    "answer",
    "baseline_for",
    "bounded_interval",
    "budget_factor",
    "comparisons",
    "control_of",
    "convergence",
    "equal_compute",
    "equal_compute_rows",
    "equivalence_bound",
    "family_of",
    "fragile_why",
    "holm",
    "is_budget",
    "is_control",
    "is_lattice",
    "is_tuned",
    "ladder",
    "ladder_budgets",
    "mde",
    "paired_power",
    "paired",
    "paired_rows",
    "rank_uncertainty",
    "ranking_sets",
    "reference_of",
    "run_images",
    "run_seconds",
    "seed_matrix",
    "seeds_needed",
    "sensitivity",
    "points_text",
    "sentence",
    "verdict_interval",
    "setting_of",
    "summarize",
    "t_interval",
    "variant_order",
    "verdict",
]

"""What a variant's label says (tuned, control, budget, lattice point; its reference and its
baseline) and which comparisons a grid's variants make."""
from __future__ import annotations

import re

import pandas as pd

from analysis.stats.settings import METHOD_ORDER


def variant_order(variants) -> list[str]:
    """The methods in registry order (each method's variants alphabetical), then anything else."""
    def key(v: str):
        base = next((i for i, m in enumerate(METHOD_ORDER)
                     if v == m or v.startswith((m + "-", m + BUDGET_MARK))), len(METHOD_ORDER))
        return base, v
    return sorted(set(variants), key=key)



#: The paper's question: each method of the left column against the right one with the same
#: teacher source (or, when there is none such, the right one's default variant).
RIVALS = {"drkd": "tfkd-self"}

#: The label a grid gives a variant that reads its hyperparameters from its Optuna study
#: (``hyperparameters: tuned``): the reference variant's label with this suffix.
TUNED_SUFFIX = "-tuned"


def is_tuned(variant: str) -> bool:
    return variant.endswith(TUNED_SUFFIX)


#: The label of a baseline re-run at another epoch budget (a grid's ``compute:`` section):
#: ``ce@2x`` is CE at twice its epochs.
BUDGET_MARK = "@"
#: The label suffix of a mechanism control (``dlb-control``: DLB with alpha = 0).
CONTROL_SUFFIX = "-control"
#: A lattice point's label (a grid's ``lattice:`` section): ``drkd-online-a0.5-T4``.
LATTICE = re.compile(r"^(?P<base>.+)-a(?P<alpha>[0-9.eE+-]+)-T(?P<temperature>[0-9.eE+-]+)$")


def is_budget(variant: str) -> bool:
    return BUDGET_MARK in variant


def is_control(variant: str) -> bool:
    return variant.endswith(CONTROL_SUFFIX)


def is_lattice(variant: str) -> bool:
    return LATTICE.match(variant) is not None


def control_of(variant: str) -> str:
    """The label of a variant's mechanism control (``dlb`` -> ``dlb-control``)."""
    return variant + CONTROL_SUFFIX


def reference_of(variant: str) -> str:
    """The reference-value twin of a tuned variant's label (the label itself otherwise)."""
    return variant.removesuffix(TUNED_SUFFIX)


def setting_of(variant: str, baseline: str) -> str:
    """Which question a comparison answers: ``reference`` (both at reference values), ``tuned``
    (a tuned variant against CE or its tuned rival) or ``tuned vs reference`` (a tuned variant
    against its own reference values)."""
    if is_budget(variant):
        return "compute ladder"
    if is_lattice(variant):
        return "rectification lattice"
    point = LATTICE.match(baseline)
    if is_tuned(variant) and point is not None and point["base"] == reference_of(variant):
        return "tuned vs reference"  # the reference values, labelled as a lattice point
    if is_control(baseline):
        return "vs control"
    if not is_tuned(variant):
        return "reference"
    return "tuned vs reference" if baseline == reference_of(variant) else "tuned"


def baseline_for(variant: str, present, baseline: str = "ce") -> str:
    """The baseline a variant is read against: a tuned variant meets the tuned baseline
    (``ce-tuned``) where the runs have it (tuned against tuned), anything else (tuned CE itself
    included) the baseline."""
    tuned_base = baseline + TUNED_SUFFIX
    if is_tuned(variant) and variant != tuned_base and tuned_base in present:
        return tuned_base
    return baseline


def comparisons(cells: pd.DataFrame, baseline: str = "ce") -> list[tuple[str, str]]:
    """Each variant against the baseline (CE); each DR-KD variant against the Tf-KD self variant
    with the same teacher source and the same hyperparameter setting (reference values or tuned);
    each tuned variant against its reference twin (``cells``: variant, method, teacher_source
    columns)."""
    cells = cells.drop_duplicates("variant")
    present = set(cells["variant"])
    ordered = variant_order(present)
    tuned_base = baseline + TUNED_SUFFIX  # tuned variants meet a tuned baseline when it exists
    pairs = [(v, baseline_for(v, present, baseline)) for v in ordered
             if v not in (baseline, tuned_base) and baseline in present and not is_lattice(v)]
    source = dict(zip(cells["variant"], cells["teacher_source"]))
    method = dict(zip(cells["variant"], cells["method"]))
    for v in ordered:
        rival = RIVALS.get(method[v])
        if rival is None:
            continue
        twin = rival + v[len(method[v]):]  # the same label with the rival's name: same settings
        if is_lattice(v):
            if twin in present:
                pairs.append((v, twin))
            continue
        same = [u for u in ordered if method[u] == rival and source[u] == source[v]
                and is_tuned(u) == is_tuned(v)]
        if same:
            pairs.append((v, same[0]))
        elif rival in present:
            pairs.append((v, rival))
    for v in ordered:  # each tuned variant against its reference values
        if not is_tuned(v):
            continue
        if reference_of(v) in present:
            pairs.append((v, reference_of(v)))
            continue
        # labelled otherwise (a lattice point at the reference values): the one untuned variant
        # of the same method and teacher source, when there is exactly one
        twins = [u for u in ordered if not is_tuned(u) and not is_budget(u)
                 and not is_control(u) and method[u] == method[v] and source[u] == source[v]]
        if len(twins) == 1:
            pairs.append((v, twins[0]))
    pairs += [(v, control_of(v)) for v in ordered if control_of(v) in present]
    return list(dict.fromkeys(pairs))  # each pair once, in order

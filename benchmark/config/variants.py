"""A grid's variants: a method with its hyperparameters and label, as listed under
``methods`` (tuned or not, controls), as the ``compute:`` section's budget runs of the
baseline, or as the ``lattice:``'s fixed points; the search space a study of one may narrow."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import methods
from benchmark.config.spec import (
    ConfigError,
    TrainSettings,
    _default_label,
)


@dataclass(frozen=True)
class Variant:
    """A method with fixed hyperparameters (optionally per architecture) and a distinct label."""

    label: str
    method: str
    hyperparameters: Mapping[str, Any]
    per_arch: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    tuned: bool = False
    #: Trained for this multiple of the grid's epochs (the ``compute:`` section's baseline runs).
    epochs_factor: float = 1.0
    #: Where the variant came from: "" (listed under ``methods``), "control" (listed with
    #: ``control: true``), "budget" (``compute:``) or "lattice" (``lattice:``); only the first
    #: kind is ever tuned (the others fix what a study would search).
    role: str = ""

    def hyperparameters_for(self, arch: str) -> dict[str, Any]:
        return {**self.hyperparameters, **self.per_arch.get(arch, {})}

    def settings_for(self, settings: TrainSettings) -> TrainSettings:
        """The grid's training settings for this variant (its epoch budget applied)."""
        if self.epochs_factor == 1.0:
            return settings
        from benchmark.config.compute import matched_epochs

        return dataclasses.replace(settings,
                                   epochs=matched_epochs(settings.epochs, self.epochs_factor))



def budget_variants(compute: Mapping[str, Any], variants: list[Variant], path: str
                     ) -> list[Variant]:
    """The baseline again at each multiple of its epochs the ``compute:`` section asks for (its
    ladder, and each variant's forwarded images relative to it under ``match: images``), one
    variant per distinct multiple, labelled ``<baseline>@<multiple>x``."""
    if not compute:
        return []
    from benchmark.config.compute import cost_factor, label

    base = next(v for v in variants if v.label == compute["baseline"])
    factors = list(compute["ladder"])
    if compute["match"] == "images":
        for v in variants:
            if v is not base:
                for arch_hp in [v.hyperparameters, *v.per_arch.values()]:
                    factors.append(cost_factor(v.method, {**v.hyperparameters, **arch_hp},
                                               base.method, base.hyperparameters))
    out: list[Variant] = []
    for f in sorted(set(factors)):
        name = label(base.label, f)
        if f == 1.0 or any(v.label == name for v in out):
            continue
        if any(v.label == name for v in variants):
            raise ConfigError(f"{path}: compute: the label {name!r} is taken by a listed variant")
        out.append(Variant(name, base.method, base.hyperparameters, base.per_arch,
                           epochs_factor=f, role="budget"))
    return out


def parse_lattice(lattice: Any, path: str, variants: list[Variant]) -> list[Variant]:
    """The ``lattice:`` section: each of its methods at every (teacher, alpha, temperature), so
    that two methods meet at identical hyperparameters. Labels:
    ``<method>-<teacher>-a<alpha>-T<temperature>``."""
    if lattice is None:
        return []
    where = f"{path}: lattice"
    out: list[Variant] = []
    taken = {v.label for v in variants}
    for name in lattice.methods:
        try:
            method = methods.get(name)
        except methods.MethodError as e:
            raise ConfigError(f"{where}.methods: {e}") from None
        for teacher in lattice.teacher:
            for alpha in lattice.alpha:
                for temperature in lattice.temperature:
                    hp = {"teacher": teacher, "alpha": alpha, "temperature": temperature}
                    try:
                        hp = {k: method.params[k].check(k, v) if k in method.params else
                              _no_param(name, k) for k, v in hp.items()}
                        method.resolve(hp)
                    except methods.MethodError as e:
                        raise ConfigError(f"{where}: {e}") from None
                    label = (f"{name}-{teacher}-a{hp['alpha']:g}-T{hp['temperature']:g}")
                    if label in taken:
                        raise ConfigError(f"{where}: the label {label!r} is taken twice")
                    taken.add(label)
                    out.append(Variant(label, name, hp, role="lattice"))
    return out


def _no_param(method: str, key: str):
    raise methods.MethodError(f"method {method!r} has no hyperparameter {key!r}")



#: The shared optimiser settings a study searches under ``tune.optimiser: true`` (CE included):
#: ``lr`` per batch of 128 (scaled linearly, as the grid's) and ``weight_decay``; log scales.
OPTIMISER_PARAMS = {"lr": methods.Param(0.1, valid="(0, inf)", low=0.01, high=0.5, log=True),
                    "weight_decay": methods.Param(5e-4, valid="[0, inf)", low=1e-5, high=1e-3,
                                                  log=True)}


def split_optimiser(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A study's parameters as (the method's hyperparameters, the optimiser settings)."""
    return ({k: v for k, v in params.items() if k not in OPTIMISER_PARAMS},
            {k: v for k, v in params.items() if k in OPTIMISER_PARAMS})


def check_space(space: Mapping[str, Any], variants: list[Variant], where: str,
                 optimiser: bool = False) -> None:
    """Each narrowed search range names a hyperparameter some method of the config searches
    (or ``lr``/``weight_decay`` under ``optimiser: true``), and both bounds are values that
    parameter accepts."""
    searched: dict[str, list] = {}
    for v in variants:
        for name, param in methods.get(v.method).search_space().items():
            searched.setdefault(name, []).append((v.method, param))
    if optimiser:
        for name, param in OPTIMISER_PARAMS.items():
            searched[name] = [("the optimiser", param)]
    for name, (low, high) in space.items():
        if name not in searched:
            raise ConfigError(f"{where}.{name}: no method of this config searches {name!r}; "
                              f"searched: {', '.join(sorted(searched)) or '(none)'}")
        for method, param in searched[name]:
            for bound in (low, high):
                try:
                    param.check(name, bound)
                except methods.MethodError as e:
                    raise ConfigError(f"{where}.{name}: {bound!r} is outside what {method} "
                                      f"accepts ({e})") from None


def parse_variants(entries: list, path: str, archs: list[str]) -> list[Variant]:
    """The ``methods:`` list: each entry's method, its hyperparameters (the entry's other keys)
    resolved against the method's declared parameters, its control or ``tuned``."""
    out: list[Variant] = []
    for i, entry in enumerate(entries):
        where = f"{path}: methods[{i}]"
        name = entry.method
        try:
            method = methods.get(name)
        except methods.MethodError as e:
            raise ConfigError(f"{where}: {e}") from None
        hp = dict(entry.model_extra or {})
        if entry.control:
            if not method.control:
                with_one = [n for n in methods.names() if methods.get(n).control]
                raise ConfigError(f"{where}.control: method {name!r} has no control; methods "
                                  f"with one: {', '.join(with_one)}")
            clash = sorted(set(hp) & set(method.control))
            if clash:
                raise ConfigError(f"{where}: {clash[0]!r} is fixed by the control; remove it")
            hp = {**hp, **method.control}
        tuned = entry.hyperparameters == "tuned"
        if tuned and entry.control:
            raise ConfigError(f"{where}: a control is not tuned; remove 'hyperparameters'")
        for arch in entry.per_arch:
            if arch not in archs:
                raise ConfigError(f"{where}.per_arch: {arch!r} is not in architectures; "
                                  f"valid: {', '.join(archs)}")
        try:
            method.resolve(hp)
            for arch_hp in entry.per_arch.values():
                method.resolve({**hp, **arch_hp})
        except methods.MethodError as e:
            raise ConfigError(f"{where}: {e}") from None
        label = entry.label or (_default_label(name, hp, tuned)
                                + ("-control" if entry.control else ""))
        if any(v.label == label for v in out):
            raise ConfigError(f"{where}: duplicate variant label {label!r}; give each a 'label'")
        out.append(Variant(label, name, hp, dict(entry.per_arch), tuned,
                           role="control" if entry.control else ""))
    return out

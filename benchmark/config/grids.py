"""Grid configs: YAML loaded with ``safe_load`` (duplicate keys refused), validated by the
declaration (:mod:`benchmark.config.schema`) and against the registries, expanded into
variants (tuned, controls, compute budgets, lattices) before anything runs."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import methods
from benchmark import data, models
from benchmark.config import schema
from benchmark.config.files import (  # noqa: F401  (read_yaml, with_sets: this module's faces)
    load_raw,
    parse_analysis,
    read_yaml,
    resolve_config_path,
    shipped_configs,
    with_sets,
)
from benchmark.config.spec import (
    ConfigError,
    DataSettings,
    RunSpec,
    TrainSettings,
    build,
    check_data,
    make_spec,
)
from benchmark.config.variants import (
    Variant,
    budget_variants,
    check_space,
    parse_lattice,
    parse_variants,
)


@dataclass(frozen=True)
class GridConfig:
    name: str
    path: str
    seeds: tuple[int, ...]
    datasets: Mapping[str, tuple[DataSettings, Mapping[str, Any]]]
    architectures: Mapping[str, Mapping[str, Any]]
    variants: tuple[Variant, ...]
    train: Mapping[str, Any]
    data_root: str | None = None
    description: str = ""
    tune: Mapping[str, Any] = field(default_factory=dict)
    analysis: Mapping[str, Any] = field(default_factory=dict)
    compute: Mapping[str, Any] = field(default_factory=dict)
    #: A hash of the config as validated (its YAML with any --set): the runs carry it (tag
    #: ``grid_config``) beside the grid's name, so two configs of one name are told apart.
    digest: str = ""
    #: The architectures each dataset entry (task data) trains; all of ``architectures`` when
    #: its entry names none.
    dataset_archs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: What ``train.precision: auto`` resolved to per (data name, architecture) on the chip at
    #: hand (:func:`with_precisions`; filled by the command that runs the grid). A task set to
    #: auto that is not here trains in fp32, as on a chip never calibrated.
    precisions: Mapping[tuple[str, str], str] = field(default_factory=dict)
    #: Training overrides per task (``task_train``): shell patterns over ``data/arch`` (data
    #: with its condition), in the config's order, each applied where it matches.
    task_train: tuple[tuple[str, Mapping[str, Any]], ...] = ()

    def archs_for(self, dataset: str) -> tuple[str, ...]:
        return tuple(self.dataset_archs.get(dataset) or self.architectures)

    def tasks(self) -> list[tuple[str, DataSettings, str]]:
        """Every (data name, its settings, architecture) the grid trains: a task is dataset x
        condition x architecture."""
        return [(d, ds, a) for d, (ds, _) in self.datasets.items() for a in self.archs_for(d)]

    def analysis_settings(self):
        """The report's statistics settings (``analysis:``), validated when the config loaded."""
        from analysis.stats import Analysis

        return Analysis.from_mapping(self.analysis)

    def _train_keys(self, dataset: str, arch: str) -> dict[str, Any]:
        """The training keys a task is given: the grid's, then its data's, then its arch's, then
        each ``task_train`` entry whose pattern matches ``dataset/arch``."""
        keys = {**self.train, **self.datasets[dataset][1], **self.architectures[arch]}
        for pattern, overrides in self.task_train:
            if fnmatchcase(f"{dataset}/{arch}", pattern):
                keys.update(overrides)
        return keys

    def train_for(self, dataset: str, arch: str) -> TrainSettings:
        settings = build(TrainSettings, self._train_keys(dataset, arch),
                         f"{self.path}: train ({dataset}, {arch})")
        if settings.precision == "auto":  # resolved: the hash holds fp32 or bf16, never auto
            settings = dataclasses.replace(
                settings, precision=self.precisions.get((dataset, arch), "fp32"))
        return settings

    def asked_precision(self, dataset: str, arch: str) -> str:
        """The precision the config asks for a task (``auto`` unresolved)."""
        return str(self._train_keys(dataset, arch).get("precision", "fp32"))

    def only(self, tasks: set[tuple[str, str]]) -> GridConfig:
        """This grid restricted to ``tasks`` ((data name, architecture) pairs): its cells and
        studies are the same cells and studies as the whole grid's, for those tasks."""
        keep = {d: tuple(a for a in self.archs_for(d) if (d, a) in tasks) for d in self.datasets}
        keep = {d: archs for d, archs in keep.items() if archs}
        return dataclasses.replace(self, datasets={d: self.datasets[d] for d in keep},
                                   dataset_archs=keep)

    def tuned_variants(self) -> list[Variant]:
        return [v for v in self.variants if v.tuned]

    def tunable_variants(self) -> list[Variant]:
        """The variants a study may tune: those listed under ``methods`` (not the controls, not
        the baseline's budget runs, not the lattice's fixed points)."""
        return [v for v in self.variants if not v.role]


def variant_spec(ds: DataSettings, arch: str, variant: Variant, hp: Mapping[str, Any],
                 seed: int, settings: TrainSettings) -> RunSpec:
    """The spec of one grid cell (or tuning study): a variant's method with ``hp`` on ``ds``."""
    settings_of_data = {f.name: getattr(ds, f.name) for f in dataclasses.fields(ds)
                        if f.name != "name"}
    spec = make_spec(ds.name, arch, variant.method, seed, hp, {}, variant.label,
                     **settings_of_data)
    return dataclasses.replace(spec, train=settings)


def load_grid(name_or_path: str, sets: Mapping[str, Any] | None = None) -> GridConfig:
    """A shipped or given grid config; ``sets`` (``--set``: dotted key -> value) changes keys of
    its YAML before it is validated, so a changed setting is checked, and hashed, as if the file
    said it."""
    return parse_grid(*load_raw(name_or_path, sets))


def parse_grid(raw: Any, path: str) -> GridConfig:
    """A grid config from its YAML: the declared structure first (:mod:`schema`: types, ranges,
    unknown keys), then the plugins it names, then every name against the registries."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    g = build(schema.GridFile, raw, path)
    _load_plugins(g.plugins, path)
    train = _given(g.train)
    architectures = {}
    for name, entry in g.architectures.items():
        try:
            models.check(name)
        except models.ModelError as e:
            raise ConfigError(f"{path}: architectures.{name}: {e}") from None
        architectures[name] = _given(entry.train)
    conditions = {name: _data_fields(c) for name, c in (g.conditions or {}).items()}
    datasets, dataset_archs = {}, {}
    for name, entry in g.datasets.items():
        where = f"{path}: datasets.{name}"
        if entry.kind or entry.path:  # the user's own images: registered by name
            _load_user_dataset(name, entry.kind, entry.path, path, where)
        if name not in data.names():
            raise ConfigError(f"{where}: unknown dataset; choose one of: {', '.join(data.names())}")
        archs = entry.architectures
        if archs is not None and any(a not in architectures for a in archs):
            raise ConfigError(f"{where}.architectures: expected a non-empty list of names from "
                              f"architectures ({', '.join(architectures)})")
        for cname, cset in (conditions or {"": {}}).items():
            cwhere = f"{where} (condition {cname})" if cname else where
            ds = build(DataSettings, {"name": name, **_data_fields(entry), **cset,
                                      "condition": cname}, cwhere)
            check_data(ds, cwhere)
            datasets[ds.task] = (ds, _given(entry.train))
            if archs is not None:
                dataset_archs[ds.task] = tuple(archs)
        if conditions:
            same: dict[str, str] = {}
            for cname in conditions:
                ident = json.dumps({k: v for k, v in dataclasses.asdict(
                    datasets[f"{name}:{cname}"][0]).items() if k != "condition"}, default=str)
                if ident in same:
                    raise ConfigError(f"{path}: conditions: {cname!r} and {same[ident]!r} give "
                                      f"{name} the same data; keep one, or make them differ")
                same[ident] = cname

    variants = parse_variants(g.methods, path, list(architectures))
    variants += parse_lattice(g.lattice, path, variants)
    compute = _given(g.compute, as_json=True)
    if compute:
        compute.setdefault("baseline", "ce")
        compute.setdefault("ladder", [])
        compute.setdefault("match", None)
        labels = [v.label for v in variants]
        if compute["baseline"] not in labels:
            raise ConfigError(f"{path}: compute.baseline: {compute['baseline']!r} is not a "
                              f"variant of this config; valid: {', '.join(labels)}")
    variants += budget_variants(compute, variants, path)
    _check_distinct(variants, list(architectures), path)
    tune = _given(g.tune, as_json=True)
    check_space(tune.get("space") or {}, variants, f"{path}: tune.space",
                 bool(tune.get("optimiser")))
    digest = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()
    grid = GridConfig(name=str(g.name or Path(path).stem), path=path, seeds=tuple(g.seeds),
                      datasets=datasets, architectures=architectures, variants=tuple(variants),
                      train=train, data_root=g.data_root, description=g.description, tune=tune,
                      analysis=parse_analysis(g.analysis, path), compute=compute,
                      dataset_archs=dataset_archs, digest=digest[:16],
                      task_train=tuple((p, _given(t)) for p, t in (g.task_train or {}).items()))
    tasks_named = [f"{d}/{a}" for d, _, a in grid.tasks()]
    for pattern, _ in grid.task_train:
        if not any(fnmatchcase(t, pattern) for t in tasks_named):
            raise ConfigError(f"{path}: task_train: {pattern!r} matches no task of this grid "
                              f"({', '.join(tasks_named)})")
    baseline = grid.analysis.get("baseline")
    labels = [v.label for v in variants]
    if baseline is not None and baseline not in labels:
        raise ConfigError(f"{path}: analysis.baseline: {baseline!r} is not a variant of this "
                          f"grid; valid: {', '.join(labels)}")
    for d, _, a in grid.tasks():
        grid.train_for(d, a)  # the merged settings of every task are valid together
    if grid.analysis.get("aggregate") and len(grid.tasks()) < 2:
        raise ConfigError(f"{path}: analysis.aggregate: an aggregate across tasks needs at least "
                          f"two tasks (dataset x condition x architecture); this config has "
                          f"{len(grid.tasks())}")
    return grid


def parse_tune(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A ``tune:`` section (a config's, with the command line's flags over it), validated."""
    return _given(build(schema.TuneFlags, {"tune": dict(raw)}, where).tune, as_json=True)


def with_precisions(cfg: GridConfig, precisions: Mapping[tuple[str, str], str]) -> GridConfig:
    """``cfg`` with ``train.precision: auto`` resolved per (data name, architecture)."""
    bad = {v for v in precisions.values()} - {"fp32", "bf16"}
    if bad:
        raise ConfigError(f"train.precision: auto resolves to fp32 or bf16, not {sorted(bad)}")
    return dataclasses.replace(cfg, precisions=dict(precisions))


def with_tune(cfg: GridConfig, given: Mapping[str, Any]) -> GridConfig:
    """``cfg`` with the command line's tuning flags over its ``tune:`` section, validated as the
    section is (the search space against the config's methods included)."""
    merged = parse_tune({**cfg.tune, **given}, cfg.path + " (with flags)")
    check_space(merged.get("space") or {}, list(cfg.variants), cfg.path,
                 bool(merged.get("optimiser")))
    return dataclasses.replace(cfg, tune=merged)


def _given(section: Any, as_json: bool = False) -> dict[str, Any]:
    """The keys a section of the config actually gives (defaults stay the settings')."""
    if section is None:
        return {}
    return section.model_dump(exclude_unset=True, mode="json" if as_json else "python")


def _data_fields(section: Any) -> dict[str, Any]:
    """A dataset entry's or condition's data settings, its ``noise:`` as DataSettings fields."""
    out = {k: v for k, v in _given(section).items() if k in DataSettings.__pydantic_fields__}
    out.pop("noise", None)
    if section.noise is not None:
        out.update(noise=section.noise.kind, noise_rate=section.noise.rate,
                   noise_seed=section.noise.seed)
    return out


def _check_distinct(variants: list[Variant], archs: list[str], path: str) -> None:
    """Two variants that train the same thing (same method, the same hyperparameters once
    resolved, the same epochs) would be one cell: the grid would silently keep one label."""
    for arch in archs:
        seen: dict[tuple, str] = {}
        for v in variants:
            if v.tuned:  # its values come from its study
                continue
            hp = methods.get(v.method).resolve(v.hyperparameters_for(arch))
            key = (v.method, json.dumps(hp, sort_keys=True, default=str), v.epochs_factor)
            if key in seen:
                raise ConfigError(f"{path}: methods: {v.label!r} and {seen[key]!r} are the same "
                                  f"variant on {arch} ({v.method} with the same "
                                  "hyperparameters): keep one, or make them differ")
            seen[key] = v.label


def _load_plugins(names: list[str], path: str) -> None:
    """The ``plugins:`` list: modules or ``.py`` files (relative to the config's folder first),
    imported before any name is checked, so that what they register is known to the config."""
    from benchmark.config.plugins import PluginError, load_all

    try:
        load_all(names, Path(path).parent)
    except PluginError as e:
        raise ConfigError(f"{path}: plugins: {e}") from None


def _load_user_dataset(name: str, kind: str | None, location: str | None, path: str,
                       where: str) -> None:
    """``kind: folder | npz`` and ``path`` (relative to the config's folder first): the user's
    own data, registered under the config's name for it."""
    from benchmark.config.plugins import PluginError, load_dataset
    from benchmark.data import USER_KINDS, DataError

    if kind is None or location is None:
        raise ConfigError(f"{where}: a dataset of your own needs kind ({', '.join(USER_KINDS)}) "
                          "and path")
    candidates = [Path(path).parent / location, Path(location)]
    found = next((p for p in candidates if p.exists()), None)
    if found is None:
        raise ConfigError(f"{where}.path: {location!r} not found (looked in "
                          + ", ".join(str(p) for p in candidates) + ")")
    try:
        load_dataset(name, kind, found)
    except (PluginError, DataError) as e:
        raise ConfigError(f"{where}: {e}") from None

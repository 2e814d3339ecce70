"""Run specifications and grid configs: frozen dataclasses, YAML loaded with ``safe_load``,
validated against the registries before anything runs, hashed over what changes results."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

import methods

from . import data, models, teachers


class ConfigError(ValueError):
    """A config or argument error: one line naming the file, the key and the valid choices."""


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings. ``lr`` is for a batch of ``lr_reference_batch`` images; the
    effective rate is ``lr * batch_size / lr_reference_batch`` (the Tf-KD convention
    0.1 x batch/128)."""

    epochs: int = 15
    batch_size: int = 64
    lr: float = 0.1
    lr_reference_batch: int = 128
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    warmup_epochs: float = 1.0
    schedule: str = "cosine"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.2
    precision: str = "fp32"  # or "bf16": bfloat16 autocast (changes results: part of the hash)
    compile: bool = False  # torch.compile the student's training forward (part of the hash when on)
    test_every: int = 1  # the test split is evaluated every this many epochs and at the last one
    #                     (training is unchanged; part of the hash when not 1: the record differs)

    @property
    def effective_lr(self) -> float:
        return self.lr * self.batch_size / self.lr_reference_batch


SCHEDULES = ("cosine", "multistep", "constant")
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class DataSettings:
    """``split: per-seed`` draws the validation split (and the training subset) anew for each
    seed, from ``split_seed + seed``, so that split variance enters the intervals over seeds;
    ``fixed`` (the default) draws them once from ``split_seed``."""

    name: str
    val_fraction: float = 0.1
    split_seed: int = 0
    train_subset: int | None = None
    augment: data.Augment | None = None  # None: the dataset's default
    split: str = "fixed"
    #: Label noise on the training and validation labels (never the test labels): ``none``,
    #: ``symmetric`` (a label replaced by a uniformly drawn other class) or ``pair`` (class c
    #: flipped to c + 1 mod K), ``noise_rate`` of each class exactly, drawn from ``noise_seed``.
    noise: str = "none"
    noise_rate: float = 0.0
    noise_seed: int = 0
    #: The condition's name in a config with ``conditions:`` (a label: not part of the hash).
    condition: str = ""

    @property
    def task(self) -> str:
        """The data's name in keys, tags and reports: ``dataset`` or ``dataset:condition``."""
        return f"{self.name}:{self.condition}" if self.condition else self.name

    def for_seed(self, seed: int) -> DataSettings:
        """The settings one run of ``seed`` loads its data with: with ``split: per-seed`` the
        split seed is ``split_seed + seed`` and the noise seed ``noise_seed + seed``."""
        if self.split != "per-seed":
            return self
        noise_seed = self.noise_seed + seed if self.noise != "none" else self.noise_seed
        return dataclasses.replace(self, split_seed=self.split_seed + seed, noise_seed=noise_seed)

    def noise_text(self) -> str:
        """``symmetric 40% (seed 3)`` or ``none``."""
        if self.noise == "none":
            return "none"
        return f"{self.noise} {100 * self.noise_rate:g}% (seed {self.noise_seed})"


SPLITS = ("fixed", "per-seed")

#: Settings that enter a cell's identity only when they differ from this value (they came after
#: cells were tracked: a store made before them keeps its finished cells), per section.
HASH_WHEN_ON = {"train": {"compile": False, "test_every": 1},
                "data": {"split": "fixed", "noise": "none", "noise_rate": 0.0, "noise_seed": 0}}


@dataclass(frozen=True)
class RunSpec:
    """Everything that identifies one training run (a grid cell)."""

    data: DataSettings
    arch: str
    method: str
    hyperparameters: Mapping[str, Any]
    seed: int
    train: TrainSettings
    variant: str = ""

    @property
    def label(self) -> str:
        return self.variant or self.method

    @property
    def key(self) -> str:
        return f"{self.data.task}/{self.arch}/{self.label}/seed{self.seed}"

    def identity(self) -> dict:
        """What changes results (the variant and condition labels do not)."""
        d = dataclasses.asdict(self)
        d.pop("variant")
        d["data"].pop("condition")
        for section, defaults in HASH_WHEN_ON.items():  # added later: old cells keep their hash
            for key, off in defaults.items():
                if d[section][key] == off:
                    d[section].pop(key)
        d["hyperparameters"] = dict(sorted(self.hyperparameters.items()))
        from .plugins import used_by

        outside = used_by(self)  # a plugin's code or a user dataset's content: only when used
        if outside:
            d["plugins"] = dict(sorted(outside.items()))
        return d

    @property
    def hash(self) -> str:
        text = json.dumps(self.identity(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def teacher_spec(self) -> RunSpec | None:
        """The CE cell whose checkpoint is this run's self-teacher (same data, arch, seed,
        training settings), or None when the method needs no pretrained teacher."""
        source = methods.get(self.method).teacher_source(self.hyperparameters)
        if source not in teachers.NEEDS_CE_CHECKPOINT:
            return None
        return dataclasses.replace(self, method="ce", hyperparameters={}, variant="ce")

    def flat_params(self) -> dict[str, Any]:
        out = {"dataset": self.data.name, "arch": self.arch, "method": self.method,
               "variant": self.label, "seed": self.seed}
        for k, v in dataclasses.asdict(self.data).items():
            out[f"data.{k}"] = v
        for k, v in dataclasses.asdict(self.train).items():
            out[f"train.{k}"] = v
        for k, v in self.hyperparameters.items():
            out[f"hp.{k}"] = v
        from .plugins import used_by

        for k, v in used_by(self).items():
            out[f"plugin.{k}"] = v
        return out

    def tags(self) -> dict[str, str]:
        """What identifies the cell in the tracking store (searchable tags)."""
        method = methods.get(self.method)
        tags = {"cell_hash": self.hash, "cell_key": self.key, "dataset": self.data.task,
                "arch": self.arch, "method": self.method, "variant": self.label,
                "seed": str(self.seed), "teacher_source": method.teacher_source(
                    self.hyperparameters), "batch_plan": method.batch_plan}
        if "fidelity" in self.hyperparameters:
            tags["fidelity"] = str(self.hyperparameters["fidelity"])
        if self.data.condition:
            tags["condition"] = self.data.condition
        described = dict(method.diagnostics)
        if tags["teacher_source"] != "none":
            described.update(teachers.DIAGNOSTICS)
        if self.data.noise != "none":
            tags["label_noise"] = self.data.noise_text()
            described.update(data.NOISE_DIAGNOSTICS)
            described.update({f"{k}_noisy": f"{v}: the share of them on noisy-labelled samples"
                              for k, v in method.events.items()})
        tags.update({f"diag.{k}": v for k, v in described.items()})  # what each diag_* means
        return tags


def make_spec(dataset: str, arch: str | None, method: str, seed: int = 0,
              hyperparameters: Mapping[str, Any] | None = None,
              train: Mapping[str, Any] | None = None, variant: str = "",
              **data_settings: Any) -> RunSpec:
    """Build and validate a spec (used by ``train``; grids go through :func:`load_grid`)."""
    spec_data = data.get_spec(dataset)
    arch = arch or spec_data.default_arch
    try:
        models.check(arch)
        resolved = methods.get(method).resolve(hyperparameters or {})
    except (models.ModelError, methods.MethodError) as e:
        raise ConfigError(str(e)) from None
    settings = build_dataclass(TrainSettings, dict(train or {}), "train")
    check_train(settings, "train")
    ds = build_dataclass(DataSettings, {"name": dataset, **data_settings}, "data")
    return RunSpec(ds.for_seed(int(seed)), arch, method, resolved, int(seed), settings,
                   variant or _default_label(method, hyperparameters or {}, False))


def variant_spec(ds: DataSettings, arch: str, variant: Variant, hp: Mapping[str, Any],
                 seed: int, settings: TrainSettings) -> RunSpec:
    """The spec of one grid cell (or tuning study): a variant's method with ``hp`` on ``ds``."""
    settings_of_data = {f.name: getattr(ds, f.name) for f in dataclasses.fields(ds)
                        if f.name != "name"}
    spec = make_spec(ds.name, arch, variant.method, seed, hp, {}, variant.label,
                     **settings_of_data)
    return dataclasses.replace(spec, train=settings)


def build_dataclass(cls, values: Mapping[str, Any], where: str):
    """Instantiate ``cls`` from ``values``, rejecting unknown keys and wrong types by name."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    out = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"{where}: unknown key {key!r}; valid: {', '.join(fields)}")
        out[key] = _coerce(value, fields[key].type, f"{where}.{key}")
    return cls(**out)


def _coerce(value: Any, type_: Any, where: str) -> Any:
    t = str(type_)
    if value is None and "None" in t:
        return None
    if t.startswith("tuple"):
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ConfigError(f"{where}: expected a list of integers, got {value!r}")
        return tuple(value)
    if "Augment" in t:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping of crop_padding, flip, rotation")
        return build_dataclass(data.Augment, value, where)
    for name, py in (("bool", bool), ("int", int), ("float", float), ("str", str)):
        if t.startswith(name):
            if py is float and isinstance(value, int) and not isinstance(value, bool):
                return float(value)
            if py is float and isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
                try:
                    return float(value)
                except ValueError:
                    pass
            if not isinstance(value, py) or (py is int and isinstance(value, bool)):
                raise ConfigError(f"{where}: expected {name}, got {value!r}")
            return value
    return value


def check_train(s: TrainSettings, where: str) -> None:
    rules = [(s.epochs >= 1, "epochs must be >= 1"), (s.batch_size >= 2, "batch_size must be >= 2"),
             (s.lr > 0, "lr must be > 0"), (0 <= s.momentum < 1, "momentum must lie in [0, 1)"),
             (s.weight_decay >= 0, "weight_decay must be >= 0"),
             (s.warmup_epochs >= 0, "warmup_epochs must be >= 0"),
             (s.schedule in SCHEDULES, f"schedule must be one of: {', '.join(SCHEDULES)}"),
             (0 < s.gamma <= 1, "gamma must lie in (0, 1]"),
             (s.precision in PRECISIONS, f"precision must be one of: {', '.join(PRECISIONS)}"),
             (s.test_every >= 1, "test_every must be >= 1 (1: the test split after every epoch)")]
    for ok, message in rules:
        if not ok:
            raise ConfigError(f"{where}: {message}")


def check_data(d: DataSettings, where: str) -> None:
    if not 0 < d.val_fraction < 1:
        raise ConfigError(f"{where}: val_fraction must lie in (0, 1)")
    if d.train_subset is not None and d.train_subset < 10:
        raise ConfigError(f"{where}: train_subset must be >= 10")
    if d.split not in SPLITS:
        raise ConfigError(f"{where}: split must be one of: {', '.join(SPLITS)}")
    if d.noise not in data.NOISE_KINDS:
        raise ConfigError(f"{where}: noise.kind {d.noise!r} is not valid; choose one of: "
                          + ", ".join(k for k in data.NOISE_KINDS if k != "none"))
    if not 0 <= d.noise_rate < 1:  # also NaN
        raise ConfigError(f"{where}: noise.rate must lie in [0, 1), got {d.noise_rate!r}")
    if d.noise == "none" and (d.noise_rate or d.noise_seed):
        raise ConfigError(f"{where}: noise.rate and noise.seed need a noise.kind")
    if d.noise != "none" and d.noise_rate == 0:
        raise ConfigError(f"{where}: noise.rate must be > 0 for {d.noise} noise (clean: omit "
                          "noise)")
    if d.noise != "none" and data.get_spec(d.name).num_classes < 2:
        raise ConfigError(f"{where}: noise needs labels to corrupt: {d.name} has fewer than "
                          "two classes")


NOISE_KEYS = ("kind", "rate", "seed")


def noise_settings(raw: Any, where: str) -> dict[str, Any]:
    """A config's ``noise: {kind, rate, seed}`` as DataSettings fields."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}.noise: expected a mapping of {', '.join(NOISE_KEYS)}")
    for key in raw:
        if key not in NOISE_KEYS:
            raise ConfigError(f"{where}.noise: unknown key {key!r}; valid: {', '.join(NOISE_KEYS)}")
    if "kind" not in raw or "rate" not in raw:
        raise ConfigError(f"{where}.noise: give kind ({', '.join(data.NOISE_KINDS[1:])}) and rate")
    out = {"noise": raw["kind"], "noise_rate": raw["rate"], "noise_seed": raw.get("seed", 0)}
    if not isinstance(out["noise"], str):
        raise ConfigError(f"{where}.noise.kind: expected one of: {', '.join(data.NOISE_KINDS[1:])}")
    if isinstance(out["noise_rate"], bool) or not isinstance(out["noise_rate"], (int, float)):
        raise ConfigError(f"{where}.noise.rate: expected a number in [0, 1), got "
                          f"{out['noise_rate']!r}")
    if isinstance(out["noise_seed"], bool) or not isinstance(out["noise_seed"], int) \
            or out["noise_seed"] < 0:
        raise ConfigError(f"{where}.noise.seed: expected a non-negative integer")
    out["noise_rate"] = float(out["noise_rate"])
    return out


# --- grid configs -------------------------------------------------------------------------------

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
        from .compute import matched_epochs

        return dataclasses.replace(settings,
                                   epochs=matched_epochs(settings.epochs, self.epochs_factor))


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
    #: The architectures each dataset entry (task data) trains; all of ``architectures`` when
    #: its entry names none.
    dataset_archs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

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

    def train_for(self, dataset: str, arch: str) -> TrainSettings:
        merged = {**self.train, **self.datasets[dataset][1], **self.architectures[arch]}
        return build_dataclass(TrainSettings, merged, f"{self.path}: train")

    def tuned_variants(self) -> list[Variant]:
        return [v for v in self.variants if v.tuned]

    def tunable_variants(self) -> list[Variant]:
        """The variants a study may tune: those listed under ``methods`` (not the controls, not
        the baseline's budget runs, not the lattice's fixed points)."""
        return [v for v in self.variants if not v.role]


#: Seeds from here on belong to tuning (benchmark.tune: re-scores from it, trials from twice
#: it); a config's evaluated seeds lie below.
RESERVED_SEEDS = 10_000

GRID_KEYS = ("name", "description", "plugins", "seeds", "datasets", "conditions", "architectures",
             "methods", "train", "data_root", "tune", "analysis", "compute", "lattice")
COMPUTE_KEYS = ("baseline", "ladder", "match")
LATTICE_KEYS = ("methods", "teacher", "alpha", "temperature")
TUNE_KEYS = ("trials", "epochs", "seed", "space", "storage", "timeout", "seeds_per_trial",
             "budget", "optimiser", "pruning", "rescore")
DATASET_KEYS = ("kind", "path", "val_fraction", "split_seed", "train_subset", "augment", "split",
                "noise", "architectures", "train")
#: What a condition may set on each dataset of the config (the rest stays the dataset's).
CONDITION_KEYS = ("noise", "train_subset")
VARIANT_KEYS = ("method", "label", "per_arch", "hyperparameters", "control")


def shipped_configs() -> dict[str, Path]:
    folder = resources.files("benchmark") / "configs"
    return {Path(str(p)).stem: Path(str(p)) for p in folder.iterdir() if str(p).endswith(".yaml")}


def resolve_config_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"{name_or_path}: no such config file")
        return path
    shipped = shipped_configs()
    if name_or_path not in shipped:
        raise ConfigError(f"unknown config {name_or_path!r}; shipped: {', '.join(sorted(shipped))}"
                          ", or a path to a YAML file")
    return shipped[name_or_path]


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that rejects a key given twice in one mapping (at any depth): YAML
    itself keeps the last value silently, so a config would run something other than written."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(f"{self.name}: line {key_node.start_mark.line + 1}: key "
                                  f"{key!r} given twice (first on line {seen[key]}); keep one")
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """A config file's YAML, safe-loaded with duplicate keys rejected."""
    loader = _UniqueKeyLoader(path.read_text())
    loader.name = str(path)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load_grid(name_or_path: str) -> GridConfig:
    path = resolve_config_path(name_or_path)
    try:
        raw = read_yaml(path)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} not valid YAML") from None
    return parse_grid(raw, str(path))


def _mapping_or_list(value: Any, where: str) -> dict[str, dict]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value) and value:
        return {v: {} for v in value}
    if isinstance(value, Mapping) and value:
        return {str(k): dict(v or {}) if isinstance(v, Mapping) or v is None else _bad(where, k)
                for k, v in value.items()}
    raise ConfigError(f"{where}: expected a non-empty list of names or a mapping")


def _bad(where: str, key: Any):
    raise ConfigError(f"{where}.{key}: expected a mapping of settings")


def parse_grid(raw: Any, path: str) -> GridConfig:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    for key in raw:
        if key not in GRID_KEYS:
            raise ConfigError(f"{path}: unknown key {key!r}; valid: {', '.join(GRID_KEYS)}")
    for key in ("seeds", "datasets", "architectures", "methods"):
        if key not in raw:
            raise ConfigError(f"{path}: missing key {key!r}")
    _load_plugins(raw.get("plugins"), path)
    seeds = raw["seeds"]
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = list(range(seeds))
    if not isinstance(seeds, list) or not seeds or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError(f"{path}: seeds: expected a count or a non-empty list of integers")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{path}: seeds: duplicate seeds")
    if any(not 0 <= s < RESERVED_SEEDS for s in seeds):
        raise ConfigError(f"{path}: seeds: each must lie in [0, {RESERVED_SEEDS}); the seeds from "
                          f"{RESERVED_SEEDS} on are tuning's (trials and re-scores), so that no "
                          "evaluated cell is ever a tuning run")

    train = dict(raw.get("train") or {})
    check_train(build_dataclass(TrainSettings, train, f"{path}: train"), f"{path}: train")

    architectures = {}
    for name, entry in _mapping_or_list(raw["architectures"], f"{path}: architectures").items():
        where = f"{path}: architectures.{name}"
        try:
            models.check(name)
        except models.ModelError as e:
            raise ConfigError(f"{where}: {e}") from None
        unknown = set(entry) - {"train"}
        if unknown:
            raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}; valid: train")
        architectures[name] = dict(entry.get("train") or {})

    conditions = _parse_conditions(raw.get("conditions"), path)
    datasets, dataset_archs = {}, {}
    for name, entry in _mapping_or_list(raw["datasets"], f"{path}: datasets").items():
        where = f"{path}: datasets.{name}"
        if "kind" in entry or "path" in entry:  # the user's own images: registered by name
            _load_user_dataset(name, entry, path, where)
        if name not in data.names():
            raise ConfigError(f"{where}: unknown dataset; choose one of: {', '.join(data.names())}")
        for key in entry:
            if key not in DATASET_KEYS:
                raise ConfigError(f"{where}: unknown key {key!r}; valid: {', '.join(DATASET_KEYS)}")
        ds_train = dict(entry.pop("train", None) or {})
        archs = entry.pop("architectures", None)
        if archs is not None and (not isinstance(archs, list) or not archs
                                  or any(a not in architectures for a in archs)):
            raise ConfigError(f"{where}.architectures: expected a non-empty list of names from "
                              f"architectures ({', '.join(architectures)})")
        if "noise" in entry:
            entry.update(noise_settings(entry.pop("noise"), where))
        for cname, cset in (conditions or {"": {}}).items():
            cwhere = f"{where} (condition {cname})" if cname else where
            settings = {**entry, **cset, "condition": cname}
            ds = build_dataclass(DataSettings, {"name": name, **settings}, cwhere)
            check_data(ds, cwhere)
            datasets[ds.task] = (ds, ds_train)
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

    variants = _parse_variants(raw["methods"], path, list(architectures))
    variants += _parse_lattice(raw.get("lattice"), path, variants)
    compute = _parse_compute(raw.get("compute"), path, variants)
    variants += _budget_variants(compute, variants, path)
    _check_distinct(variants, list(architectures), path)
    tune = _parse_tune(raw.get("tune"), path)
    _check_space(tune.get("space") or {}, variants, f"{path}: tune.space",
                 bool(tune.get("optimiser")))
    grid = GridConfig(name=str(raw.get("name") or Path(path).stem), path=path,
                      seeds=tuple(seeds), datasets=datasets, architectures=architectures,
                      variants=tuple(variants), train=train, data_root=raw.get("data_root"),
                      description=str(raw.get("description") or ""), tune=tune,
                      analysis=_parse_analysis(raw.get("analysis"), path), compute=compute,
                      dataset_archs=dataset_archs)
    for d, _, a in grid.tasks():
        check_train(grid.train_for(d, a), f"{path}: train ({d}, {a})")
    if grid.analysis.get("aggregate") and len(grid.tasks()) < 2:
        raise ConfigError(f"{path}: analysis.aggregate: an aggregate across tasks needs at least "
                          f"two tasks (dataset x condition x architecture); this config has "
                          f"{len(grid.tasks())}")
    return grid


def _parse_conditions(raw: Any, path: str) -> dict[str, dict[str, Any]]:
    """The optional ``conditions:`` section: named settings (``noise``, ``train_subset``) that
    each dataset of the config runs under; a condition's data is ``<dataset>:<name>``."""
    if raw is None:
        return {}
    where = f"{path}: conditions"
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(f"{where}: expected a mapping of condition names to settings "
                          f"({', '.join(CONDITION_KEYS)}), e.g. clean: {{}}")
    out = {}
    for name, entry in raw.items():
        cwhere = f"{where}.{name}"
        if not isinstance(name, str) or not name or not all(
                c.isalnum() or c in "-_." for c in name):
            raise ConfigError(f"{cwhere}: a condition's name is letters, digits, '-', '_', '.'")
        entry = {} if entry is None else entry
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{cwhere}: expected a mapping of {', '.join(CONDITION_KEYS)}")
        for key in entry:
            if key not in CONDITION_KEYS:
                raise ConfigError(f"{cwhere}: unknown key {key!r}; valid: "
                                  f"{', '.join(CONDITION_KEYS)}")
        settings = dict(entry)
        if "noise" in settings:
            settings.update(noise_settings(settings.pop("noise"), cwhere))
        out[name] = settings
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


def _check_section(raw: Any, where: str, keys: tuple[str, ...]) -> None:
    """A config section is a mapping whose keys are among ``keys``."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping of {', '.join(keys)}")
    for key in raw:
        if key not in keys:
            raise ConfigError(f"{where}: unknown key {key!r}; valid: {', '.join(keys)}")


def _load_plugins(raw: Any, path: str) -> None:
    """The optional ``plugins:`` list: modules or ``.py`` files (relative to the config's
    folder first), imported before anything else is validated, so that what they register is
    known to the rest of the config."""
    from .plugins import PluginError, load_all

    if raw is None:
        return
    if not isinstance(raw, list) or not all(isinstance(p, str) and p for p in raw):
        raise ConfigError(f"{path}: plugins: expected a list of module names or .py files")
    try:
        load_all(raw, Path(path).parent)
    except PluginError as e:
        raise ConfigError(f"{path}: plugins: {e}") from None


def _load_user_dataset(name: str, entry: dict, path: str, where: str) -> None:
    """``kind: folder | npz`` and ``path`` (relative to the config's folder first): the user's
    own data, registered under the config's name for it. ``entry`` loses both keys."""
    from .data import USER_KINDS, DataError
    from .plugins import PluginError, load_dataset

    kind, location = entry.pop("kind", None), entry.pop("path", None)
    if kind not in USER_KINDS or not isinstance(location, str) or not location:
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


def _parse_compute(raw: Any, path: str, variants: list[Variant]) -> dict[str, Any]:
    """The optional ``compute:`` section: ``baseline`` (a variant label, default ``ce``), an epoch
    ``ladder`` (multiples > 0 of the grid's epochs at which the baseline runs again) and
    ``match: images`` (the baseline again at each variant's forwarded images)."""
    if raw is None:
        return {}
    where = f"{path}: compute"
    _check_section(raw, where, COMPUTE_KEYS)
    from .compute import MATCHES

    baseline = str(raw.get("baseline", "ce"))
    labels = [v.label for v in variants]
    if baseline not in labels:
        raise ConfigError(f"{where}.baseline: {baseline!r} is not a variant of this config; "
                          f"valid: {', '.join(labels)}")
    ladder = raw.get("ladder") or []
    if not isinstance(ladder, list) or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and 0 < x < math.inf
            for x in ladder):
        raise ConfigError(f"{where}.ladder: expected a list of finite positive multiples, e.g. "
                          "[1.5, 2]")
    match = raw.get("match")
    if match is not None and match not in MATCHES:
        raise ConfigError(f"{where}.match: {match!r} is not valid; choose one of: "
                          f"{', '.join(MATCHES)}")
    if not ladder and match is None:
        raise ConfigError(f"{where}: give a ladder, match: images, or both")
    return {"baseline": baseline, "ladder": [float(x) for x in ladder], "match": match}


def _budget_variants(compute: Mapping[str, Any], variants: list[Variant], path: str
                     ) -> list[Variant]:
    """The baseline again at each multiple of its epochs the ``compute:`` section asks for (its
    ladder, and each variant's forwarded images relative to it under ``match: images``), one
    variant per distinct multiple, labelled ``<baseline>@<multiple>x``."""
    if not compute:
        return []
    from .compute import cost_factor, label

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


def _parse_lattice(raw: Any, path: str, variants: list[Variant]) -> list[Variant]:
    """The optional ``lattice:`` section: each of ``methods`` (default tfkd-self and drkd) at
    every (teacher, alpha, temperature) of the declared lists, so that two methods meet at
    identical hyperparameters. Labels: ``<method>-<teacher>-a<alpha>-T<temperature>``."""
    if raw is None:
        return []
    where = f"{path}: lattice"
    _check_section(raw, where, LATTICE_KEYS)
    lists = {}
    for key in LATTICE_KEYS:
        value = raw.get(key, ["tfkd-self", "drkd"] if key == "methods" else None)
        if not isinstance(value, list) or not value or len(set(map(str, value))) != len(value):
            raise ConfigError(f"{where}.{key}: expected a non-empty list of distinct values")
        lists[key] = value
    out: list[Variant] = []
    taken = {v.label for v in variants}
    for name in lists["methods"]:
        try:
            method = methods.get(str(name))
        except methods.MethodError as e:
            raise ConfigError(f"{where}.methods: {e}") from None
        for teacher in lists["teacher"]:
            for alpha in lists["alpha"]:
                for temperature in lists["temperature"]:
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
                    out.append(Variant(label, str(name), hp, role="lattice"))
    return out


def _no_param(method: str, key: str):
    raise methods.MethodError(f"method {method!r} has no hyperparameter {key!r}")


def _parse_analysis(raw: Any, path: str) -> dict[str, Any]:
    """The optional ``analysis:`` section: the report's statistics settings (family, margin,
    alpha, power, bootstrap, bootstrap_seed, baseline; see docs/statistics.md)."""
    from analysis.stats import Analysis

    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: analysis: expected a mapping of settings")
    try:
        Analysis.from_mapping(raw, f"{path}: analysis")
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return dict(raw)


#: The shared optimiser settings a study searches under ``tune.optimiser: true`` (CE included):
#: ``lr`` per batch of 128 (scaled linearly, as the grid's) and ``weight_decay``; log scales.
OPTIMISER_PARAMS = {"lr": methods.Param(0.1, valid="(0, inf)", low=0.01, high=0.5, log=True),
                    "weight_decay": methods.Param(5e-4, valid="[0, inf)", low=1e-5, high=1e-3,
                                                  log=True)}


def split_optimiser(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A study's parameters as (the method's hyperparameters, the optimiser settings)."""
    return ({k: v for k, v in params.items() if k not in OPTIMISER_PARAMS},
            {k: v for k, v in params.items() if k in OPTIMISER_PARAMS})


def _check_space(space: Mapping[str, Any], variants: list[Variant], where: str,
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


def _parse_tune(raw: Any, path: str) -> dict[str, Any]:
    """The optional ``tune:`` section: trials, epochs, seed, timeout, storage and ``space`` (a
    mapping of hyperparameter -> [low, high] narrowing the registry's search range)."""
    if raw is None:
        return {}
    where = f"{path}: tune"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping of {', '.join(TUNE_KEYS)}")
    for key, value in raw.items():
        if key not in TUNE_KEYS:
            raise ConfigError(f"{where}: unknown key {key!r}; valid: {', '.join(TUNE_KEYS)}")
        if key in ("trials", "epochs", "seed", "seeds_per_trial", "rescore") and (
                not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ConfigError(f"{where}.{key}: expected a non-negative integer")
        if key in ("trials", "epochs", "seeds_per_trial") and value < 1:
            raise ConfigError(f"{where}.{key}: must be >= 1, got {value}")
        if key == "budget" and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                or not 0 < value < math.inf):
            raise ConfigError(f"{where}.budget: expected a finite number > 0 (images forwarded "
                              "per study, in passes over the training set)")
        if key == "timeout" and value is not None and (
                not isinstance(value, (int, float)) or isinstance(value, bool)
                or not 0 < value < math.inf):
            raise ConfigError(f"{where}.timeout: expected a finite number of seconds > 0")
        if key in ("optimiser", "pruning") and not isinstance(value, bool):
            raise ConfigError(f"{where}.{key}: expected true or false")
    if raw.get("pruning") and (raw.get("budget") is not None
                               or (raw.get("seeds_per_trial") or 1) > 1):
        raise ConfigError(f"{where}.pruning: a pruned trial costs less than its share, so "
                          "pruning cannot be combined with a budget or seeds_per_trial > 1")
    for name, bounds in (raw.get("space") or {}).items():
        if (not isinstance(bounds, list) or len(bounds) != 2 or
                not all(isinstance(b, (int, float)) for b in bounds) or bounds[0] >= bounds[1]):
            raise ConfigError(f"{where}.space.{name}: expected [low, high] with low < high")
    return dict(raw)


def _parse_variants(entries: Any, path: str, archs: list[str]) -> list[Variant]:
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: methods: expected a non-empty list")
    out: list[Variant] = []
    for i, entry in enumerate(entries):
        where = f"{path}: methods[{i}]"
        entry = {"method": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, Mapping) or "method" not in entry:
            raise ConfigError(f"{where}: expected a method name or a mapping with 'method'")
        name = entry["method"]
        try:
            method = methods.get(name)
        except methods.MethodError as e:
            raise ConfigError(f"{where}: {e}") from None
        hp = {k: v for k, v in entry.items() if k not in VARIANT_KEYS}
        control = entry.get("control", False)
        if control not in (True, False):
            raise ConfigError(f"{where}.control: expected true or false")
        if control:
            if not method.control:
                with_one = [n for n in methods.names() if methods.get(n).control]
                raise ConfigError(f"{where}.control: method {name!r} has no control; methods "
                                  f"with one: {', '.join(with_one)}")
            clash = sorted(set(hp) & set(method.control))
            if clash:
                raise ConfigError(f"{where}: {clash[0]!r} is fixed by the control; remove it")
            hp = {**hp, **method.control}
        tuned = entry.get("hyperparameters") == "tuned"
        if tuned and control:
            raise ConfigError(f"{where}: a control is not tuned; remove 'hyperparameters'")
        if "hyperparameters" in entry and not tuned:
            raise ConfigError(f"{where}.hyperparameters: the only valid value is 'tuned'")
        per_arch = dict(entry.get("per_arch") or {})
        for arch in per_arch:
            if arch not in archs:
                raise ConfigError(f"{where}.per_arch: {arch!r} is not in architectures; "
                                  f"valid: {', '.join(archs)}")
        try:
            method.resolve(hp)
            for arch_hp in per_arch.values():
                method.resolve({**hp, **arch_hp})
        except methods.MethodError as e:
            raise ConfigError(f"{where}: {e}") from None
        label = str(entry.get("label") or _default_label(name, hp, tuned)
                    + ("-control" if control and not entry.get("label") else ""))
        if any(v.label == label for v in out):
            raise ConfigError(f"{where}: duplicate variant label {label!r}; give each a 'label'")
        out.append(Variant(label, name, hp, per_arch, tuned, role="control" if control else ""))
    return out


def _default_label(method: str, hp: Mapping[str, Any], tuned: bool) -> str:
    label = f"{method}-{hp['teacher']}" if "teacher" in hp else method
    return label + "-tuned" if tuned else label

"""A grid config's schema: every section of the YAML file declared once, with its keys'
types, valid ranges, defaults and one-line meanings (pydantic), over the run's settings of
:mod:`benchmark.config.settings`. :func:`validate` checks a mapping against a declaration
with one-line errors (:mod:`benchmark.config.messages`); the JSON Schema an editor checks a
config with and the key tables of docs/config-keys.md are :mod:`benchmark.config.reference`.

What needs the registries (a dataset, architecture or method name, a method's hyperparameters,
a search range against the parameter it narrows) is checked after this, in
:mod:`benchmark.config.grids`.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    create_model,
    model_validator,
)

from benchmark.config.messages import field_names, message
from benchmark.config.settings import (
    RESERVED_SEEDS,
    STRICT,
    DataSettings,
    Expect,
    Float,
    TrainSettings,
)


class Section(BaseModel):
    model_config = STRICT


def _partial(name: str, cls, keys=None, doc: str = "") -> type[BaseModel]:
    """A section whose keys are ``cls``'s fields (all optional: a section sets some of them),
    with their declarations reused as they are."""
    fields = {k: (f.annotation, _optional(f)) for k, f in cls.__pydantic_fields__.items()
              if keys is None or k in keys}
    model = create_model(name, __base__=Section, **fields)
    model.__doc__ = doc
    return model


def _optional(f):
    f = f._copy()
    if f.is_required():
        f.default = None
    return f


TrainSection = _partial("TrainSection", TrainSettings, doc="training settings (each optional)")


class Noise(Section):
    """Label noise: exactly round(rate x n_c) labels of each class c change, in the training and
    validation splits (the test labels never change)."""

    kind: Literal["symmetric", "pair"] = Field(description="symmetric: a uniformly drawn other "
                                               "class; pair: class c becomes c + 1 (mod K)")
    rate: Float = Field(gt=0, lt=1, description="the share of each class's labels changed")
    seed: int = Field(0, ge=0, description="seed of the draw (per-seed split: + the run's seed)")


_DATA_KEYS = ("val_fraction", "split_seed", "train_subset", "augment", "split", "folds")
_DatasetBase = _partial("DatasetBase", DataSettings, _DATA_KEYS)


class DatasetEntry(_DatasetBase):
    """A dataset of the grid, with its data settings (and for one of your own, where it is)."""

    noise: Noise | None = Field(None, description="label noise (default: clean)")
    kind: Literal["folder", "npz"] | None = Field(None, description="a dataset of your own: a "
                                                  "folder of class folders, or an .npz")
    path: str | None = Field(None, min_length=1, description="where your own dataset is "
                             "(relative to the config's folder first)")
    architectures: list[str] | None = Field(None, min_length=1, description="train only these "
                                            "of the config's architectures on it")
    train: TrainSection | None = Field(None, description="training overrides for this dataset")


class Condition(Section):
    """A named condition every dataset of the config runs under (``dataset:condition``)."""

    noise: Noise | None = Field(None, description="label noise")
    train_subset: int | None = Field(None, ge=10, description="a training subset of this size")


class Architecture(Section):
    train: TrainSection | None = Field(None, description="training overrides for this "
                                                         "architecture")


class MethodEntry(BaseModel):
    """A method, with fixed values of its hyperparameters (any other key of the entry: see
    ``drkd-bench list``) or ``hyperparameters: tuned``."""

    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)
    method: str = Field(description="a registered method (drkd-bench list)")
    label: str | None = Field(None, min_length=1, description="the variant's name (default: "
                              "method[-teacher][-tuned|-control])")
    per_arch: dict[str, dict[str, Any]] = Field({}, description="hyperparameters per "
                                                "architecture")
    hyperparameters: Literal["tuned"] | None = Field(None, description="tuned: its values come "
                                                     "from its Optuna study")
    control: bool = Field(False, description="the method's mechanism control instead")


def _space(value: Any) -> Any:
    if isinstance(value, list) and len(value) == 2 and all(
            isinstance(b, (int, float)) and not isinstance(b, bool) for b in value) \
            and value[0] >= value[1]:
        raise ValueError("expected [low, high] with low < high")
    return value


class Tune(Section):
    """Optuna studies of the tuned variants (drkd-bench tune; docs/statistics.md)."""

    trials: int | None = Field(None, ge=1, description="trials per study (default 20)")
    epochs: int | None = Field(None, ge=1, description="epochs of a trial (default: the grid's)")
    seed: int | None = Field(None, ge=0, description="sampler seed")
    space: dict[str, Annotated[tuple[Float, Float], Strict(False), BeforeValidator(_space),
                               Expect("[low, high] with low < high")]] | None = Field(
        None, description="hyperparameter: [low, high], narrowing the method's "
                                        "search range")
    storage: str | None = Field(None, description="Optuna storage: a journal file or an RDB URL")
    timeout: Float | None = Field(None, gt=0, description="stop a study after this many seconds")
    seeds_per_trial: int | None = Field(None, ge=1, description="seeds a trial trains and "
                                        "averages")
    budget: Float | None = Field(None, gt=0, description="each study's images forwarded, in "
                                 "passes over the training set (the trial count follows)")
    optimiser: bool | None = Field(None, description="also search lr and weight_decay, for "
                                   "every variant, CE included")
    pruning: bool | None = Field(None, description="median pruning after epoch 2 (default off)")
    folds: int | None = Field(None, ge=2, description="k-fold cross-validation on the training "
                              "split: a trial trains k seeds, the i-th validating on fold i, so "
                              "every training image is validated once (small data sets)")
    trials_per_dimension: int | None = Field(
        None, ge=1, description="equal effort: every study of a task gets this many trials per "
        "dimension of the task's largest search space, whatever its own space or its teacher's "
        "cost (which is paid in images, not trials)")
    rescore: int | None = Field(None, ge=0, description="train the winner again on this many "
                                "fresh seeds")

    @model_validator(mode="after")
    def _pruning_alone(self) -> Tune:
        if self.pruning and (self.budget is not None or (self.seeds_per_trial or 1) > 1
                             or self.folds):
            raise ValueError("pruning: a pruned trial costs less than its share, so pruning "
                             "cannot be combined with a budget, folds or seeds_per_trial > 1")
        if self.folds and self.seeds_per_trial and self.seeds_per_trial != self.folds:
            raise ValueError(f"folds {self.folds}: a trial trains one seed per fold, so "
                             f"seeds_per_trial must be {self.folds} or left out")
        if self.trials_per_dimension and (self.budget is not None or self.trials):
            raise ValueError("trials_per_dimension sets every study's trial count: leave out "
                             "budget and trials")
        return self


Multiple = Annotated[Float, Field(gt=0)]


class TuneFlags(Section):
    """A ``tune:`` section on its own (the command line's flags over a config's)."""

    tune: Tune


class Compute(Section):
    """The baseline again at other budgets: CE read at each method's compute."""

    baseline: str = Field("ce", description="the variant trained again (a label of methods)")
    ladder: Annotated[list[Multiple], Expect("a list of finite positive multiples, e.g. "
                                             "[1.5, 2]")] = Field(
        [], description="multiples of the grid's epochs at which the baseline runs again")
    match: Literal["images"] | None = Field(None, description="images: the baseline again at "
                                            "each variant's forwarded images")

    @model_validator(mode="after")
    def _something(self) -> Compute:
        if not self.ladder and self.match is None:
            raise ValueError("give a ladder, match: images, or both")
        return self


Distinct = Expect("a non-empty list of distinct values")


def _distinct(value: Any) -> Any:
    if isinstance(value, list) and len(set(map(str, value))) != len(value):
        raise ValueError("expected a non-empty list of distinct values")
    return value


class Lattice(Section):
    """Each method at every (teacher, alpha, temperature) of the lists, so that two methods
    meet at identical hyperparameters (labels method-teacher-aA-TT)."""

    methods: Annotated[list[str], BeforeValidator(_distinct), Distinct] = Field(
        ["tfkd-self", "drkd"], min_length=1, description="the methods crossed")
    teacher: Annotated[list[str], BeforeValidator(_distinct), Distinct] = Field(
        min_length=1, description="teacher sources")
    alpha: Annotated[list[Float], BeforeValidator(_distinct), Distinct] = Field(
        min_length=1, description="KD weights")
    temperature: Annotated[list[Float], BeforeValidator(_distinct), Distinct] = Field(
        min_length=1, description="temperatures")


def _names(value: Any) -> Any:
    """A list of names as a mapping of names to empty entries; an empty entry as {}."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return {v: {} for v in value}
    if isinstance(value, dict):
        return {k: {} if v is None else v for k, v in value.items()}
    return value


def _named(entry: type) -> Any:
    return Annotated[dict[str, entry], BeforeValidator(
        _names, json_schema_input_type=list[str] | dict[str, entry | None]),
        Expect("a non-empty list of names or a mapping")]


def _variants(value: Any) -> Any:
    if isinstance(value, list):
        return [{"method": v} if isinstance(v, str) else v for v in value]
    return value


def _seeds(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return list(range(value))
    if isinstance(value, list) and len(set(value)) != len(value):
        raise ValueError("duplicate seeds")
    return value


Seed = Annotated[int, Field(ge=0, lt=RESERVED_SEEDS)]


def _condition_names(value: Any) -> Any:
    for name in value or {}:
        if not isinstance(name, str) or not name or not all(
                c.isalnum() or c in "-_." for c in name):
            raise ValueError(f"a condition's name is letters, digits, '-', '_', '.' (not "
                             f"{name!r})")
    return _names(value)


class GridFile(Section):
    """A drkd-bench grid config: datasets x conditions x architectures x methods x seeds."""

    name: str | None = Field(None, description="the grid's name (default: the file's name)")
    description: str = Field("", description="what the grid is for")
    plugins: list[Annotated[str, Field(min_length=1)]] = Field(
        [], description="modules or .py files imported first (they may register methods, "
                        "datasets, ...)")
    seeds: Annotated[list[Seed], BeforeValidator(_seeds, json_schema_input_type=Annotated[
        int, Field(ge=1)] | list[Seed]), Expect(
        f"a count or a non-empty list of distinct integers in [0, {RESERVED_SEEDS}) (the seeds "
        f"from {RESERVED_SEEDS} on are tuning's)")] = Field(
        min_length=1, description=f"a count, or the seeds (each in [0, {RESERVED_SEEDS}))")
    datasets: _named(DatasetEntry) = Field(min_length=1, description="the datasets, each with "
                                           "its settings (or a list of names)")
    conditions: Annotated[dict[str, Condition], BeforeValidator(
        _condition_names, json_schema_input_type=dict[str, Condition | None])] | None = Field(
        None, min_length=1, description="named conditions every dataset runs under")
    architectures: _named(Architecture) = Field(min_length=1, description="the architectures "
                                                "(or a list of names)")
    methods: Annotated[list[MethodEntry], BeforeValidator(
        _variants, json_schema_input_type=list[str | MethodEntry])] = Field(
        min_length=1, description="the variants: a method name, or a mapping")
    train: TrainSection | None = Field(None, description="training settings of every cell")
    task_train: dict[str, TrainSection] | None = Field(
        None, description="training overrides per task, by shell pattern over "
        "'dataset:condition/arch' (e.g. a converged budget per task), applied in order after "
        "the dataset's and the architecture's")
    data_root: str | None = Field(None, description="where datasets are looked for")
    tune: Tune | None = Field(None, description="Optuna studies of the tuned variants")
    analysis: dict[str, Any] | None = Field(None, description="the report's statistics settings "
                                            "(docs/statistics.md)")
    compute: Compute | None = Field(None, description="the baseline at other budgets")
    lattice: Lattice | None = Field(None, description="methods at identical hyperparameters")


# --- validation with one-line errors --------------------------------------------------------

def validate(model: type, raw: Any, where: str) -> Any:
    """``model`` validated from ``raw`` (a mapping), or ``ValueError`` in one line naming
    ``where`` and the key."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a mapping of {', '.join(field_names(model))}")
    try:
        if isinstance(model, type) and issubclass(model, BaseModel):
            return model.model_validate(raw)
        return model(**raw)
    except ValidationError as e:
        raise ValueError(message(e, model, where)) from None

"""A grid config's schema: every key declared once, with its type, valid range, default and
one-line meaning (pydantic). Validation and its one-line errors (:func:`validate`), the JSON
Schema an editor checks a config with (``drkd-bench schema``; the shipped configs point to
``configs/drkd-bench.schema.json``) and the key tables of docs/config-keys.md all come from here.

What needs the registries (a dataset, architecture or method name, a method's hyperparameters,
a search range against the parameter it narrows) is checked after this, in :mod:`config`.
"""
from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Annotated, Any, Literal

import annotated_types
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
from pydantic.dataclasses import dataclass

from .data import Augment

#: Seeds from here on belong to tuning (benchmark.tune: re-scores from it, trials from twice
#: it); a config's evaluated seeds lie below.
RESERVED_SEEDS = 10_000

#: Strict types (a string is not a number, true is not 1), unknown keys refused, no inf or NaN.
STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


def _yaml_float(value: Any) -> Any:
    """YAML 1.1 (PyYAML) reads ``1e-3`` as a string; a number written so is a number."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


Float = Annotated[float, BeforeValidator(_yaml_float)]


class Expect:
    """What a key expects, in words, when its type or range alone would say it badly."""

    def __init__(self, words: str) -> None:
        self.words = words


# --- the run's settings: a cell's identity is made of these (their fields are hashed) -------

@dataclass(frozen=True, config=STRICT)
class TrainSettings:
    """Optimisation settings. ``lr`` is for a batch of ``lr_reference_batch`` images; the
    effective rate is ``lr * batch_size / lr_reference_batch`` (the Tf-KD convention
    0.1 x batch/128)."""

    epochs: int = Field(15, ge=1, description="training epochs")
    batch_size: int = Field(64, ge=2, description="images per step")
    lr: Float = Field(0.1, gt=0, description="learning rate for a batch of lr_reference_batch "
                                             "images (scaled linearly with batch_size)")
    lr_reference_batch: int = Field(128, ge=1, description="the batch size lr is given for")
    momentum: Float = Field(0.9, ge=0, lt=1, description="SGD momentum")
    weight_decay: Float = Field(5e-4, ge=0, description="L2 weight decay")
    nesterov: bool = Field(False, description="Nesterov momentum")
    warmup_epochs: Float = Field(1.0, ge=0, description="linear learning-rate warm-up, epochs")
    schedule: Literal["cosine", "multistep", "constant"] = Field(
        "cosine", description="learning-rate schedule after the warm-up")
    milestones: tuple[int, ...] = Field((), strict=False, description="epochs at which "
                                        "multistep multiplies the rate by gamma")
    gamma: Float = Field(0.2, gt=0, le=1, description="multistep's factor")
    precision: Literal["fp32", "bf16"] = Field(
        "fp32", description="bf16: bfloat16 autocast (changes results: part of the hash)")
    compile: bool = Field(False, description="torch.compile the student's training forward "
                                             "(part of the hash when on)")
    test_every: int = Field(1, ge=1, description="the test split every k epochs and at the last "
                                                 "one (part of the hash when not 1)")

    @property
    def effective_lr(self) -> float:
        return self.lr * self.batch_size / self.lr_reference_batch


NOISE_KINDS = ("none", "symmetric", "pair")


@dataclass(frozen=True, config=STRICT)
class DataSettings:
    """``split: per-seed`` draws the validation split (and the training subset) anew for each
    seed, from ``split_seed + seed``, so that split variance enters the intervals over seeds;
    ``fixed`` (the default) draws them once from ``split_seed``."""

    name: str = Field(description="the dataset's registered name")
    val_fraction: Float = Field(0.1, gt=0, lt=1, description="share of the training images "
                                "held out for validation (stratified)")
    split_seed: int = Field(0, ge=0, description="seed of the validation split and subset")
    train_subset: int | None = Field(None, ge=10, description="a stratified subset of this many "
                                     "training images (default: all)")
    augment: Augment | None = Field(None, description="batch augmentation (default: the "
                                    "dataset's own)")
    split: Literal["fixed", "per-seed"] = Field(
        "fixed", description="per-seed: the split (and subset, and noise) drawn anew per seed")
    #: Label noise on the training and validation labels (never the test labels), in the
    #: config's ``noise: {kind, rate, seed}`` (:class:`Noise`).
    noise: Literal["none", "symmetric", "pair"] = "none"
    noise_rate: Float = Field(0.0, ge=0, lt=1)
    noise_seed: int = Field(0, ge=0)
    #: The condition's name in a config with ``conditions:`` (a label: not part of the hash).
    condition: str = ""

    @model_validator(mode="after")
    def _noise_needs_rate(self) -> DataSettings:
        if self.noise == "none" and (self.noise_rate or self.noise_seed):
            raise ValueError("noise.rate and noise.seed need a noise.kind")
        if self.noise != "none" and self.noise_rate == 0:
            raise ValueError(f"noise.rate must be > 0 for {self.noise} noise (clean: omit noise)")
        return self

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


# --- the config file's sections -------------------------------------------------------------

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


_DATA_KEYS = ("val_fraction", "split_seed", "train_subset", "augment", "split")
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
    rescore: int | None = Field(None, ge=0, description="train the winner again on this many "
                                "fresh seeds")

    @model_validator(mode="after")
    def _pruning_alone(self) -> Tune:
        if self.pruning and (self.budget is not None or (self.seeds_per_trial or 1) > 1):
            raise ValueError("pruning: a pruned trial costs less than its share, so pruning "
                             "cannot be combined with a budget or seeds_per_trial > 1")
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
        raise ValueError(f"{where}: expected a mapping of {', '.join(_fields(model))}")
    try:
        if isinstance(model, type) and issubclass(model, BaseModel):
            return model.model_validate(raw)
        return model(**raw)
    except ValidationError as e:
        raise ValueError(message(e, model, where)) from None


KINDS = {"int": "an integer", "float": "a number", "bool": "true or false", "string": "a string",
         "list": "a list", "tuple": "a list", "dict": "a mapping", "model": "a mapping",
         "dataclass": "a mapping", "literal": "one of", "none": "nothing"}


def message(e: ValidationError, model: type, where: str) -> str:
    """The first error of ``e`` as one line: ``where: key.path: what is wrong``."""
    err = e.errors(include_url=False)[0]
    loc = [p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p in KINDS))]
    kind, value = err["type"], err.get("input")
    key = loc[-1] if loc else ""
    parent = ".".join(map(str, loc[:-1]))
    at = f"{where}: {parent}" if parent else where
    path = ".".join(map(str, loc))
    container, info, declared = _lookup(model, loc)
    expect = next((m.words for m in getattr(info, "metadata", ()) if isinstance(m, Expect)),
                  None)
    if expect:  # said of the key that declares it, not of an item of it
        path = ".".join(map(str, loc[:declared + 1]))
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        return f"{at}: unknown key {key!r}; valid: {', '.join(_fields(container))}"
    if kind in ("missing", "missing_argument"):
        return f"{at}: missing key {key!r}" + (f" (expected {expect})" if expect else "")
    if kind == "value_error":
        text = str(err.get("ctx", {}).get("error", err["msg"]))
        return f"{where}: {path}: {text}" if path else f"{where}: {text}"
    if expect:
        return f"{where}: {path}: expected {expect}, got {value!r}"
    if kind == "literal_error":
        choices = ", ".join(str(c) for c in _literal(info))
        return f"{where}: {path} must be one of: {choices} (got {value!r})"
    if kind == "finite_number":
        bounds = _bounds(info).removeprefix("be ")
        return f"{where}: {path} must be finite and {bounds}, got {value!r}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{where}: {path} must {_bounds(info)}, got {value!r}"
    if kind in ("too_short", "string_too_short"):  # a string's own, or a list's or mapping's
        what = "string" if kind == "string_too_short" else _kind(info)
        return f"{where}: {path}: expected a non-empty {KINDS[what].removeprefix('a ')}"
    words = KINDS.get(kind.split("_")[0], kind.replace("_", " "))
    return f"{where}: {path}: expected {words}, got {value!r}"


def _fields(model) -> list[str]:
    return list(getattr(model, "__pydantic_fields__", {}) or {})


def _unwrap(t: Any) -> list[Any]:
    """The types inside an annotation (Optional, Annotated, list, dict values)."""
    origin = typing.get_origin(t)
    if origin is Annotated:
        return _unwrap(typing.get_args(t)[0])
    if origin in (typing.Union, types.UnionType):
        return [x for a in typing.get_args(t) for x in _unwrap(a)]
    return [t]


def _lookup(model: Any, loc: list) -> tuple[Any, Any, int]:
    """(the model the last key of ``loc`` was given to, the declaration of that key or of the
    list or mapping an item of ``loc`` belongs to, and that key's index in ``loc``)."""
    holders = _holders(model, loc)
    for i in range(len(loc) - 1, -1, -1):
        fields = getattr(holders[i], "__pydantic_fields__", None) or {}
        if isinstance(loc[i], str) and loc[i] in fields:
            return holders[-1], fields[loc[i]], i
    return (holders[-1] if holders else model), None, len(loc) - 1


def _holders(model: Any, loc: list) -> list:
    """For each part of ``loc``, the model it is a key of (a list index or a mapping key stays
    with the model that holds the list or mapping), in one walk down the declarations."""
    out, container = [], model
    for part in loc:
        out.append(container)
        fields = getattr(container, "__pydantic_fields__", None) or {}
        if isinstance(part, str) and part in fields:
            container = _model_in(fields[part].annotation) or container
    return out


def _model_in(annotation: Any) -> Any:
    """The model (or pydantic dataclass) an annotation holds: itself, or the items of its list
    or the values of its mapping; None when it holds none."""
    inner = [x for x in _unwrap(annotation) if x is not type(None)]
    items = [a for x in inner for y in typing.get_args(x) for a in _unwrap(y)]
    return next((x for x in inner + items if hasattr(x, "__pydantic_fields__")), None)


def _literal(info: Any) -> tuple:
    for t in _unwrap(getattr(info, "annotation", None)):
        if typing.get_origin(t) is Literal:
            return typing.get_args(t)
    return ()


def _kind(info: Any) -> str:
    """``dict`` for a mapping's declaration, else ``list`` (too_short is said of lists, tuples
    and mappings only)."""
    types_ = _unwrap(getattr(info, "annotation", None))
    return "dict" if any((typing.get_origin(t) or t) is dict for t in types_) else "list"


def _bounds(info: Any) -> str:
    """``be >= 1``, ``be > 0`` or ``lie in (0, 1]`` from a field's declared range."""
    low = high = None
    for m in getattr(info, "metadata", ()):
        if isinstance(m, (annotated_types.Ge, annotated_types.Gt)):
            low = ("[" if isinstance(m, annotated_types.Ge) else "(",
                   getattr(m, "ge", getattr(m, "gt", None)))
        if isinstance(m, (annotated_types.Le, annotated_types.Lt)):
            high = ("]" if isinstance(m, annotated_types.Le) else ")",
                    getattr(m, "le", getattr(m, "lt", None)))
    if low and high:
        return f"lie in {low[0]}{low[1]:g}, {high[1]:g}{high[0]}"
    if low:
        return f"be {'>=' if low[0] == '[' else '>'} {low[1]:g}"
    if high:
        return f"be {'<=' if high[0] == ']' else '<'} {high[1]:g}"
    return "be a finite number"


# --- the JSON Schema and the key tables -----------------------------------------------------

SCHEMA_FILE = "drkd-bench.schema.json"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a grid config (draft 2020-12), for editors and CI."""
    schema = GridFile.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            **schema, "title": "drkd-bench grid config"}


def json_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"


def _type_words(t: Any) -> str:
    inner = [x for x in _unwrap(t) if x is not type(None)]
    out = []
    for x in inner:
        origin = typing.get_origin(x)
        if origin is Literal:
            out.append(" \\| ".join(f"`{a}`" for a in typing.get_args(x)))
        elif origin in (list, tuple):
            out.append("list")
        elif origin is dict:
            out.append("mapping")
        elif hasattr(x, "__pydantic_fields__"):
            out.append("mapping")
        else:
            out.append(getattr(x, "__name__", str(x)))
    return " or ".join(dict.fromkeys(out))


def _default_words(info: Any) -> str:
    if info.is_required():
        return "required"
    d = info.get_default(call_default_factory=True)
    if d is None:
        return "—"
    if isinstance(d, float) and not math.isfinite(d):
        return str(d)
    return f"`{json.dumps(d if not isinstance(d, tuple) else list(d))}`"


def _valid_words(info: Any) -> str:
    bounds = _bounds(info)
    return bounds.replace("be ", "").replace("lie in ", "") if bounds != "be a finite number" \
        else ""


SECTIONS = [("top level", GridFile), ("`train:` (also `datasets.<name>.train`, "
                                      "`architectures.<name>.train`)", TrainSection),
            ("`datasets.<name>:`", DatasetEntry), ("`noise:`", Noise),
            ("`augment:`", Augment), ("`conditions.<name>:`", Condition),
            ("`methods:` entries", MethodEntry), ("`tune:`", Tune), ("`compute:`", Compute),
            ("`lattice:`", Lattice)]


def markdown() -> str:
    """docs/config-keys.md: one table per section, from the declarations above."""
    lines = ["# Config keys", "",
             "Generated from `benchmark/schema.py` by `drkd-bench schema --markdown` (a test "
             "checks it is current). Editors check a config as it is typed with the JSON Schema "
             f"`benchmark/configs/{SCHEMA_FILE}` (`drkd-bench schema`); the harness validates "
             "the same declarations, then the names against the registries (`drkd-bench list`). "
             "The `analysis:` keys are in [statistics.md](statistics.md).", ""]
    for title, model in SECTIONS:
        lines += [f"## {title}", "", (model.__doc__ or "").strip().split("\n\n")[0]
                  .replace("\n", " "), "", "| key | type | default | valid | meaning |",
                  "|---|---|---|---|---|"]
        for key, info in model.__pydantic_fields__.items():
            if info.description is None:
                continue
            lines.append(f"| `{key}` | {_type_words(info.annotation)} | {_default_words(info)} "
                         f"| {_valid_words(info)} | {info.description} |")
        lines.append("")
    return "\n".join(lines)

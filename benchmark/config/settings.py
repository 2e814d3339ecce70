"""The run's settings: a cell's identity is made of these. Each key is declared once, here:
its type, valid range, default, meaning, and whether it enters the cell hash (``hash`` in the
field's metadata: see :func:`hashed`). The run spec, the hash, validation, the JSON Schema and
docs/config-keys.md all read this declaration."""
from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)
from pydantic.dataclasses import dataclass

from benchmark.data import Augment

#: Seeds from here on belong to tuning (benchmark.jobs.tune: re-scores from it, trials from twice
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


class Hash:
    """Whether a run setting enters the cell hash, declared with the key (``Annotated[type,
    Hash.X]``); a key without a mark is always hashed. ``UNLESS_DEFAULT``: hashed only when it
    differs from its default (keys that came after cells were tracked: a store made before
    them keeps its finished cells); ``NEVER``: a label that changes no result."""

    ALWAYS, UNLESS_DEFAULT, NEVER = "always", "unless default", "never"

    def __init__(self, policy: str) -> None:
        self.policy = policy

    def __repr__(self) -> str:
        return f"Hash({self.policy!r})"


UNLESS_DEFAULT, NEVER = Hash(Hash.UNLESS_DEFAULT), Hash(Hash.NEVER)


def hash_policy(cls: type, key: str) -> str:
    """How ``cls``'s field ``key`` enters the cell hash (:class:`Hash`)."""
    marks = [m for m in cls.__pydantic_fields__[key].metadata if isinstance(m, Hash)]
    return marks[0].policy if marks else Hash.ALWAYS


def hashed(settings: Any) -> dict[str, Any]:
    """The fields of ``settings`` (a run-settings dataclass) that enter the cell hash, as
    ``dataclasses.asdict`` gives them, by each key's declared :class:`Hash` policy."""
    cls = type(settings)
    out = {}
    for key, value in dataclasses.asdict(settings).items():
        policy = hash_policy(cls, key)
        if policy == Hash.NEVER or (policy == Hash.UNLESS_DEFAULT and
                                    value == cls.__pydantic_fields__[key].default):
            continue
        out[key] = value
    return out


class Expect:
    """What a key expects, in words, when its type or range alone would say it badly."""

    def __init__(self, words: str) -> None:
        self.words = words



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
    precision: Literal["fp32", "bf16", "auto"] = Field(
        "fp32", description="bf16: bfloat16 autocast (changes results); auto: bf16 where this "
        "chip's calibration (speed --calibrate) measured it >= 1.2x faster for the "
        "architecture, else fp32. The resolved value is what the cell hash holds")
    compile: Annotated[bool, UNLESS_DEFAULT] = Field(
        False, description="torch.compile the student's training forward")
    test_every: Annotated[int, UNLESS_DEFAULT] = Field(
        1, ge=1, description="the test split every k epochs and at the last one")

    @property
    def effective_lr(self) -> float:
        return self.lr * self.batch_size / self.lr_reference_batch


NOISE_KINDS = ("none", "symmetric", "pair")


@dataclass(frozen=True, config=STRICT)
class DataSettings:
    """``split: per-seed`` draws the validation split (and the training subset) anew for each
    seed, from ``split_seed + seed``, so that split variance enters the intervals over seeds;
    ``fixed`` (the default) draws them once from ``split_seed``; ``k-fold`` (with ``folds: k``)
    partitions the training set once into k stratified folds and seed s validates on fold
    s mod k, so that k seeds validate every training image once (a small data set's validation
    that resolves: digits' 10% split is 135 images); the label noise is drawn per seed as with
    ``per-seed``."""

    name: str = Field(description="the dataset's registered name")
    val_fraction: Float = Field(0.1, gt=0, lt=1, description="share of the training images "
                                "held out for validation (stratified)")
    split_seed: int = Field(0, ge=0, description="seed of the validation split and subset")
    train_subset: int | None = Field(None, ge=10, description="a stratified subset of this many "
                                     "training images (default: all)")
    augment: Augment | None = Field(None, description="batch augmentation (default: the "
                                    "dataset's own)")
    split: Annotated[Literal["fixed", "per-seed", "k-fold"], UNLESS_DEFAULT] = Field(
        "fixed", description="per-seed: the split (and subset, and noise) drawn anew per seed; "
        "k-fold: seed s validates on fold s mod folds of one partition (noise per seed)")
    #: Label noise on the training and validation labels (never the test labels), in the
    #: config's ``noise: {kind, rate, seed}`` (:class:`Noise`).
    noise: Annotated[Literal["none", "symmetric", "pair"], UNLESS_DEFAULT] = "none"
    noise_rate: Annotated[Float, UNLESS_DEFAULT] = Field(0.0, ge=0, lt=1)
    noise_seed: Annotated[int, UNLESS_DEFAULT] = Field(0, ge=0)
    #: The condition's name in a config with ``conditions:`` (a label: not part of the hash).
    condition: Annotated[str, NEVER] = ""
    #: k-fold cross-validation (tuning on a small data set, ``tune.folds``): the validation
    #: split is fold ``fold`` of ``folds`` stratified folds of the training set instead of
    #: ``val_fraction``; 0: no folds.
    folds: Annotated[int, UNLESS_DEFAULT] = Field(0, ge=0)
    fold: Annotated[int, UNLESS_DEFAULT] = Field(0, ge=0)

    @model_validator(mode="after")
    def _noise_needs_rate(self) -> DataSettings:
        if self.noise == "none" and (self.noise_rate or self.noise_seed):
            raise ValueError("noise.rate and noise.seed need a noise.kind")
        if self.noise != "none" and self.noise_rate == 0:
            raise ValueError(f"noise.rate must be > 0 for {self.noise} noise (clean: omit noise)")
        if self.split == "k-fold" and self.folds < 2:
            raise ValueError("split: k-fold needs folds: k (2 or more)")
        if self.folds == 1 or (self.fold and self.fold >= self.folds):
            raise ValueError(f"fold {self.fold} of {self.folds}: folds must be 0 or >= 2, and "
                             "fold below it")
        return self

    @property
    def task(self) -> str:
        """The data's name in keys, tags and reports: ``dataset`` or ``dataset:condition``."""
        return f"{self.name}:{self.condition}" if self.condition else self.name

    def for_seed(self, seed: int) -> DataSettings:
        """The settings one run of ``seed`` loads its data with: with ``split: per-seed`` the
        split seed is ``split_seed + seed`` and the noise seed ``noise_seed + seed``."""
        if self.split == "fixed":
            return self
        noise_seed = self.noise_seed + seed if self.noise != "none" else self.noise_seed
        if self.split == "k-fold":  # one partition; the seed picks its fold
            return dataclasses.replace(self, fold=seed % self.folds, noise_seed=noise_seed)
        return dataclasses.replace(self, split_seed=self.split_seed + seed, noise_seed=noise_seed)

    def noise_text(self) -> str:
        """``symmetric 40% (seed 3)`` or ``none``."""
        if self.noise == "none":
            return "none"
        return f"{self.noise} {100 * self.noise_rate:g}% (seed {self.noise_seed})"

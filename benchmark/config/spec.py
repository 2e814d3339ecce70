"""The run spec: everything that identifies one training run (a grid cell), hashed over what
changes results; built and validated against the registries before anything runs."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import methods
from benchmark import data, models
from benchmark.config import schema
from benchmark.config.settings import RESERVED_SEEDS, DataSettings, TrainSettings, hashed
from benchmark.errors import ConfigError  # noqa: F401  (raised here; its home is errors)
from benchmark.models import teachers

#: Seeds a run may have: numpy's and torch's generators take any seed below 2**31 with the
#: offsets the harness adds (splits, noise, tuning's reserved ranges).
MAX_SEED = 2 ** 31 - 4 * RESERVED_SEEDS

#: The version of the rule that turns a spec into its hash (:meth:`RunSpec.identity`), recorded
#: with every run (tag ``hash_scheme``). Every run before the tag was hashed under scheme 1: keys
#: that came later enter the identity only away from their defaults, so old cells kept their
#: hashes. A change that would move finished cells' hashes raises it, and ``reproduce`` names the
#: scheme an edition's cells were hashed under when they no longer rebuild.
HASH_SCHEME = 1


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
    #: The training settings of this run's pretrained self-teacher (its CE cell) when they are
    #: not the run's own: a tuned variant that searched lr and weight_decay distils from the
    #: grid's CE cell, as its study's trials did (None: the run's own settings).
    teacher_train: TrainSettings | None = None

    def __post_init__(self) -> None:
        for settings in (self.train, self.teacher_train):
            if settings is not None and settings.precision == "auto":
                raise ConfigError("train.precision: auto is resolved from this chip's "
                                  "calibration before a run is made (a run records fp32 or "
                                  "bf16, never auto)")

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
        if d["teacher_train"] is None:  # added later: every cell before it keeps its hash
            d.pop("teacher_train")
        # as each key declares (teacher_train, added later, is hashed whole, as it always was)
        d["data"], d["train"] = hashed(self.data), hashed(self.train)
        d["hyperparameters"] = dict(sorted(self.hyperparameters.items()))
        from benchmark.config.plugins import used_by

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
        return dataclasses.replace(self, method="ce", hyperparameters={}, variant="ce",
                                   train=self.teacher_train or self.train, teacher_train=None)

    def flat_params(self) -> dict[str, Any]:
        out = {"dataset": self.data.name, "arch": self.arch, "method": self.method,
               "variant": self.label, "seed": self.seed}
        for k, v in dataclasses.asdict(self.data).items():
            out[f"data.{k}"] = v
        for k, v in dataclasses.asdict(self.train).items():
            out[f"train.{k}"] = v
        if self.teacher_train is not None:
            for k, v in dataclasses.asdict(self.teacher_train).items():
                out[f"teacher_train.{k}"] = v
        for k, v in self.hyperparameters.items():
            out[f"hp.{k}"] = v
        from benchmark.config.plugins import used_by

        for k, v in used_by(self).items():
            out[f"plugin.{k}"] = v
        return out

    def tags(self) -> dict[str, str]:
        """What identifies the cell in the tracking store (searchable tags)."""
        method = methods.get(self.method)
        tags = {"cell_hash": self.hash, "hash_scheme": str(HASH_SCHEME),
                "cell_key": self.key, "dataset": self.data.task,
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
    if not 0 <= int(seed) < MAX_SEED:  # every generator takes it, offsets added
        raise ConfigError(f"seed {seed}: give a seed in [0, {MAX_SEED})")
    spec_data = data.get_spec(dataset)
    arch = arch or spec_data.default_arch
    try:
        models.check(arch)
        resolved = methods.get(method).resolve(hyperparameters or {})
    except (models.ModelError, methods.MethodError) as e:
        raise ConfigError(str(e)) from None
    settings = build(TrainSettings, dict(train or {}), "train")
    ds = build(DataSettings, {"name": dataset, **data_settings}, "data")
    return RunSpec(ds.for_seed(int(seed)), arch, method, resolved, int(seed), settings,
                   variant or _default_label(method, hyperparameters or {}, False))


def build(cls, values: Mapping[str, Any], where: str):
    """``cls`` (a declared section or settings) from ``values``, or one line naming the key."""
    try:
        return schema.validate(cls, dict(values), where)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def check_data(d: DataSettings, where: str) -> None:
    """What the declaration cannot know: noise needs a dataset with labels to corrupt."""
    if d.noise != "none" and data.get_spec(d.name).num_classes < 2:
        raise ConfigError(f"{where}: noise needs labels to corrupt: {d.name} has fewer than "
                          "two classes")


def _default_label(method: str, hp: Mapping[str, Any], tuned: bool) -> str:
    label = f"{method}-{hp['teacher']}" if "teacher" in hp else method
    return label + "-tuned" if tuned else label

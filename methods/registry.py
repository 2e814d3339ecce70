"""The method registry: each training objective declares its hyperparameters and its teacher.

A method is a frozen record: a name, a ``terms`` function (pure tensors, returns a dict of named
loss terms and diagnostics with the total under ``"loss"``), its hyperparameters as :class:`Param`
entries and the teacher it needs. ``methods`` imports nothing of the rest of the project.
"""
from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the records are declared without torch: importing the registry is cheap
    import torch


class MethodError(ValueError):
    """An unknown method, an unknown hyperparameter or a value out of its valid range."""


_INF = math.inf


@dataclass(frozen=True)
class Param:
    """One hyperparameter.

    ``default`` is the value used when nothing is given (``None`` means "from the fidelity
    preset"). ``valid`` is the interval the value must lie in, written like ``"[0, 1)"``;
    ``choices`` lists the allowed values of a categorical one. ``low``/``high``/``log`` give the
    Optuna search range (only for tunable ones).
    """

    default: Any
    help: str = ""
    valid: str = ""
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    log: bool = False
    role: str = "loss"  # "loss": passed to terms; "teacher": configures the teacher; "preset"

    @property
    def tunable(self) -> bool:
        return self.low is not None and self.high is not None

    def check(self, name: str, value: Any) -> Any:
        """Coerce ``value`` to this parameter's type and check its range; return it."""
        if value is None:
            return None
        if self.choices:
            if isinstance(self.choices[0], bool):
                value = _as_bool(name, value)
            if value not in self.choices:
                raise MethodError(
                    f"{name}={value!r} is not valid; choose one of: "
                    + ", ".join(str(c) for c in self.choices))
            return value
        if isinstance(self.default, bool):
            return _as_bool(name, value)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise MethodError(f"{name}={value!r} is not a number") from None
        if isinstance(value, bool) or not math.isfinite(number) and self.valid:
            raise MethodError(f"{name}={value!r} is not valid; it must lie in {self.valid}")
        if self.valid and not _in_interval(number, self.valid):
            raise MethodError(f"{name}={value!r} is not valid; it must lie in {self.valid}")
        return number


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise MethodError(f"{name}={value!r} is not valid; choose one of: true, false")


def _in_interval(x: float, spec: str) -> bool:
    """``spec`` like ``"[0, 1)"`` or ``"(0, inf)"``."""
    spec = spec.strip()
    lo_closed, hi_closed = spec[0] == "[", spec[-1] == "]"
    lo_text, hi_text = (part.strip() for part in spec[1:-1].split(","))
    lo, hi = float(lo_text), float(hi_text)
    above = x >= lo if lo_closed else x > lo
    below = x <= hi if hi_closed else x < hi
    return above and below


Terms = Callable[..., dict]


@dataclass(frozen=True)
class Method:
    """A training objective.

    ``teacher`` is ``"none"``, one teacher source (``"previous-epoch"`` for PS-KD) or ``"param"``
    (the source is the method's own ``teacher`` hyperparameter, as for Tf-KD self and DR-KD).
    ``presets`` maps a ``fidelity`` value to the values it gives the parameters left at ``None``.
    ``diagnostics`` maps the terms that are measurements, not losses, to what they mean (logged as
    ``diag_<name>``, fractions in [0, 1]); every other term is a loss term (``train_<name>``).
    ``batch_plan`` names how batches are drawn (``shuffle``, ``class-paired``, ``overlap``; the
    plans themselves live in the training layer). ``per_epoch(loss_kwargs, epoch, epochs)``
    returns the loss arguments for a 1-based ``epoch`` (PS-KD's ramp of alpha), or None.
    """

    name: str
    terms: Terms
    params: Mapping[str, Param]
    teacher: str = "none"
    paper: str = ""
    summary: str = ""
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    diagnostics: Mapping[str, str] = field(default_factory=dict)
    batch_plan: str = "shuffle"
    per_epoch: Callable[[dict, int, int], dict] | None = None
    source: str = ""  # the official code followed: repository, commit, file
    #: The method's mechanism control: the hyperparameters that switch its distillation term off
    #: while keeping everything else (its batch plan, its forwards): DLB with alpha = 0 is CE over
    #: the overlap batches. A grid asks for it with ``control: true``; empty: no control.
    control: Mapping[str, Any] = field(default_factory=dict)
    control_summary: str = ""
    #: Per-sample events the terms return under ``terms["events"]`` (name -> boolean mask over
    #: the batch's rows, and what it means): under label noise the harness logs, per epoch,
    #: ``diag_<name>_noisy``, the share of the events that fell on noisy-labelled samples (for
    #: DR-KD's ``rectified``: the share of rectifications that wrote a wrong label into the
    #: teacher). Empty: none.
    events: Mapping[str, str] = field(default_factory=dict)
    #: ``needs_features(hp)``: whether the loss takes the student's feature map and head (the
    #: ``features`` and ``head`` keyword arguments: ``forward_features`` and ``forward_head``);
    #: the training step computes them only then. None: never.
    needs_features: Callable[[Mapping[str, Any]], bool] | None = None

    def wants_features(self, hp: Mapping[str, Any]) -> bool:
        return self.needs_features is not None and bool(self.needs_features(hp))

    def loss(self, student_logits: torch.Tensor, targets: torch.Tensor,
             teacher_logits: torch.Tensor | None = None, *, features: torch.Tensor | None = None,
             head: Callable | None = None, **hyperparameters: Any) -> torch.Tensor:
        """The scalar loss; hyperparameters not given take their defaults. A method that needs
        features (:meth:`wants_features`) takes the model's ``forward_features`` output and its
        ``forward_head``."""
        hp = self.resolve(hyperparameters)
        extra = {"features": features, "head": head} if self.wants_features(hp) else {}
        return self.terms(student_logits, targets, teacher_logits, **self.loss_kwargs(hp),
                          **extra)["loss"]

    def resolve(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Validate ``given`` and return every hyperparameter, defaults and preset filled in."""
        given = dict(given or {})
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            raise MethodError(
                f"method {self.name!r} has no hyperparameter {unknown[0]!r}; valid: "
                + (", ".join(self.params) or "(none)"))
        hp = {k: p.check(k, given.get(k, p.default)) for k, p in self.params.items()}
        if "fidelity" in hp:
            for key, value in self.presets[hp["fidelity"]].items():
                if given.get(key) is None:
                    hp[key] = value
        return hp

    def loss_kwargs(self, hp: Mapping[str, Any], epoch: int | None = None,
                    epochs: int | None = None) -> dict[str, Any]:
        """The resolved hyperparameters the loss itself takes (not the teacher's or the preset);
        with ``epoch``/``epochs`` given, as the method schedules them for that epoch."""
        kw = {k: v for k, v in hp.items() if self.params[k].role == "loss"}
        if self.per_epoch is not None and epoch is not None and epochs is not None:
            kw = self.per_epoch(kw, epoch, epochs)
        return kw

    def teacher_kwargs(self, hp: Mapping[str, Any]) -> dict[str, Any]:
        """The resolved settings of the teacher (``ema_decay``), the source itself excluded."""
        return {k: v for k, v in hp.items() if self.params[k].role == "teacher" and k != "teacher"}

    def teacher_source(self, hp: Mapping[str, Any] | None = None) -> str:
        """``"none"`` or the teacher source for these hyperparameters."""
        if self.teacher == "param":
            return self.resolve(hp)["teacher"]
        return self.teacher

    def search_space(self) -> dict[str, Param]:
        return {k: p for k, p in self.params.items() if p.tunable}


_REGISTRY: dict[str, Method] = {}

#: The built-in methods' modules, in listing order. They (and torch) load on the registry's
#: first use, so a command that never trains (``report``, ``plan``, ``schema``) never imports
#: torch; what a plugin registers lists after them.
BUILTINS = ("ce", "lsr", "tfkd", "drkd", "pskd", "cskd", "zipfls", "dlb")
_loaded = False


def _builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True  # first: the modules' own register() calls must not come back here
        for module in BUILTINS:
            importlib.import_module(f"{__package__}.{module}")


def check_param(method: str, key: str, p: Any) -> None:
    """A hyperparameter declaration that the harness can use: a :class:`Param` whose ``valid``
    is an interval like ``"[0, 1)"``, whose search range (``low``, ``high``) is two numbers with
    low < high inside ``valid`` (and low > 0 on a log scale), and whose default lies in
    ``valid``; else one :class:`MethodError` naming the method and the key."""
    where = f"method {method!r}: hyperparameter {key!r}"
    if not isinstance(p, Param):
        raise MethodError(f"{where}: expected a methods.Param, got {type(p).__name__}")
    if p.valid:
        try:
            lo, hi = _bounds(p.valid)
        except (ValueError, IndexError, AttributeError, TypeError):
            raise MethodError(f"{where}: valid={p.valid!r} is not an interval like '[0, 1)' or "
                              "'(0, inf)'") from None
        if not lo <= hi:
            raise MethodError(f"{where}: valid={p.valid!r} is empty (lower bound above upper)")
    if (p.low is None) != (p.high is None):
        raise MethodError(f"{where}: give both low and high for a search range, or neither")
    if p.tunable:
        if any(isinstance(b, bool) or not isinstance(b, (int, float)) or not math.isfinite(b)
               for b in (p.low, p.high)):
            raise MethodError(f"{where}: the search range low={p.low!r}, high={p.high!r} must be "
                              "two finite numbers")
        if not p.low < p.high:
            raise MethodError(f"{where}: the search range has low={p.low!r} >= high={p.high!r}")
        if p.log and p.low <= 0:
            raise MethodError(f"{where}: a log-scale search range must start above 0, got "
                              f"low={p.low!r}")
        if p.valid and not (_in_interval(p.low, p.valid) and _in_interval(p.high, p.valid)):
            raise MethodError(f"{where}: the search range [{p.low}, {p.high}] leaves valid="
                              f"{p.valid!r}")
    if p.default is not None and not p.choices and not isinstance(p.default, (bool, str)):
        try:
            p.check(key, p.default)
        except MethodError as e:
            raise MethodError(f"{where}: its default is not valid ({e})") from None


def _bounds(spec: str) -> tuple[float, float]:
    spec = spec.strip()
    if spec[0] not in "[(" or spec[-1] not in "])" or spec[1:-1].count(",") != 1:
        raise ValueError(spec)
    lo_text, hi_text = (part.strip() for part in spec[1:-1].split(","))
    return float(lo_text), float(hi_text)


def register(method: Method) -> Method:
    _builtins()
    if method.name in _REGISTRY:
        raise MethodError(f"method {method.name!r} is already registered")
    if not isinstance(method.params, Mapping):
        raise MethodError(f"method {method.name!r}: params must be a mapping of name to Param")
    for key, p in method.params.items():
        check_param(method.name, key, p)
    for key in method.control:
        if key not in method.params:
            raise MethodError(f"method {method.name!r}: control sets unknown {key!r}")
    fidelity = method.params.get("fidelity")
    if fidelity is not None and set(method.presets) != set(fidelity.choices):
        raise MethodError(f"method {method.name!r}: presets must cover every fidelity choice")
    _REGISTRY[method.name] = method
    return method


def get(name: str) -> Method:
    _builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise MethodError(f"unknown method {name!r}; choose one of: {', '.join(names())}") from None


def names() -> list[str]:
    _builtins()
    return list(_REGISTRY)

"""The report's statistics settings (a config's ``analysis:`` section) and the names the
tables share."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

CELL = ["dataset", "arch", "variant"]
METHOD_ORDER = ["ce", "lsr", "tfkd-self", "tfkd-reg", "drkd", "ps-kd", "cs-kd", "zipf-ls", "dlb"]

#: The four words a comparison can end in.
VERDICTS = ("better", "worse", "equivalent", "inconclusive")
#: The columns a family of comparisons may be grouped by (``Analysis.family``).
FAMILY_KEYS = ("dataset", "arch", "setting")


@dataclass(frozen=True)
class Analysis:
    """The declared settings of the statistics (a grid config's ``analysis:`` block, or the
    ``report`` flags). ``margin`` is in percentage points of the metric."""

    #: Holm's family: every comparison the report states for a dataset x architecture (the
    #: answer's family); a config may pre-register narrower ones (adding ``setting``).
    family: tuple[str, ...] = ("dataset", "arch")
    margin: float = 0.5
    #: Why the margin is what it is, printed beside it (a config's ``analysis.margin_reason``).
    margin_reason: str = ("drkd-bench's default, not derived from this data: the report gives "
                          "it in units of CE's seed SD per task")
    alpha: float = 0.05
    power: float = 0.8
    bootstrap: int = 2000
    bootstrap_seed: int = 0
    baseline: str = "ce"
    #: The report adds one answer across tasks (analysis/aggregate.py; at least two tasks).
    aggregate: bool = False

    @classmethod
    def from_mapping(cls, values, where: str = "analysis") -> Analysis:
        """Validated settings from a mapping (a config's ``analysis:`` block, or flags);
        ``ValueError`` names the key and what is valid."""
        known = [f.name for f in dataclasses.fields(cls)]
        out = {}
        for key, value in dict(values or {}).items():
            if key not in known:
                raise ValueError(f"{where}: unknown key {key!r}; valid: {', '.join(known)}")
            if value is None:
                continue
            if key == "family":
                parts = value.split(",") if isinstance(value, str) else value
                if not isinstance(parts, (list, tuple)) or not all(isinstance(p, str)
                                                                   for p in parts):
                    raise ValueError(f"{where}.family: expected a list of {', '.join(FAMILY_KEYS)}"
                                     " (or 'all')")
                parts = [p.strip() for p in parts if p.strip() and p.strip() != "all"]
                bad = [p for p in parts if p not in FAMILY_KEYS]
                if bad:
                    raise ValueError(f"{where}.family: {bad[0]!r} is not one of "
                                     f"{', '.join(FAMILY_KEYS)} (or 'all')")
                out[key] = tuple(k for k in FAMILY_KEYS if k in parts)
            elif key in ("baseline", "margin_reason"):
                out[key] = str(value)
            elif key == "aggregate":
                if not isinstance(value, bool):
                    raise ValueError(f"{where}.aggregate: expected true or false, got {value!r}")
                out[key] = value
            else:
                kind = int if key in ("bootstrap", "bootstrap_seed") else float
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
                    kind is float or float(value).is_integer())
                value = kind(value) if ok else value
                limits = {"margin": (0, math.inf), "alpha": (0, 1), "power": (0, 1),
                          "bootstrap": (99, math.inf), "bootstrap_seed": (-1, math.inf)}[key]
                if not ok or not limits[0] < value < limits[1]:
                    valid = {"margin": "a number > 0 (percentage points)",
                             "alpha": "a number in (0, 1)", "power": "a number in (0, 1)",
                             "bootstrap": "an integer >= 100",
                             "bootstrap_seed": "an integer >= 0"}[key]
                    raise ValueError(f"{where}.{key}: expected {valid}, got {value!r}")
                out[key] = value
        return cls(**out)

    def describe(self) -> str:
        fam = " × ".join(self.family) if self.family else "all comparisons"
        return (f"family = {fam} (Holm within each); equivalence margin ±{self.margin:g} points "
                f"(TOST); α = {self.alpha:g}; power {self.power:g} for the MDE")

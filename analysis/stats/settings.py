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
#: The columns a family of comparisons may be split by (``Analysis.family``).
FAMILY_KEYS = ("dataset", "arch", "setting")
#: The columns a declared family may select comparisons by (``Analysis.families``).
MATCH_KEYS = ("dataset", "arch", "setting", "variant", "baseline")


@dataclass(frozen=True)
class Family:
    """A declared family of comparisons: a name and what it holds, as shell-style patterns per
    column (``{"variant": ("drkd-*-tuned",)}``: every comparison whose variant matches one of
    them, and so for each column given); no patterns: every comparison no earlier family took."""

    name: str
    match: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def holds(self, row) -> bool:
        from fnmatch import fnmatchcase

        return all(any(fnmatchcase(str(row[col]), p) for p in pats) for col, pats in self.match)

    def describe(self) -> str:
        if not self.match:
            return f"{self.name}: every other comparison"
        return f"{self.name}: " + ", ".join(f"{c} {' or '.join(p)}" for c, p in self.match)


#: The default families: the headline is every comparison of a tuned variant with a tuned
#: baseline (the report's answer: all tasks, both conditions, every baseline); the field
#: (reference values, controls, compute budgets) is its own family. The fragility check's wider
#: family is always every comparison the report states.
DEFAULT_FAMILIES = (Family("headline", (("setting", ("tuned",)),)), Family("field"))


@dataclass(frozen=True)
class Analysis:
    """The declared settings of the statistics (a grid config's ``analysis:`` block, or the
    ``report`` flags). ``margin`` is in percentage points of the metric."""

    #: Holm's families, declared before the runs (a config's ``analysis.families``): each
    #: comparison belongs to the first family that holds it (:class:`Family`).
    families: tuple[Family, ...] = DEFAULT_FAMILIES
    #: Split every declared family further by these columns (``analysis.family``; default
    #: none: a family spans every task it holds).
    family: tuple[str, ...] = ()
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
            elif key == "families":
                out[key] = _families(value, where)
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
        fam = "; ".join(f.describe() for f in self.families)
        split = f", each split by {' × '.join(self.family)}" if self.family else ""
        return (f"families = {fam}{split} (Holm within each); equivalence margin "
                f"±{self.margin:g} points (TOST); α = {self.alpha:g}; power {self.power:g} for the "
                "MDE")

    def family_label(self, row) -> str:
        """The name of the family ``row`` (a comparison) belongs to, with its split values."""
        name = next((f.name for f in self.families if f.holds(row)), "other")
        if self.family:
            name += " " + "/".join(str(row[k]) for k in self.family)
        return name


def _families(value, where: str) -> tuple[Family, ...]:
    """``{name: {column: pattern or [patterns]} or {} or 'rest'}`` as :class:`Family` objects,
    in the order written; ``ValueError`` names what is wrong."""
    if not isinstance(value, dict) or not value:
        raise ValueError(f"{where}.families: expected a mapping of family names to "
                         f"{{column: [patterns]}} ({', '.join(MATCH_KEYS)}), or {{}} for the rest")
    out = []
    for name, match in value.items():
        if match in (None, "rest"):
            match = {}
        if not isinstance(match, dict):
            raise ValueError(f"{where}.families.{name}: expected {{column: [patterns]}} or {{}}")
        pairs = []
        for col, pats in match.items():
            if col not in MATCH_KEYS:
                raise ValueError(f"{where}.families.{name}: {col!r} is not one of "
                                 f"{', '.join(MATCH_KEYS)}")
            pats = [pats] if isinstance(pats, str) else pats
            if not isinstance(pats, (list, tuple)) or not pats or not all(
                    isinstance(p, str) for p in pats):
                raise ValueError(f"{where}.families.{name}.{col}: expected a pattern or a list "
                                 "of patterns")
            pairs.append((col, tuple(pats)))
        out.append(Family(str(name), tuple(pairs)))
    return tuple(out)

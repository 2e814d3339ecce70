"""``drkd-bench reproduce``: retrain a sample of a published edition's cells in a temporary store
and say, per cell, whether its final metrics are bit-identical to the published ones, and for the
sample whether the edition is reproduced here.

Bit-identity is expected only where the chip's kernels and the numerics libraries are the ones
the edition recorded (torch's CPU capability, the torch, numpy and oneDNN versions): then any
difference is a failure. Elsewhere the sums round differently and a run drifts by a few test
images; the question becomes statistical: are the retrained cells' test top-1 equivalent to the
published ones within the edition's own seed spread (paired TOST on the differences, margin one
seed SD of the drawn cells' variants, printed)?

Each cell is rebuilt from the parameters its run recorded (``param.*`` columns of the edition's
``runs.csv``) and must hash to the recorded ``cell_hash``, so the retrained run is the published
cell and not a look-alike. Cells that need a pretrained self-teacher train it first, as the grid
does. The comparison is exact (the runs.csv holds full-precision ``metrics.json`` values); any
difference is printed with the environment it was measured in.
"""
from __future__ import annotations

import dataclasses
import math
import platform
import random
import tempfile
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pandas as pd

from benchmark import config
from benchmark.config import ConfigError, RunSpec, make_spec
from benchmark.config.spec import HASH_SCHEME

#: The final-epoch values compared (those every run records).
METRICS = ("train_loss", "val_top1", "val_nll", "test_top1", "test_nll", "test_ece")
PACKAGES = ("torch", "numpy", "drkd-bench")
#: The recorded tags that must equal this machine's for bit-identity to be expected.
IDENTITY_KEYS = ("cpu_capability", "version.torch", "version.numpy", "version.onednn")


def _value(text: Any) -> Any:
    """A recorded parameter back into a value (the inverse of ``tracking.param_text``)."""
    if isinstance(text, float) and math.isnan(text):
        return None
    if not isinstance(text, str):  # pandas read it as a number (a column with gaps: a float)
        value = text.item() if hasattr(text, "item") else text
        return int(value) if isinstance(value, float) and value.is_integer() else value
    if text in ("none", ""):
        return None
    if text in ("true", "True", "false", "False"):
        return text.lower() == "true"
    if "," in text:
        return [_value(t) for t in text.split(",")]
    for kind in (int, float):
        try:
            return _value(kind(text))  # "5000.0" (a joined column's text) as 5000.0 is: 5000
        except ValueError:
            pass
    return text


def spec_from_params(params: dict[str, Any]) -> RunSpec:
    """The cell a run recorded, rebuilt from its ``param.*`` values (without the prefix)."""
    get = {k: _value(v) for k, v in params.items()}
    train = {k[len("train."):]: v for k, v in get.items() if k.startswith("train.")}
    if train.get("milestones") is None:
        train["milestones"] = []
    elif not isinstance(train["milestones"], list):
        train["milestones"] = [train["milestones"]]
    data = {k[len("data."):]: v for k, v in get.items()
            if k.startswith("data.") and k != "data.name"}
    if data.get("augment") is not None:
        raise ConfigError("a cell with a custom augment setting cannot be rebuilt from its "
                          "recorded parameters")
    for key in [k for k, v in data.items() if v is None and k != "train_subset"]:
        data.pop(key)
    if data.get("split") in ("per-seed", "k-fold"):  # recorded: the seed's own draw
        seed = int(get["seed"])  # (DataSettings.for_seed), which make_spec applies again
        if data["split"] == "per-seed":  # back to the base seeds
            data["split_seed"] = int(data.get("split_seed") or 0) - seed
        else:  # k-fold: the seed picks its fold again
            data.pop("fold", None)
        if data.get("noise", "none") != "none":
            data["noise_seed"] = int(data.get("noise_seed") or 0) - seed
    hp = {k[len("hp."):]: v for k, v in get.items() if k.startswith("hp.") and v is not None}
    spec = make_spec(get["dataset"], get["arch"], get["method"], int(get["seed"]), hp, train,
                     str(get["variant"]), **data)
    teacher = {k[len("teacher_train."):]: v for k, v in get.items()
               if k.startswith("teacher_train.")}
    if any(v is not None for v in teacher.values()):
        teacher["milestones"] = teacher.get("milestones") or []
        if not isinstance(teacher["milestones"], list):
            teacher["milestones"] = [teacher["milestones"]]
        spec = dataclasses.replace(spec, teacher_train=config.build(
            config.TrainSettings, teacher, "teacher_train"))
    return spec


@dataclass
class Cell:
    key: str
    spec: RunSpec
    published: dict[str, float]
    threads: int | None = None  # the CPU threads its run recorded (None: not recorded)
    problem: str | None = None  # why this code cannot rebuild it (None: it can)
    #: the memory format its run trained in (runs before the tag: contiguous on the CPU, which
    #: is all the CPU ever used then; channels_last on CUDA)
    memory_format: str = "contiguous"


def published_cells(frame: pd.DataFrame) -> list[Cell]:
    """Every finished training run of an exported runs frame; a run whose recorded parameters
    do not rebuild to its own hash carries the reason in ``problem`` (it cannot be retrained,
    but it does not stop the others: an edition made before a method changed keeps its other
    cells checkable)."""
    runs = frame[(frame["kind"] == "train") & (frame["status"] == "FINISHED")]
    out = []
    for _, g in runs.groupby("run_id", sort=False):
        g = g.sort_values("epoch")
        first, last = g.iloc[0], g.iloc[-1]
        params = {c[len("param."):]: first[c] for c in g.columns if c.startswith("param.")}
        problem = spec = None
        try:
            spec = spec_from_params(params)
        except (ConfigError, KeyError, ValueError) as e:
            problem = (f"{first['cell_key']}: cannot rebuild the cell from its recorded "
                       f"parameters ({e})")
        if spec is not None and spec.hash != first["cell_hash"]:
            scheme = first.get("tag.hash_scheme")
            scheme = int(scheme) if pd.notna(scheme) else 1  # untagged runs: scheme 1
            problem = (f"{first['cell_key']}: its recorded parameters hash to {spec.hash}, not "
                       f"to the recorded {first['cell_hash']}"
                       + (f" (hashed under scheme {scheme}, this code's is {HASH_SCHEME})"
                          if scheme != HASH_SCHEME else
                          " (same hash scheme: the method or its parameters changed since)"))
        threads = first.get("tag.threads")
        fmt = first.get("tag.memory_format")
        if not isinstance(fmt, str) or not fmt:
            fmt = "channels_last" if str(first.get("tag.device", "")).startswith("cuda") \
                else "contiguous"
        out.append(Cell(str(first["cell_key"]), spec,
                        {m: float(last[m]) for m in METRICS if m in g and pd.notna(last[m])},
                        int(threads) if pd.notna(threads) else None, problem, fmt))
    return sorted(out, key=lambda c: c.key)


def choose(cells: list[Cell], keys: list[str], count: int, seed: int) -> list[Cell]:
    """The cells named by ``keys``, or a seeded random sample of ``count``."""
    if keys:
        by_key = {c.key: c for c in cells}
        missing = [k for k in keys if k not in by_key]
        if missing:
            raise ConfigError(f"--cell {missing[0]!r} is not a finished cell of this edition; "
                              f"e.g. {', '.join(sorted(by_key)[:3])}")
        for k in keys:
            if by_key[k].problem:
                raise ConfigError(by_key[k].problem)
        return [by_key[k] for k in keys]
    cells = [c for c in cells if not c.problem]  # the draw is among the cells that rebuild
    return sorted(random.Random(seed).sample(cells, min(count, len(cells))), key=lambda c: c.key)


def _now() -> dict[str, str]:
    from benchmark.store.provenance import chip

    now = {f"version.{p}": _version(p) for p in PACKAGES}
    now.update({"python": platform.python_version(), "device": "cpu", **chip()})
    return now


def _recorded(frame: pd.DataFrame, key: str) -> list[str] | None:
    """The values the edition recorded for tag ``key`` (None: it has no such column)."""
    column = f"tag.{key}"
    return sorted(set(frame[column].dropna().astype(str))) if column in frame else None


def expectation(frame: pd.DataFrame) -> tuple[bool, str]:
    """(bit-identity expected here?, why): expected only where the edition recorded the chip's
    CPU capability and the numerics libraries' versions, and they are this machine's."""
    now, why = _now(), []
    for key in IDENTITY_KEYS:
        was = _recorded(frame, key)
        if not was:
            why.append(f"{key} not recorded by the edition")
        elif was != [now[key]]:
            why.append(f"{key} now {now[key]}, recorded {', '.join(was)}")
    if why:
        return False, "bit-identity not expected (" + "; ".join(why) + ")"
    return True, ("bit-identity expected (the recorded CPU capability and numerics "
                  f"versions: {', '.join(f'{k} {now[k]}' for k in IDENTITY_KEYS)})")


def seed_sd(frame: pd.DataFrame, cell: Cell, metric: str = "test_top1") -> float:
    """The SD over seeds (points) of ``metric`` among the edition's finished runs of ``cell``'s
    task and variant: the spread a new seed would show."""
    runs = frame[(frame["kind"] == "train") & (frame["status"] == "FINISHED")]
    last = runs.sort_values("epoch").groupby("run_id").tail(1)
    task, arch, variant = cell.key.split("/")[:3]
    values = last[(last["dataset"] == task) & (last["arch"] == arch)
                  & (last["variant"] == variant)][metric].dropna()
    return float(100 * values.std(ddof=1)) if len(values) > 1 else float("nan")


def statistical_verdict(diffs: list[float], margin: float, alpha: float = 0.05
                        ) -> tuple[str, float]:
    """(verdict, TOST p) of retrained − published differences (points) against ±``margin``:
    ``identical`` (every difference 0), ``equivalent`` (TOST p < alpha), else ``not shown``."""
    import numpy as np
    from statsmodels.stats.weightstats import ttost_paired

    d = np.asarray(diffs, float)
    if len(d) and not d.any():
        return "identical", 0.0
    if len(d) < 2 or not margin > 0:
        return "not shown", float("nan")
    if np.ptp(d) == 0:  # every cell moved by the same amount: the t-test has no spread
        return ("equivalent" if abs(d[0]) < margin else "not shown"), float("nan")
    p = float(ttost_paired(d, np.zeros_like(d), -margin, margin)[0])
    return ("equivalent" if p < alpha else "not shown"), p


def sample_verdict(frame: pd.DataFrame, results: list[tuple[Cell, dict[str, float]]]
                   ) -> tuple[str, list[str]]:
    """The drawn cells' verdict where bit-identity is not expected, and the lines that say it:
    their test top-1 differences (retrained − published, points) against ±(the median seed SD
    of their variants)."""
    diffs = [100 * (new["test_top1"] - c.published["test_top1"]) for c, new in results
             if "test_top1" in new and "test_top1" in c.published]
    sds = sorted(s for c, _ in results if (s := seed_sd(frame, c)) == s)
    margin = sds[len(sds) // 2] if sds else float("nan")
    verdict, p = statistical_verdict(diffs, margin)
    mean = sum(diffs) / len(diffs) if diffs else float("nan")
    lines = [f"statistical verdict: {verdict}: retrained − published test top-1 {mean:+.2f} "
             f"points on average over {len(diffs)} cells; TOST within ±{margin:.2f} points "
             f"(the median seed SD of their variants in the edition), p {p:.3g}"]
    if verdict not in ("identical", "equivalent"):
        lines.append("not reproduced: the differences are not shown to lie within the "
                     "edition's seed spread" + (" (one cell: no test)" if len(diffs) < 2 else ""))
    return verdict, lines


def environment(frame: pd.DataFrame) -> list[str]:
    """What differs between the environment the edition recorded and this one (version tags,
    device, Python, the chip), or that the edition recorded none."""
    lines = []
    for key, value in _now().items():
        was = _recorded(frame, key)
        if was is None:
            lines.append(f"{key}: now {value}, not recorded by the edition")
        elif was != [value]:
            lines.append(f"{key}: now {value}, recorded {', '.join(was)}")
    return lines


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def run(frame: pd.DataFrame, keys: list[str], count: int, seed: int, data_root: str | None,
        say=print) -> list[tuple[Cell, dict[str, float]]]:
    """Retrain the chosen cells (and their teachers) in a temporary store, with the CPU threads
    the cells recorded (one when they recorded none: the grid's default per worker) and each in
    the memory format its run recorded, and return each cell with its new final metrics."""
    from analysis import load
    from benchmark.jobs import grid
    from benchmark.store.runtime import Runtime

    cells = published_cells(frame)
    chosen = choose(cells, keys, count, seed)
    stale = [c for c in cells if c.problem]
    if stale and not keys:
        say(f"{len(stale)} cell(s) left out of the draw: this code does not rebuild them "
            f"({stale[0].problem})")
    groups: dict[str, dict[str, RunSpec]] = {}  # memory format -> the cells trained in it
    for c in chosen:
        specs = groups.setdefault(c.memory_format, {})
        teacher = c.spec.teacher_spec()
        if teacher is not None:
            specs.setdefault(teacher.hash, teacher)
        specs.setdefault(c.spec.hash, c.spec)
    from benchmark.jobs.runner import check_data

    # a missing dataset: one line, before anything else
    check_data([s for specs in groups.values() for s in specs.values()], data_root)
    recorded = {c.threads for c in chosen} - {None}
    threads = max(recorded) if recorded else 1
    with tempfile.TemporaryDirectory(prefix="drkd-reproduce-") as tmp:
        for fmt, specs in sorted(groups.items()):
            rt = Runtime(results=tmp, data_root=data_root, device="cpu", threads=threads,
                         memory_format=fmt)
            rt.apply()
            tracker = rt.tracker()
            cells = sum(c.memory_format == fmt for c in chosen)
            say(f"retraining {cells} cells ({len(specs) - cells} teachers first) in {tmp}, on "
                f"the CPU with {threads} thread(s), {fmt} as recorded"
                + ("" if recorded else " (the cells recorded no thread count)"))
            grid.run(list(specs.values()), tracker, rt, workers=1, quiet=True)
        epochs = load.epochs_from_tracking(tracker.uri)
    runs = load.runs_from_epochs(epochs[(epochs["kind"] == "train")
                                        & (epochs["status"] == "FINISHED")])
    by_hash = {row["cell_hash"]: row for _, row in runs.iterrows()}
    out = []
    for c in chosen:
        row = by_hash.get(c.spec.hash)
        new = {} if row is None else {m: float(row[f"final_{m}"]) for m in c.published
                                      if f"final_{m}" in row}
        out.append((c, new))
    return out


def verdict_line(cell: Cell, new: dict[str, float], test_images: int | None = None
                 ) -> tuple[bool, str]:
    """(identical?, one line): bit-identical, or each differing metric with its difference
    (test top-1 also in points and, given the test set's size, in test images)."""
    if not new:
        return False, f"{cell.key}: did not finish"
    diffs = [(m, new[m] - v) for m, v in cell.published.items() if new.get(m) != v]
    if not diffs:
        return True, (f"{cell.key}: identical ({len(cell.published)} final metrics bit for bit; "
                      f"test top-1 {100 * cell.published['test_top1']:.2f}%)")
    text = ", ".join(f"{m} {d:+.3g}" for m, d in diffs)
    top1 = dict(diffs).get("test_top1")
    if top1 is not None:
        text += f" (test top-1 {100 * top1:+.2f} points"
        text += f", {round(top1 * test_images):+d} test images)" if test_images else ")"
    return False, f"{cell.key}: differs: {text}"


def test_images(cell: Cell, data_root: str | None) -> int | None:
    """The size of the cell's test split (None when its data cannot be read here)."""
    from benchmark import data

    try:
        return len(data.get_spec(cell.spec.data.name).load(data_root)[3])
    except Exception:  # noqa: BLE001 - only a detail of the printed line
        return None

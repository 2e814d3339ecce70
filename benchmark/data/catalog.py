"""The dataset registry: a dataset's spec (loader, classes, statistics, augmentation,
default architecture), the batch augmentation's settings, and where datasets are looked for.

Every loader reads the dataset's real on-disk format; a missing file raises :class:`DataError`
with one line saying where the harness looked and how to get the data.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydantic

from benchmark.errors import DataError  # noqa: F401  (raised here; its home is errors)

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # train x, y, test x, y (NCHW)


@pydantic.dataclasses.dataclass(frozen=True, config=pydantic.ConfigDict(
    extra="forbid", allow_inf_nan=False))  # not strict itself: a mapping in a config is one
class Augment:
    """Batch augmentation: random crop with zero padding, horizontal flip, rotation in degrees."""

    crop_padding: int = pydantic.Field(0, ge=0, strict=True, description="random crop after "
                                       "zero padding by this many pixels (0: none)")
    flip: bool = pydantic.Field(False, strict=True, description="random horizontal flip")
    rotation: float = pydantic.Field(0.0, ge=0, strict=True, description="random rotation up "
                                     "to this many degrees")


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    load: Callable[[Path | None], Arrays]
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: Augment
    default_arch: str
    source: str


_DATASETS: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    if spec.name in _DATASETS:
        raise DataError(f"dataset {spec.name!r} is already registered")
    _DATASETS[spec.name] = spec
    return spec


def get_spec(name: str) -> DatasetSpec:
    try:
        return _DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(names())}") from None


def names() -> list[str]:
    return list(_DATASETS)


def data_roots(root: str | Path | None) -> list[Path]:
    """Where datasets are looked for: the given root, ``$DRKD_DATA``, then the user cache."""
    roots = [Path(root).expanduser()] if root else []
    if os.environ.get("DRKD_DATA"):
        roots.append(Path(os.environ["DRKD_DATA"]).expanduser())
    roots.append(Path.home() / ".cache" / "drkd-bench" / "data")
    return roots


def _missing(name: str, looked: list[Path], how: str) -> DataError:
    places = ", ".join(str(p) for p in looked)
    return DataError(f"{name}: files not found (looked in {places}); {how}")

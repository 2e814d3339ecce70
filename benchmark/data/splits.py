"""A dataset held whole in memory as uint8 tensors, with a stratified validation split
carved from the training set (and label noise applied where asked)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from benchmark.data.catalog import Augment, DataError, get_spec
from benchmark.data.noise import Noise


def stratified_indices(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of a stratified sample holding ``round(fraction * n_c)`` of each class."""
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        take = int(round(fraction * len(idx)))
        chosen.append(rng.permutation(idx)[:take])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)


def stratified_folds(labels: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """``k`` disjoint folds covering every index, stratified: each class's indices, shuffled
    by ``seed``, dealt into ``k`` nearly equal parts (sizes differ by at most one per class);
    each fold's indices sorted."""
    rng = np.random.default_rng(seed)
    folds: list[list[np.ndarray]] = [[] for _ in range(k)]
    for c in np.unique(labels):
        for i, part in enumerate(np.array_split(rng.permutation(np.flatnonzero(labels == c)), k)):
            folds[i].append(part)
    return [np.sort(np.concatenate(f)).astype(np.int64) for f in folds]


def check_split(name: str, labels: np.ndarray, val_fraction: float) -> None:
    """Every class keeps at least one validation and one training image, else one line naming
    the class and the smallest fraction that works."""
    classes, counts = np.unique(labels, return_counts=True)
    for c, n in zip(classes, counts):
        take = int(round(val_fraction * n))
        if take < 1 or take >= n:
            side = "no validation image" if take < 1 else "no training image"
            low, high = 0.5 / n, 1 - 0.5 / n
            raise DataError(f"{name}: val_fraction {val_fraction:g} leaves class {c} ({n} "
                            f"training images) with {side}; use a value in "
                            f"[{low:.3g}, {high:.3g}] or a larger train_subset")


@dataclass
class TensorData:
    """A dataset on one device: uint8 images (N, C, H, W) and int64 labels per split."""

    name: str
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: Augment
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor | None = field(repr=False)  # None for tuning: no test split at all
    test_y: torch.Tensor | None = field(repr=False)
    #: Which training / validation labels label noise changed (None: clean labels).
    train_noisy: torch.Tensor | None = field(default=None, repr=False)
    val_noisy: torch.Tensor | None = field(default=None, repr=False)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

    def to(self, device: torch.device | str) -> TensorData:
        moved = {k: None if getattr(self, k) is None else getattr(self, k).to(device) for k in
                 ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y", "train_noisy",
                  "val_noisy")}
        return TensorData(self.name, self.num_classes, self.mean, self.std, self.augment, **moved)


def _arrays(spec, root: str | Path | None):
    """The dataset's four arrays from its loader (a plugin's as well as a shipped one), or one
    line naming the dataset and what its loader did instead."""
    try:
        arrays = spec.load(Path(root) if root else None)
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - a plugin's loader: any failure is one line
        raise DataError(f"dataset {spec.name!r}: its loader failed: {type(e).__name__}: "
                        f"{str(e).strip().splitlines()[0] if str(e).strip() else ''}") from None
    want = "(x_train, y_train, x_test, y_test)"
    if not isinstance(arrays, (tuple, list)):
        raise DataError(f"dataset {spec.name!r}: its loader returned "
                        f"{type(arrays).__name__ if arrays is not None else 'None'}, not {want}")
    if len(arrays) != 4 or not all(isinstance(a, np.ndarray) for a in arrays):
        raise DataError(f"dataset {spec.name!r}: its loader returned a {type(arrays).__name__} "
                        f"of {len(arrays)}, not {want} as numpy arrays")
    return arrays


def load(name: str, root: str | Path | None = None, val_fraction: float = 0.1,
         split_seed: int = 0, train_subset: int | None = None,
         augment: Augment | None = None, noise: Noise | None = None, folds: int = 0,
         fold: int = 0) -> TensorData:
    """Load ``name`` whole; carve a stratified validation split (``split_seed``) from the
    training set, after an optional stratified training subset of ``train_subset`` images
    (with ``folds``: the validation split is fold ``fold`` of ``folds`` stratified folds of the
    training set, drawn with ``split_seed``: k-fold cross-validation). The
    split is drawn on the clean labels, so a noisy condition trains on the very images of the
    clean one; then ``noise`` corrupts the training and the validation labels (never the test
    labels)."""
    spec = get_spec(name)
    tx, ty, sx, sy = _arrays(spec, root)
    if train_subset and train_subset > len(ty):
        raise DataError(f"train_subset {train_subset} is more than {name}' {len(ty)} training "
                        "images")
    if train_subset and train_subset < len(ty):
        keep = stratified_indices(ty, train_subset / len(ty), seed=split_seed + 1)
        tx, ty = tx[keep], ty[keep]
    if folds:
        if not 0 <= fold < folds:
            raise DataError(f"fold {fold} of {folds}: give 0 to {folds - 1}")
        check_split(name, ty, 1 / folds)
        val = stratified_folds(ty, folds, split_seed)[fold]
    else:
        check_split(name, ty, val_fraction)
        val = stratified_indices(ty, val_fraction, seed=split_seed)
    train = np.setdiff1d(np.arange(len(ty)), val)
    train_y, val_y = ty[train], ty[val]
    train_noisy = val_noisy = None
    if noise is not None and noise.kind != "none":
        train_y, val_y = noise.apply(train_y, val_y, spec.num_classes)
        train_noisy, val_noisy = (torch.from_numpy(train_y != ty[train]),
                                  torch.from_numpy(val_y != ty[val]))
    as_t = torch.from_numpy
    return TensorData(spec.name, spec.num_classes, spec.mean, spec.std, augment or spec.augment,
                      as_t(np.ascontiguousarray(tx[train])), as_t(train_y),
                      as_t(np.ascontiguousarray(tx[val])), as_t(val_y),
                      as_t(np.ascontiguousarray(sx)), as_t(sy), train_noisy, val_noisy)

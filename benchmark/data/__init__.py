"""Datasets: the registry (``catalog``), the shipped loaders (``builtin``), your own data
(``own``), splits and tensors (``splits``), label noise (``noise``), the batch pipeline
(``pipeline``) and batch plans (``plans``). The names below are the package's public faces.
"""

from .builtin import (
    DEBIAN_FASHION,
    FASHION_FILES,
    load_cifar10,
    load_cifar100,
    load_digits,
    load_fashion_mnist,
    load_tiny_imagenet,
    read_idx,
)
from .catalog import Arrays, Augment, DataError, DatasetSpec, data_roots, get_spec, names, register
from .noise import NOISE_DIAGNOSTICS, NOISE_KINDS, Noise
from .own import (
    IMAGE_SUFFIXES,
    MAX_CLASSES,
    USER_KINDS,
    channel_stats,
    content_digest,
    load_folder,
    load_npz,
    user_dataset,
)
from .pipeline import Pipeline, augment
from .splits import TensorData, check_split, load, stratified_folds, stratified_indices

__all__ = [
    "Arrays",
    "Augment",
    "DEBIAN_FASHION",
    "DataError",
    "DatasetSpec",
    "FASHION_FILES",
    "IMAGE_SUFFIXES",
    "MAX_CLASSES",
    "NOISE_DIAGNOSTICS",
    "NOISE_KINDS",
    "Noise",
    "Pipeline",
    "TensorData",
    "USER_KINDS",
    "augment",
    "channel_stats",
    "check_split",
    "content_digest",
    "data_roots",
    "get_spec",
    "load",
    "load_cifar10",
    "load_cifar100",
    "load_digits",
    "load_fashion_mnist",
    "load_folder",
    "load_npz",
    "load_tiny_imagenet",
    "names",
    "read_idx",
    "register",
    "stratified_folds",
    "stratified_indices",
    "user_dataset",
]

"""Architectures: a registry of CIFAR-style students, small CNNs for the embedded datasets, and
any timm model as ``timm:<name>``. Every builder takes ``(in_channels, num_classes, image_size)``.

Every model speaks timm's feature interface: ``forward_features(x)`` is the last feature map
before pooling (N, C, H, W; a perceptron's hidden layer, N x C), ``forward_head(features,
pre_logits=False)`` pools it and applies the classifier, and ``forward`` is exactly their
composition. A method that needs features (Zipf's LS, dense recipe) gets them from there.
"""
from __future__ import annotations

import fnmatch
from collections.abc import Callable

import torch.nn as nn

from benchmark.errors import ModelError  # noqa: F401  (raised here; its home is errors)

Builder = Callable[[int, int, int], nn.Module]
_MODELS: dict[str, tuple[Builder, str]] = {}


def register(name: str, about: str) -> Callable[[Builder], Builder]:
    def wrap(fn: Builder) -> Builder:
        if name in _MODELS:
            raise ModelError(f"architecture {name!r} is already registered")
        _MODELS[name] = (fn, about)
        return fn
    return wrap


def names(pattern: str = "*") -> list[str]:
    return [n for n in _MODELS if fnmatch.fnmatch(n, pattern)]


def describe(name: str) -> str:
    return _MODELS[name][1]


def check(name: str) -> None:
    """Raise :class:`ModelError` naming the valid choices when ``name`` is not buildable."""
    if name.startswith("timm:"):
        import timm

        if not timm.list_models(name[5:]):
            raise ModelError(f"unknown timm model {name[5:]!r} (see timm.list_models())")
        return
    if name not in _MODELS:
        raise ModelError(f"unknown architecture {name!r}; choose one of: {', '.join(_MODELS)}, "
                         "or timm:<name>")


def build(name: str, in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    check(name)
    if name.startswith("timm:"):
        import timm

        return timm.create_model(name[5:], pretrained=False, num_classes=num_classes,
                                 in_chans=in_channels)
    return _MODELS[name][0](in_channels, num_classes, image_size)

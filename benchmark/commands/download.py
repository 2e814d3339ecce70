"""``drkd-bench download``: fetch a dataset with torchvision (needs internet)."""
from __future__ import annotations

import argparse

from benchmark.commands.common import UsageError


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("download", help="fetch a dataset with torchvision (needs internet)")
    p.add_argument("dataset", help="fashion-mnist, cifar10 or cifar100")
    p.add_argument("--data-root", required=True)
    return p


def run(args) -> int:
    import torchvision

    cls = {"fashion-mnist": torchvision.datasets.FashionMNIST,
           "cifar10": torchvision.datasets.CIFAR10,
           "cifar100": torchvision.datasets.CIFAR100}.get(args.dataset)
    if cls is None:
        raise UsageError(f"download: {args.dataset!r} is not downloadable here; choose one of: "
                         "fashion-mnist, cifar10, cifar100")
    for train in (True, False):
        cls(args.data_root, train=train, download=True)
    return 0

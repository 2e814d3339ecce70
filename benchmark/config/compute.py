"""Compute as an axis: what a variant forwards, and the epochs at which a baseline matches it.

A training run's compute is counted as the harness logs it (``cost_student_images`` +
``cost_teacher_images``): every image the student forwards, with or without gradient (DLB's
repeated half, CS-KD's partners), plus every image a separate teacher model forwards (a
pretrained or EMA teacher). A grid's ``compute:`` section re-runs its baseline at other epoch
budgets: an epoch ``ladder`` (multiples of the baseline's epochs) and, with ``match: images``,
the epochs at which the baseline forwards as many images as each variant does. The count comes
from the variant's own batch plan and teacher source, simulated batch by batch with the same
counting function the training loop uses, so a new plan or source needs nothing here.
"""
from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import torch

import methods
from benchmark.data import plans
from benchmark.models import teachers

MATCHES = ("images",)

#: The simulated training set: ``REFERENCE_STEPS`` steps of ``REFERENCE_BATCH`` per epoch (the
#: ratio of two plans' images does not depend on the set's size beyond DLB's first step).
REFERENCE_BATCH = 8
REFERENCE_STEPS = 64


def forwarded(batch: plans.Batch, extra_forward: bool) -> tuple[int, int]:
    """(images through the student, images through a separate teacher model) for one step:
    what the training loop adds to ``cost_student_images`` and ``cost_teacher_images``."""
    student = len(batch.idx) + (0 if batch.paired is None else len(batch.paired))
    return student, (batch.teacher_rows if extra_forward else 0)


def run_images(method: str, hyperparameters: Mapping[str, Any] | None, n: int, batch: int,
               epochs: int, classes: int = 10) -> int:
    """Images a run of ``epochs`` forwards (student and teacher) on ``n`` training images in
    batches of ``batch``, counted step by step over the method's own batch plan."""
    m = methods.get(method)
    extra = teachers.extra_forward(m.teacher_source(hyperparameters or {}))
    return _plan_images(m.batch_plan, extra, n, batch, epochs, classes)


@cache
def _plan_images(plan_name: str, extra: bool, n: int, batch: int, epochs: int,
                 classes: int) -> int:
    labels = torch.arange(n) % classes
    plan = plans.make(plan_name, labels, min(batch, n), torch.Generator().manual_seed(0))
    total = 0
    for _ in range(epochs):
        for b in plan.epoch():
            total += sum(forwarded(b, extra))
    return total


def cost_factor(method: str, hyperparameters: Mapping[str, Any] | None,
                baseline: str = "ce", baseline_hyperparameters: Mapping[str, Any] | None = None
                ) -> float:
    """Images per epoch of ``method`` relative to ``baseline``'s (CE: 1; DLB, CS-KD, a
    pretrained or EMA teacher: 2), on the reference training set, over a long run."""
    n, epochs = REFERENCE_BATCH * REFERENCE_STEPS, 4
    mine = run_images(method, hyperparameters, n, REFERENCE_BATCH, epochs)
    theirs = run_images(baseline, baseline_hyperparameters, n, REFERENCE_BATCH, epochs)
    return round(mine / theirs, 2)


def matched_epochs(epochs: int, factor: float) -> int:
    """The baseline's epochs that forward ``factor`` times the images of ``epochs`` of it."""
    return max(1, round(epochs * factor))


def label(baseline: str, factor: float) -> str:
    """The label of the baseline re-run at ``factor`` times its epochs: ``ce@2x``."""
    return f"{baseline}@{factor:g}x"

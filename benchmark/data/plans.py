"""Batch plans: how a method's batches are drawn from the training set, seeded like the rest and
resumable. Methods name their plan (``Method.batch_plan``); the training loop only iterates it.

An epoch means the same for every plan: one random permutation of the training set, cut into
``N // B`` steps of ``B`` new samples (the last incomplete batch is dropped and reshuffled next
epoch), so every plan takes the same number of optimisation steps and presents each training
sample once as new per epoch. What differs is what else a step forwards:

- ``shuffle``: the ``B`` new samples only.
- ``class-paired`` (CS-KD): plus one partner per sample, drawn uniformly among the training
  samples of its class (itself included), forwarded without gradient.
- ``overlap`` (DLB): the previous step's ``B`` new samples come first, again (freshly
  augmented), then the ``B`` new ones; half of batch ``b + 1`` is batch ``b``'s second half, across
  epoch boundaries too. The very first step has no previous half.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass
class Batch:
    """One step's indices into the training set. ``idx`` rows are trained (with gradient);
    ``paired`` (one per row of ``idx``) are forwarded without gradient; the teacher covers the
    first ``taught`` rows of ``idx`` (None: all)."""

    idx: torch.Tensor
    paired: torch.Tensor | None = None
    taught: int | None = None
    separate: bool = False  # forward the taught rows and the rest in two calls (DLB's code)

    @property
    def teacher_rows(self) -> int:
        return len(self.idx) if self.taught is None else self.taught


class Shuffle:
    """The default: a fresh permutation per epoch, ``B`` samples a step."""

    def __init__(self, labels: torch.Tensor, batch: int, generator: torch.Generator):
        self.labels, self.batch, self.generator = labels, batch, generator
        self.n = len(labels)

    @property
    def steps(self) -> int:
        return self.n // self.batch

    def _order(self) -> torch.Tensor:
        return torch.randperm(self.n, device=self.labels.device, generator=self.generator)

    def epoch(self) -> Iterator[Batch]:
        perm = self._order()
        for b in range(self.steps):
            yield Batch(perm[b * self.batch:(b + 1) * self.batch])

    def forwarded_per_step(self) -> int:
        """Images through the student per step (with or without gradient)."""
        return self.batch

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class ClassPaired(Shuffle):
    """CS-KD's ``PairBatchSampler``: the shuffled anchors and, per anchor, a partner of its class
    drawn uniformly (with replacement, itself included)."""

    def __init__(self, labels: torch.Tensor, batch: int, generator: torch.Generator):
        super().__init__(labels, batch, generator)
        self.by_class = torch.argsort(labels, stable=True)  # indices grouped by class
        counts = torch.bincount(labels)
        self.counts = counts
        self.starts = torch.cumsum(counts, 0) - counts

    def partners(self, anchors: torch.Tensor) -> torch.Tensor:
        y = self.labels[anchors]
        u = torch.rand(len(anchors), device=anchors.device, generator=self.generator)
        offset = (u * self.counts[y]).long().clamp_max(self.counts[y] - 1)
        return self.by_class[self.starts[y] + offset]

    def epoch(self) -> Iterator[Batch]:
        perm = self._order()
        partners = self.partners(perm)  # drawn up front: one draw per epoch, resumable
        for b in range(self.steps):
            sl = slice(b * self.batch, (b + 1) * self.batch)
            yield Batch(perm[sl], paired=partners[sl])

    def forwarded_per_step(self) -> int:
        return 2 * self.batch


class Overlap(Shuffle):
    """DLB: each step repeats the previous step's new samples first, then ``B`` new ones."""

    def __init__(self, labels: torch.Tensor, batch: int, generator: torch.Generator):
        super().__init__(labels, batch, generator)
        self.previous: torch.Tensor | None = None

    def epoch(self) -> Iterator[Batch]:
        perm = self._order()
        for b in range(self.steps):
            new = perm[b * self.batch:(b + 1) * self.batch]
            prev = self.previous
            self.previous = new
            if prev is None:
                yield Batch(new, taught=0)
            else:
                yield Batch(torch.cat([prev, new]), taught=len(prev), separate=True)

    def forwarded_per_step(self) -> int:
        return 2 * self.batch

    def state_dict(self) -> dict:
        return {} if self.previous is None else {"previous": self.previous.cpu()}

    def load_state_dict(self, state: dict) -> None:
        if "previous" in state:
            self.previous = state["previous"].to(self.labels.device)


PLANS = {"shuffle": Shuffle, "class-paired": ClassPaired, "overlap": Overlap}


def make(name: str, labels: torch.Tensor, batch: int, generator: torch.Generator) -> Shuffle:
    try:
        return PLANS[name](labels, batch, generator)
    except KeyError:
        raise ValueError(f"unknown batch plan {name!r}; choose one of: "
                         + ", ".join(PLANS)) from None

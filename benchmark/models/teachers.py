"""Teacher sources: where a method's teacher logits come from.

The training step hands a teacher a :class:`StepView` (the augmented batch, the samples' indices in
the training set, the student's detached logits, the epoch and the step) and nothing else. A
teacher returns logits for the view's first ``rows`` rows (``logits``), may update itself after
the optimiser step (``after_step``), and keeps its state in ``state_dict`` so that a resumed run
continues exactly. Sources register themselves in :data:`SOURCES`; adding one touches nothing
else. The losses never see a model.

| source | what the teacher is | extra forward per image | extra memory |
|---|---|---|---|
| pretrained | frozen CE-trained copy of the student (eval mode) | 1 | a model |
| online | the student's own detached logits of this forward | 0 | none |
| previous-epoch | each sample's logits from its previous training forward | 0 | N x K floats |
| previous-batch | the same memory; under DLB's overlap plan, the last step | 0 | N x K floats |
| ema | exponential moving average of the student's weights (eval mode) | 1 | a model |
| partner | the student, no gradient, on the batch plan's paired images | (plan's) | none |
"""
from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from benchmark import models


@dataclass
class StepView:
    """What a teacher may see of one training step."""

    images: torch.Tensor  # the augmented, normalised batch the student was trained on
    indices: torch.Tensor  # those samples' indices in the training set
    student_logits: torch.Tensor  # detached, float
    epoch: int  # 1-based
    step: int  # 0-based count of optimisation steps before this one
    rows: int  # the teacher covers the first ``rows`` rows
    paired_images: torch.Tensor | None = None  # the batch plan's partners (CS-KD)


@dataclass
class TeacherContext:
    """What a source may use to build itself."""

    student: nn.Module
    labels: torch.Tensor  # training labels, on the training device
    num_classes: int
    pretrained: nn.Module | None = None
    settings: dict | None = None  # the method's teacher settings (``ema_decay``)


class Teacher:
    """The interface; the defaults describe a teacher with no state and no extra forward."""

    extra_forward = False  # one forward of another model per taught image

    def logits(self, view: StepView) -> torch.Tensor | None:
        raise NotImplementedError

    def measured(self, view: StepView, logits: torch.Tensor) -> torch.Tensor | None:
        """Which rows of ``logits`` (what :meth:`logits` gave for ``view``) are a prediction of
        the teacher's own (None: all); the diagnostics leave the others out."""
        return None

    def after_step(self, view: StepView) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def state_bytes(self) -> int:
        return 0


def _model_bytes(model: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])


class PretrainedTeacher(Teacher):
    """A frozen CE-trained copy of the student's architecture, in eval mode, run under inference
    mode on the student's (augmented) batch."""

    extra_forward = True

    def __init__(self, model: nn.Module):
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def logits(self, view: StepView) -> torch.Tensor:
        with torch.inference_mode():
            out = self.model(view.images[:view.rows])
        return out.clone()  # a normal tensor: autograd may save it for the student's backward

    def state_bytes(self) -> int:
        return _model_bytes(self.model)


class OnlineTeacher(Teacher):
    """The student's own logits for the same batch, detached: a zero-cost dynamic teacher."""

    def logits(self, view: StepView) -> torch.Tensor:
        return view.student_logits[:view.rows]


def last_occurrence(indices: torch.Tensor) -> torch.Tensor:
    """Positions of ``indices`` that are the last occurrence of their value, in order. An index
    write with repeated indices is undefined on CUDA (the last write wins on the CPU only by
    implementation); writing only these positions makes "the last occurrence wins" hold by
    construction on every device (a sample can sit in both halves of a DLB batch at an epoch
    boundary)."""
    n = len(indices)
    order = torch.argsort(indices, stable=True)  # equal values keep their order: last is last
    ordered = indices[order]
    last = torch.ones(n, dtype=torch.bool, device=indices.device)
    last[:-1] = ordered[:-1] != ordered[1:]
    return torch.sort(order[last]).values


class MemoryTeacher(Teacher):
    """Each sample's logits from its most recent training forward pass: an (N, K) float32 memory
    on the training device, read by sample index before the step and written from the student's
    logits after it. No extra forward. Under the default plan each sample is drawn once per
    epoch, so the memory holds the previous epoch's logits (PS-KD's teacher); under DLB's overlap
    plan the repeated half was last forwarded one step earlier.

    Before a sample's first forward (all of epoch 1) the memory holds its label: logit 0 at the
    label and -inf elsewhere, whose softmax at any temperature is the one-hot label (PS-KD's
    official code initialises its memory with one-hot targets the same way)."""

    def __init__(self, labels: torch.Tensor, num_classes: int):
        self.memory = torch.full((len(labels), num_classes), float("-inf"), device=labels.device)
        self.memory.scatter_(1, labels.view(-1, 1), 0.0)

    def logits(self, view: StepView) -> torch.Tensor:
        return self.memory[view.indices[:view.rows]]

    def measured(self, view: StepView, logits: torch.Tensor) -> torch.Tensor:
        """A row is a prediction once its sample was forwarded (a label row holds -inf)."""
        return torch.isfinite(logits).all(1)

    def after_step(self, view: StepView) -> None:
        keep = last_occurrence(view.indices)
        self.memory[view.indices[keep]] = view.student_logits[keep]

    def state_dict(self) -> dict:
        return {"memory": self.memory.cpu()}

    def load_state_dict(self, state: dict) -> None:
        self.memory.copy_(state["memory"])

    def state_bytes(self) -> int:
        return self.memory.numel() * self.memory.element_size()


class EMATeacher(Teacher):
    """An exponential moving average of the student's weights and floating-point buffers
    (integer buffers are copied), updated after every optimisation step with the decay
    ``d_t = min(decay, 1 - 1/(t + 1))`` for the ``t``-th update (0-based; Mean Teacher's warm-up,
    so the first update copies the student). Run in eval mode under inference mode on the same
    augmented batch: one extra forward, no pre-training."""

    extra_forward = True

    def __init__(self, student: nn.Module, decay: float):
        self.student, self.decay = student, decay
        self.model = copy.deepcopy(student).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def logits(self, view: StepView) -> torch.Tensor:
        with torch.inference_mode():
            out = self.model(view.images[:view.rows])
        return out.clone()

    @torch.no_grad()
    def after_step(self, view: StepView) -> None:
        d = min(self.decay, 1.0 - 1.0 / (view.step + 1))
        mine = [*self.model.parameters()]
        theirs = [*self.student.parameters()]
        for b_mine, b_theirs in zip(self.model.buffers(), self.student.buffers()):
            if b_mine.is_floating_point():
                mine.append(b_mine)
                theirs.append(b_theirs)
            else:
                b_mine.copy_(b_theirs)
        torch._foreach_lerp_(mine, theirs, 1.0 - d)

    def state_dict(self) -> dict:
        return {"ema": {k: v.cpu() for k, v in self.model.state_dict().items()}}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["ema"])

    def state_bytes(self) -> int:
        return _model_bytes(self.model)


class PartnerTeacher(Teacher):
    """CS-KD's teacher: the student itself, without gradient and in training mode (as the
    official code), on the batch plan's paired images (one same-class partner per row). Those
    forwards are the student's (the plan counts them), not another model's."""

    def __init__(self, student: nn.Module):
        self.student = student

    def logits(self, view: StepView) -> torch.Tensor:
        if view.paired_images is None:
            raise ValueError("the partner teacher needs the class-paired batch plan")
        with torch.no_grad():
            return self.student(view.paired_images[:view.rows])


def _pretrained(ctx: TeacherContext) -> Teacher:
    if ctx.pretrained is None:
        raise ValueError("a pretrained teacher needs its CE checkpoint")
    return PretrainedTeacher(ctx.pretrained)


#: Teacher source name -> builder. A new source is one entry here and a class above.
SOURCES: dict[str, Callable[[TeacherContext], Teacher]] = {
    "pretrained": _pretrained,
    "online": lambda ctx: OnlineTeacher(),
    "previous-epoch": lambda ctx: MemoryTeacher(ctx.labels, ctx.num_classes),
    "previous-batch": lambda ctx: MemoryTeacher(ctx.labels, ctx.num_classes),
    "ema": lambda ctx: EMATeacher(ctx.student, float((ctx.settings or {}).get("ema_decay", 0.99))),
    "partner": lambda ctx: PartnerTeacher(ctx.student),
}

#: Sources that need a finished CE cell (the grid trains it first).
NEEDS_CE_CHECKPOINT = frozenset({"pretrained"})


def extra_forward(source: str) -> bool:
    """Whether ``source``'s teacher forwards another model once per taught image (read from the
    teacher a source builds, on a one-parameter stand-in student: no special cases here)."""
    if source == "none":
        return False
    stand_in = nn.Linear(1, 2)
    ctx = TeacherContext(stand_in, torch.zeros(1, dtype=torch.long), 2, copy.deepcopy(stand_in))
    return bool(make(source, ctx).extra_forward)


def make(source: str, ctx: TeacherContext) -> Teacher | None:
    """The teacher for a source; ``none`` gives None."""
    if source == "none":
        return None
    try:
        build = SOURCES[source]
    except KeyError:
        raise ValueError(f"unknown teacher source {source!r}; choose one of: none, "
                         + ", ".join(SOURCES)) from None
    return build(ctx)


#: What every source's per-epoch diagnostics mean (tagged on each run for the report).
DIAGNOSTICS = {
    "teacher_top1": "the teacher's top-1 accuracy on the augmented training batches",
    "teacher_agreement": "share of training samples where teacher and student agree on top-1",
}


def diagnostics(teacher_logits: torch.Tensor, student_logits: torch.Tensor,
                targets: torch.Tensor, real: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
    """Every source's per-batch measurements, as (count, rows) pairs summed over an epoch, on
    the rows the teacher covers with a prediction of its own (``real``; all when None): its top-1
    accuracy on the augmented training batch and its agreement (same top-1 class) with the
    student. A teacher that holds only labels so far (a memory before a sample's first forward)
    measures nothing: an epoch without a measured row has no value (it was 100%). No host
    sync."""
    top = teacher_logits.argmax(1)
    real = torch.ones_like(top, dtype=torch.bool) if real is None else real
    n = real.sum()
    return {"teacher_top1": torch.stack([((top == targets) & real).sum(), n]),
            "teacher_agreement": torch.stack([((top == student_logits.argmax(1)) & real).sum(),
                                              n])}


def save_model(model: nn.Module, path: Path) -> None:
    """The weights as a CPU state dict, the format :func:`load_model` reads, written atomically
    (a reader in another process never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, tmp)
    os.replace(tmp, path)


def load_model(path: Path, arch: str, in_channels: int, num_classes: int, image_size: int,
               device: torch.device | str) -> nn.Module:
    """Build ``arch`` and load a state dict saved by the harness (``weights_only=True``)."""
    model = models.build(arch, in_channels, num_classes, image_size)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.to(device)

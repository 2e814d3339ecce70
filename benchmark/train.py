"""One training run: a plain loop over epochs. No tracking code: the caller passes ``on_epoch``.

Per epoch the loop accumulates every loss term and diagnostic the method returns on the device and
reads them once, evaluates on the validation and test splits, writes an atomic checkpoint (model,
optimiser, scheduler, RNG states, history) and calls ``on_epoch(row)``. A run whose checkpoint
exists continues from it and ends with the same metrics as an uninterrupted run.
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

import methods

from . import models, teachers
from .config import RunSpec, TrainSettings
from .data import Pipeline, TensorData
from .metrics import classification_metrics

CHECKPOINT = "last.pt"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class RunResult:
    history: list[dict] = field(default_factory=list)
    model: nn.Module | None = None
    resumed_from: int = 0

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}


def lr_factor(step: int, settings: TrainSettings, steps_per_epoch: int) -> float:
    """Linear warm-up over ``warmup_epochs`` then cosine, multi-step (``milestones`` in epochs,
    factor ``gamma``) or constant; evaluated per optimisation step."""
    warm = settings.warmup_epochs * steps_per_epoch
    if warm and step < warm:
        return (step + 1) / warm
    epoch = step / steps_per_epoch
    if settings.schedule == "multistep":
        return settings.gamma ** sum(epoch >= m for m in settings.milestones)
    if settings.schedule == "cosine":
        total = settings.epochs * steps_per_epoch
        progress = (step - warm) / max(1.0, total - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return 1.0


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def checkpoint_epochs(workdir: Path, spec: RunSpec) -> int:
    """Epochs held by the resume checkpoint of ``spec`` in ``workdir`` (0 if none)."""
    path = workdir / CHECKPOINT
    if not path.is_file():
        return 0
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return len(state["history"]) if state.get("hash") == spec.hash else 0


def save_atomic(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


@torch.inference_mode()
def predict(model: nn.Module, x: torch.Tensor, pipeline: Pipeline, batch: int = 1024,
            amp: bool = False) -> torch.Tensor:
    model.eval()
    outs = []
    for i in range(0, len(x), batch):
        with torch.autocast(x.device.type, torch.bfloat16, enabled=amp):
            outs.append(model(pipeline.normalize(x[i:i + batch])).float())
    return torch.cat(outs)


class Step:
    """One optimisation step of the harness: augment the uint8 batch on its device, forward
    (bf16 autocast when ``amp``), teacher logits, the method's terms, backward, SGD, scheduler.
    Returns the detached terms and the logits; nothing here synchronises with the host."""

    def __init__(self, model: nn.Module, method: methods.Method, loss_kwargs: dict, teacher,
                 optimizer: torch.optim.Optimizer, scheduler, pipeline: Pipeline,
                 generator: torch.Generator, amp: bool):
        self.model, self.terms, self.loss_kwargs = model, method.terms, loss_kwargs
        self.teacher, self.optimizer, self.scheduler = teacher, optimizer, scheduler
        self.pipeline, self.generator, self.amp = pipeline, generator, amp

    def __call__(self, images: torch.Tensor, targets: torch.Tensor) -> tuple[dict, torch.Tensor]:
        x = self.pipeline.train(images, self.generator)
        with torch.autocast(x.device.type, torch.bfloat16, enabled=self.amp):
            logits = self.model(x)
        logits = logits.float()
        teacher_logits = self.teacher(x, logits) if self.teacher else None
        terms = self.terms(logits, targets, teacher_logits, **self.loss_kwargs)
        self.optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return {k: v.detach() for k, v in terms.items()}, logits.detach()


def train_epoch(step: Step, images: torch.Tensor, targets: torch.Tensor, perm: torch.Tensor,
                batch: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Every full batch of ``perm``; returns per-term sums and the correct count, on device."""
    step.model.train()
    sums: dict[str, torch.Tensor] = {}
    correct = torch.zeros((), device=images.device, dtype=torch.long)
    for b in range(len(perm) // batch):
        idx = perm[b * batch:(b + 1) * batch]
        y = targets[idx]
        terms, logits = step(images[idx], y)
        for k, v in terms.items():
            sums[k] = sums[k] + v if k in sums else v.clone()
        correct += (logits.argmax(1) == y).sum()
    return sums, correct


def train(spec: RunSpec, data: TensorData, workdir: Path | None = None, *,
          teacher_model: nn.Module | None = None, device: str | None = None,
          on_epoch: Callable[[dict], None] | None = None, amp: bool | None = None,
          channels_last: bool | None = None, stop_after: int | None = None) -> RunResult:
    """Train ``spec`` on ``data`` (already on ``device``). ``workdir`` holds the checkpoint;
    ``stop_after`` ends the call after that many epochs of this call (for tests of resuming).
    ``amp``/``channels_last`` default to on for CUDA, off on the CPU. When ``data.test_x`` is None
    no test metrics are computed (tuning)."""
    dev = resolve_device(device)
    amp = dev.type == "cuda" if amp is None else amp
    channels_last = dev.type == "cuda" if channels_last is None else channels_last
    s = spec.train
    method = methods.get(spec.method)
    hp = method.resolve(spec.hyperparameters)
    loss_kwargs = method.loss_kwargs(hp)
    teacher = teachers.make(method.teacher_source(hp), teacher_model)

    torch.manual_seed(spec.seed)
    c, h, _ = data.image_shape
    model = models.build(spec.arch, c, data.num_classes, h).to(dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    n = len(data.train_y)
    batch = min(s.batch_size, n)
    steps = n // batch  # the last incomplete batch is dropped (reshuffled every epoch)
    optimizer = torch.optim.SGD(model.parameters(), lr=s.effective_lr, momentum=s.momentum,
                                weight_decay=s.weight_decay, nesterov=s.nesterov)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, s, steps))
    generator = torch.Generator(dev).manual_seed(spec.seed)
    pipeline = Pipeline(data, channels_last=channels_last)
    result = RunResult()

    ckpt_path = None
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        ckpt_path = workdir / CHECKPOINT
    if ckpt_path and ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        if state["hash"] == spec.hash:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            generator.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            result.history = list(state["history"])
            result.resumed_from = len(result.history)

    step = Step(model, method, loss_kwargs, teacher, optimizer, scheduler, pipeline, generator, amp)
    done_here = 0
    for epoch in range(len(result.history), s.epochs):
        if stop_after is not None and done_here >= stop_after:
            break
        started = time.perf_counter()
        perm = torch.randperm(n, device=dev, generator=generator)
        sums, correct = train_epoch(step, data.train_x, data.train_y, perm, batch)
        row = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"]}
        values = torch.stack([*sums.values(), correct.float()]).tolist()  # one sync per epoch
        for k, v in zip(sums, values):
            row[_train_key(k)] = v / steps
        row["train_acc"] = values[-1] / (steps * batch)
        if not math.isfinite(row["train_loss"]):
            raise TrainingDiverged(f"loss is {row['train_loss']} at epoch {epoch + 1}")
        row.update(classification_metrics(predict(model, data.val_x, pipeline, amp=amp),
                                          data.val_y, "val"))
        if data.test_x is not None:
            row.update(classification_metrics(predict(model, data.test_x, pipeline, amp=amp),
                                              data.test_y, "test"))
        row["epoch_seconds"] = time.perf_counter() - started
        result.history.append(row)
        done_here += 1
        if ckpt_path:
            save_atomic({"hash": spec.hash, "model": model.state_dict(),
                         "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                         "generator": generator.get_state(), "torch_rng": torch.get_rng_state(),
                         "history": result.history}, ckpt_path)
        if on_epoch:
            on_epoch(row)
    result.model = model
    return result


def _train_key(term: str) -> str:
    return {"loss": "train_loss", "rectified": "rectification_rate",
            "teacher_acc": "teacher_train_acc"}.get(term, f"train_{term}")

"""One training run, in readable pieces. No tracking code: the caller passes ``on_epoch``.

- :func:`build` makes everything a run holds (model, optimiser, schedule, RNG, batch plan,
  teacher) from a spec;
- :class:`Step` is one optimisation step: augment, forward, teacher, the method's terms,
  backward, SGD, the teacher's update;
- :func:`train_epoch` runs a plan's epoch of steps and accumulates every term on the device;
- :func:`evaluate` gives the validation and test metrics;
- :class:`Checkpoint` holds the whole resume state (the run's and its teacher's and plan's) in one
  atomic file;
- :func:`train` ties them together; a run whose checkpoint exists continues from it and ends with
  the same metrics as an uninterrupted run.

Per epoch the row holds ``train_loss`` and ``train_<term>`` for every loss term the method
returns, ``diag_<name>`` for every diagnostic (the method's own and the teacher's), ``train_acc``,
the validation and test metrics, and the costs: ``cost_train_seconds`` (training phase only),
``cost_student_images`` and ``cost_teacher_images`` (images forwarded by the student, with or
without gradient, and by a separate teacher model) and ``cost_teacher_state_mb``.
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
from benchmark import models
from benchmark.config import RunSpec, TrainSettings, compute
from benchmark.data import Pipeline, TensorData, plans
from benchmark.models import teachers
from benchmark.models.metrics import classification_metrics, packed_correct

CHECKPOINT = "last.pt"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class RunResult:
    history: list[dict] = field(default_factory=list)
    model: nn.Module | None = None
    resumed_from: int = 0
    #: the finished model's per-test-image correctness (:func:`packed_correct`), and how many
    #: test images; empty when the run did not finish or the data has no test split
    test_correct: str = ""
    test_images: int = 0

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


def device_name(dev: torch.device) -> str:
    """``cpu`` or ``cuda:0 (NVIDIA H100 ...)``: tagged on every run."""
    if dev.type == "cuda":
        return f"{dev} ({torch.cuda.get_device_name(dev)})"
    return str(dev)


def save_atomic(obj: dict, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
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


def evaluate(model: nn.Module, data: TensorData, pipeline: Pipeline, amp: bool,
             test: bool = True) -> tuple[dict, torch.Tensor | None]:
    """Validation metrics, and test metrics when ``test`` and the data has a test split (not
    when tuning); and the test logits they were computed from (None when not tested)."""
    row = classification_metrics(predict(model, data.val_x, pipeline, amp=amp), data.val_y, "val")
    logits = None
    if test and data.test_x is not None:
        logits = predict(model, data.test_x, pipeline, amp=amp)
        row.update(classification_metrics(logits, data.test_y, "test"))
    return row, logits


class Step:
    """One optimisation step of the harness: augment the uint8 batch on its device, forward
    (bf16 autocast when ``amp``), teacher logits, the method's terms, backward, SGD, scheduler,
    the teacher's update. Returns the detached terms, the diagnostics, the student's logits and
    the targets; nothing here synchronises with the host."""

    def __init__(self, model: nn.Module, method: methods.Method, hp: dict,
                 teacher: teachers.Teacher | None, optimizer: torch.optim.Optimizer, scheduler,
                 pipeline: Pipeline, generator: torch.Generator, amp: bool, epochs: int = 1,
                 compile: bool = False):
        self.model, self.method, self.hp, self.teacher = model, method, hp, teacher
        # the training forward, compiled when asked (the module itself stays eager: its state
        # dict, evaluation and teachers see the plain model)
        self.forward = torch.compile(model) if compile else model
        self.optimizer, self.scheduler = optimizer, scheduler
        self.pipeline, self.generator, self.amp, self.epochs = pipeline, generator, amp, epochs
        self.count = 0  # optimisation steps done
        self.features = method.wants_features(hp)  # the loss takes the feature map and head
        self.set_epoch(1)

    def set_epoch(self, epoch: int) -> None:
        """The 1-based epoch the next steps belong to (a method may schedule its arguments)."""
        self.epoch = epoch
        self.loss_kwargs = self.method.loss_kwargs(self.hp, epoch, self.epochs)

    def _forward(self, x: torch.Tensor, batch: plans.Batch) -> torch.Tensor:
        with torch.autocast(x.device.type, torch.bfloat16, enabled=self.amp):
            t = batch.teacher_rows
            if batch.separate and 0 < t < len(x):  # two calls, the new rows first (DLB's code)
                new = self.forward(x[t:])
                return torch.cat([self.forward(x[:t]), new]).float()
            return self.forward(x).float()

    def __call__(self, images: torch.Tensor, targets: torch.Tensor, batch: plans.Batch):
        x = self.pipeline.train(images[batch.idx], self.generator)
        y = targets[batch.idx]
        paired = (None if batch.paired is None
                  else self.pipeline.train(images[batch.paired], self.generator))
        extra = {}
        if self.features:
            with torch.autocast(x.device.type, torch.bfloat16, enabled=self.amp):
                features = self.model.forward_features(x)
                logits = self.model.forward_head(features).float()
            extra = {"features": features.detach(), "head": self.model.forward_head}
        else:
            logits = self._forward(x, batch)
        rows = batch.teacher_rows
        view = teachers.StepView(x, batch.idx, logits.detach(), self.epoch, self.count, rows,
                                 paired)
        teacher_logits = None
        if self.teacher is not None:
            with torch.autocast(x.device.type, torch.bfloat16, enabled=self.amp):
                teacher_logits = self.teacher.logits(view)
            teacher_logits = teacher_logits.float()
        terms = self.method.terms(logits, y, teacher_logits, **self.loss_kwargs, **extra)
        events = terms.pop("events", {})
        self.optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        diag = {}
        if self.teacher is not None:
            real = self.teacher.measured(view, teacher_logits) if rows else None
            self.teacher.after_step(view)
            if rows:
                diag = teachers.diagnostics(teacher_logits, view.student_logits[:rows], y[:rows],
                                            real)
        self.count += 1
        events = {k: v.detach() for k, v in events.items()}
        return {k: v.detach() for k, v in terms.items()}, diag, view.student_logits, y, events


def noise_counts(logits: torch.Tensor, y: torch.Tensor, noisy: torch.Tensor,
                 events: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per batch, as (numerator, denominator) pairs of ``diag_<name>`` under label noise:
    ``memorised`` (noisy-labelled samples predicted as their given label / noisy-labelled
    samples) and, for each per-sample event a method declares, ``<event>_noisy`` (events on
    noisy-labelled samples / events). ``noisy`` is aligned with ``y``; an event's mask covers
    the first rows of the batch (the rows its teacher saw)."""
    out = {"memorised": torch.stack([((logits.argmax(1) == y) & noisy).sum(), noisy.sum()])}
    for name, mask in events.items():
        mask = mask.bool()
        out[f"{name}_noisy"] = torch.stack([(mask & noisy[:len(mask)]).sum(), mask.sum()])
    return out


def train_epoch(step: Step, images: torch.Tensor, targets: torch.Tensor,
                plan: plans.Shuffle, noisy: torch.Tensor | None = None) -> dict[str, float]:
    """One epoch of ``plan``: per-term means (``train_<term>``, ``diag_<name>``), ``train_acc``
    and the images forwarded, read from the device once. With ``noisy`` (which training labels
    label noise changed) also the noise diagnostics of :func:`noise_counts`, as ratios over the
    epoch's samples (NaN when the epoch had none to count)."""
    step.model.train()
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    ratios: dict[str, torch.Tensor] = {}
    correct = torch.zeros((), device=images.device, dtype=torch.long)
    trained = student_images = teacher_images = 0
    diagnostics = set(step.method.diagnostics)
    for batch in plan.epoch():
        terms, diag, logits, y, events = step(images, targets, batch)
        named = {("diag_" if k in diagnostics else "train_") + k: v for k, v in terms.items()}
        for k, v in diag.items():  # the teacher's (count, rows): absent where it measured none
            ratios[f"diag_{k}"] = ratios[f"diag_{k}"] + v if f"diag_{k}" in ratios else v
        for k, v in named.items():
            sums[k] = sums[k] + v if k in sums else v.clone()
            counts[k] = counts.get(k, 0) + 1
        if noisy is not None:
            for k, v in noise_counts(logits, y, noisy[batch.idx], events).items():
                ratios[f"diag_{k}"] = ratios[f"diag_{k}"] + v if f"diag_{k}" in ratios else v
        correct += (logits.argmax(1) == y).sum()
        trained += len(y)
        s_images, t_images = compute.forwarded(
            batch, step.teacher is not None and step.teacher.extra_forward)
        student_images += s_images
        teacher_images += t_images
    pairs = [v.float() for v in ratios.values()]
    values = torch.cat([torch.stack([*sums.values(), correct.float()]).flatten(),
                        *pairs]).tolist() if pairs else \
        torch.stack([*sums.values(), correct.float()]).tolist()  # one sync per epoch
    row = {k: v / counts[k] for k, v in zip(sums, values)}
    tail = values[len(sums) + 1:]
    for i, k in enumerate(ratios):
        hit, total = tail[2 * i], tail[2 * i + 1]
        if total or k.removeprefix("diag_") not in teachers.DIAGNOSTICS:
            row[k] = hit / total if total else float("nan")
    row["train_acc"] = values[-1] / max(1, trained)
    row["cost_student_images"] = float(student_images)
    row["cost_teacher_images"] = float(teacher_images)
    return row


@dataclass
class Run:
    """Everything a training run holds between steps."""

    spec: RunSpec
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    generator: torch.Generator
    plan: plans.Shuffle
    teacher: teachers.Teacher | None
    pipeline: Pipeline
    step: Step


def build(spec: RunSpec, data: TensorData, dev: torch.device, teacher_model: nn.Module | None,
          amp: bool, channels_last: bool) -> Run:
    s = spec.train
    method = methods.get(spec.method)
    hp = method.resolve(spec.hyperparameters)
    torch.manual_seed(spec.seed)
    c, h, _ = data.image_shape
    model = models.build(spec.arch, c, data.num_classes, h).to(dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    batch = min(s.batch_size, len(data.train_y))
    generator = torch.Generator(dev).manual_seed(spec.seed)
    plan = plans.make(method.batch_plan, data.train_y, batch, generator)
    optimizer = torch.optim.SGD(model.parameters(), lr=s.effective_lr, momentum=s.momentum,
                                weight_decay=s.weight_decay, nesterov=s.nesterov)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, s, plan.steps))
    ctx = teachers.TeacherContext(model, data.train_y, data.num_classes, teacher_model,
                                  method.teacher_kwargs(hp))
    teacher = teachers.make(method.teacher_source(hp), ctx)
    pipeline = Pipeline(data, channels_last=channels_last)
    step = Step(model, method, hp, teacher, optimizer, scheduler, pipeline, generator, amp,
                s.epochs, s.compile)
    return Run(spec, model, optimizer, scheduler, generator, plan, teacher, pipeline, step)


class Checkpoint:
    """The resume state of one run in ``workdir/last.pt``, written atomically after every epoch:
    model, optimiser, schedule, RNG states, the step count, the batch plan's and the teacher's
    state (memory, EMA weights) and the history. A file of another spec (hash) is ignored."""

    def __init__(self, workdir: Path | None, spec_hash: str):
        self.path = None if workdir is None else workdir / CHECKPOINT
        self.hash = spec_hash

    def _load(self, mmap: bool = False) -> dict | None:
        if self.path is None or not self.path.is_file():
            return None
        state = torch.load(self.path, map_location="cpu", weights_only=True, mmap=mmap)
        return state if state.get("hash") == self.hash else None

    def epochs(self) -> int:
        state = self._load(mmap=True)
        return 0 if state is None else len(state["history"])

    def restore(self, run: Run) -> list[dict]:
        """Load the saved state into ``run``; returns the history (empty when none)."""
        state = self._load()
        if state is None:
            return []
        run.model.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
        run.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        run.step.count = state["steps"]
        run.plan.load_state_dict(state["plan"])
        if run.teacher is not None:
            run.teacher.load_state_dict(state["teacher"])
        return list(state["history"])

    def save(self, run: Run, history: list[dict]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        save_atomic({"hash": self.hash, "model": run.model.state_dict(),
                     "optimizer": run.optimizer.state_dict(),
                     "scheduler": run.scheduler.state_dict(),
                     "generator": run.generator.get_state(), "torch_rng": torch.get_rng_state(),
                     "steps": run.step.count, "plan": run.plan.state_dict(),
                     "teacher": run.teacher.state_dict() if run.teacher is not None else {},
                     "history": history}, self.path)


def quarantine_checkpoint(workdir: Path) -> tuple[Path, str] | None:
    """When ``workdir/last.pt`` cannot be read (a truncated or foreign file), move it aside to
    ``<workdir>.last.pt.corrupt-<time>`` beside the work folder (which a finished cell removes)
    so that the cell restarts from scratch; returns (new path, why) or None when the file is
    readable or absent."""
    path = workdir / CHECKPOINT
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        if not isinstance(state, dict) or "history" not in state:
            raise ValueError("not a drkd-bench checkpoint")
        return None
    except Exception as e:  # noqa: BLE001 - pickle, zip and torch errors alike: set it aside
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        target = workdir.parent / (f"{workdir.name}.{CHECKPOINT}.corrupt-"
                                   f"{time.strftime('%Y%m%d-%H%M%S')}")
        path.replace(target)
        return target, why


def checkpoint_epochs(workdir: Path, spec: RunSpec) -> int:
    """Epochs held by the resume checkpoint of ``spec`` in ``workdir`` (0 if none)."""
    return Checkpoint(workdir, spec.hash).epochs()


def memory_format(arch: str, data: TensorData, device: str | None = None) -> str:
    """The memory format ``arch`` trains in: channels_last on CUDA; on the CPU what this chip's
    calibration (``drkd-bench speed --calibrate``) measured faster for it at the data's shape,
    contiguous where the chip was never calibrated. It changes the last bits of a result, not
    what a run is: runs record it (tag ``memory_format``), ``reproduce`` rebuilds with it."""
    if resolve_device(device).type == "cuda":
        return "channels_last"
    from benchmark.store import calibration

    c, h, _ = data.image_shape
    return calibration.memory_format(c, h, arch)


def train(spec: RunSpec, data: TensorData, workdir: Path | None = None, *,
          teacher_model: nn.Module | None = None, device: str | None = None,
          on_epoch: Callable[[dict], None] | None = None,
          on_saved: Callable[[list[dict]], None] | None = None, checkpoint_seconds: float = 0.0,
          channels_last: bool | None = None, stop_after: int | None = None) -> RunResult:
    """Train ``spec`` on ``data`` (already on ``device``). ``workdir`` holds the checkpoint,
    written after an epoch once ``checkpoint_seconds`` have passed since the last one (0: every
    epoch), always after the last epoch of the call; ``on_saved(history)`` follows each write, so
    a caller that records epochs there never records one the checkpoint does not hold. A crash
    loses at most ``checkpoint_seconds`` of training. ``stop_after`` ends the call after that
    many epochs of this call (for tests of resuming).
    Numerics follow ``spec.train.precision`` (``bf16``: bfloat16 autocast for the forward passes,
    on any device; ``fp32``: none), part of the cell hash, as is ``spec.train.compile``
    (``torch.compile`` of the training forward; fused kernels change the last bits);
    ``channels_last`` (a memory layout) defaults to :func:`memory_format`'s choice. When
    ``data.test_x`` is None no test metrics are computed (tuning); otherwise after every
    ``spec.train.test_every``-th epoch and the last (evaluation changes no weight, statistic or
    random stream)."""
    dev = resolve_device(device)
    amp = spec.train.precision == "bf16"
    if channels_last is None:
        channels_last = memory_format(spec.arch, data, device) == "channels_last"
    run = build(spec, data, dev, teacher_model, amp, channels_last)
    checkpoint = Checkpoint(workdir, spec.hash)
    result = RunResult(history=checkpoint.restore(run))
    result.resumed_from = len(result.history)
    state_mb = (run.teacher.state_bytes() if run.teacher is not None else 0) / 2 ** 20
    last = spec.train.epochs if stop_after is None else min(
        spec.train.epochs, result.resumed_from + stop_after)
    saved_at = time.perf_counter()
    for epoch in range(len(result.history) + 1, last + 1):
        started = time.perf_counter()
        run.step.set_epoch(epoch)
        row = {"epoch": epoch, "lr": run.optimizer.param_groups[0]["lr"]}
        row.update(train_epoch(run.step, data.train_x, data.train_y, run.plan,
                               data.train_noisy))
        if not math.isfinite(row["train_loss"]):
            raise TrainingDiverged(f"loss is {row['train_loss']} at epoch {epoch}")
        row["cost_train_seconds"] = time.perf_counter() - started
        row["cost_teacher_state_mb"] = state_mb
        tested = epoch % spec.train.test_every == 0 or epoch == spec.train.epochs
        metrics, test_logits = evaluate(run.model, data, run.pipeline, amp, test=tested)
        row.update(metrics)
        if epoch == spec.train.epochs and test_logits is not None:  # the finished model's
            result.test_correct = packed_correct(test_logits, data.test_y)
            result.test_images = len(data.test_y)
        row["epoch_seconds"] = time.perf_counter() - started
        result.history.append(row)
        if on_epoch:
            on_epoch(row)
        if epoch == last or time.perf_counter() - saved_at >= checkpoint_seconds:
            checkpoint.save(run, result.history)
            saved_at = time.perf_counter()
            if on_saved:
                on_saved(result.history)
    result.model = run.model
    if not result.test_correct and len(result.history) == spec.train.epochs \
            and data.test_x is not None:  # resumed from a checkpoint of the finished model
        logits = predict(run.model, data.test_x, run.pipeline, amp=amp)
        result.test_correct = packed_correct(logits, data.test_y)
        result.test_images = len(data.test_y)
    return result

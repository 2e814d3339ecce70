"""One cell, tracked: find or train its self-teacher, load its data, train with resuming, log.

Shared by ``train``, ``grid`` and ``tune``; the training loop itself stays free of tracking code.
"""
from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from . import data, teachers, train
from .config import DataSettings, RunSpec
from .tracking import Tracker


class CellFailed(RuntimeError):
    """A cell's training raised or diverged; its run is marked FAILED with the reason."""


@dataclass
class CellOutcome:
    spec: RunSpec
    run_id: str
    final: dict
    skipped: bool = False


@lru_cache(maxsize=4)
def load_data(settings: DataSettings, root: str | None) -> data.TensorData:
    return data.load(settings.name, root, settings.val_fraction, settings.split_seed,
                     settings.train_subset, settings.augment)


def run_cell(spec: RunSpec, tracker: Tracker, *, data_root: str | None = None,
             device: str | None = None, train_teacher: bool = True,
             on_epoch: Callable[[RunSpec, dict], None] | None = None,
             extra_tags: dict[str, str] | None = None,
             stop_after: int | None = None) -> CellOutcome:
    """Train ``spec`` unless a finished run of it exists. A missing self-teacher is trained
    first as its own CE cell when ``train_teacher`` (else :class:`CellFailed`)."""
    done = tracker.finished(spec.hash)
    if done is not None:
        return CellOutcome(spec, done.info.run_id, dict(done.data.metrics), skipped=True)
    dev = train.resolve_device(device)
    workdir = tracker.results / "checkpoints" / spec.hash
    teacher_model = None
    tspec = spec.teacher_spec()
    dataset = load_data(spec.data, data_root).to(dev)
    tags = dict(extra_tags or {})
    if tspec is not None:
        found = tracker.teacher_checkpoint(tspec.hash, workdir / "teacher")
        if found is None:
            if not train_teacher:
                raise CellFailed(f"{spec.key}: its self-teacher {tspec.key} has not finished")
            run_cell(tspec, tracker, data_root=data_root, device=device, on_epoch=on_epoch,
                     extra_tags=extra_tags)
            found = tracker.teacher_checkpoint(tspec.hash, workdir / "teacher")
        tags["teacher_run_id"], path = found
        c, h, _ = dataset.image_shape
        teacher_model = teachers.load_model(path, spec.arch, c, dataset.num_classes, h, dev)
    workdir.mkdir(parents=True, exist_ok=True)
    run_id, already_logged = tracker.start(spec, tags,
                                           checkpoint_epochs=train.checkpoint_epochs(workdir, spec))
    logged = [already_logged]  # the last epoch whose metrics are in the store

    def log(row: dict) -> None:
        if row["epoch"] > logged[0]:
            tracker.log_epoch(run_id, row)
            logged[0] = row["epoch"]
        if on_epoch:
            on_epoch(spec, row)

    try:
        result = train.train(spec, dataset, workdir, teacher_model=teacher_model, device=device,
                             on_epoch=log, stop_after=stop_after)
    except KeyboardInterrupt:
        tracker.set_status(run_id, "KILLED")
        raise
    except Exception as e:  # noqa: BLE001 - recorded on the run, reported by the caller
        reason = f"{type(e).__name__}: {e}"
        tracker.fail(run_id, reason)
        raise CellFailed(f"{spec.key}: {reason}") from e
    if len(result.history) < spec.train.epochs:  # stopped early on purpose (stop_after)
        return CellOutcome(spec, run_id, result.final)
    model_path = workdir / "model.pt"
    teachers.save_model(result.model, model_path)
    tracker.finish(run_id, spec, result.history, model_path, logged[0])
    shutil.rmtree(workdir, ignore_errors=True)
    return CellOutcome(spec, run_id, result.final)

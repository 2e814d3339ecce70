"""One cell, tracked: find or train its self-teacher, load its data, train with resuming, log.

Shared by ``train``, ``grid`` and ``tune``; the training loop itself stays free of tracking code.
"""
from __future__ import annotations

import errno
import hashlib
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from benchmark import data
from benchmark.config import DataSettings, RunSpec
from benchmark.jobs import train
from benchmark.models import teachers
from benchmark.store.runtime import Runtime
from benchmark.store.tracking import Tracker


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
                     settings.train_subset, settings.augment,
                     data.Noise(settings.noise, settings.noise_rate, settings.noise_seed),
                     settings.folds, settings.fold)


def check_data(specs, root: str | None) -> None:
    """Load each dataset of ``specs`` once, so that a missing or inconsistent file, or a split
    that leaves a class without validation images, is one line before any store is written;
    and pass a batch of its image size through each architecture it trains, so that images the
    network cannot take (2x2 pixels for ``cnn28s``) are one line too, not a failed cell."""
    specs = list(specs)
    for settings in {s.data.task: s.data for s in specs}.values():
        load_data(settings, root)
    for task, arch in sorted({(s.data.task, s.arch) for s in specs}):
        settings = next(s.data for s in specs if s.data.task == task)
        d = load_data(settings, root)
        check_image_size(arch, d)


@lru_cache(maxsize=64)
def _accepts(arch: str, channels: int, classes: int, size: tuple[int, int]) -> str | None:
    import torch

    from benchmark import models

    try:
        model = models.build(arch, channels, classes, size[0]).eval()
        with torch.no_grad():
            model(torch.zeros(2, channels, *size))
    except (RuntimeError, ValueError) as e:
        return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return None


def check_image_size(arch: str, d: data.TensorData) -> None:
    c, h, w = d.image_shape
    why = _accepts(arch, c, d.num_classes, (h, w))
    if why is not None:
        raise data.DataError(f"{d.name}: its {w}x{h} images (x{c} channels) do not pass "
                             f"through {arch} ({why[:160]}); choose an architecture for "
                             "images of this size")


def epoch_line(spec: RunSpec, row: dict) -> str:
    """One progress line: loss, accuracies, every diagnostic the run logs (as percentages)."""
    parts = [f"{spec.key} ep {row['epoch']:>3}/{spec.train.epochs}",
             f"loss {row['train_loss']:.3f}", f"val {100 * row['val_top1']:.1f}"]
    if "test_top1" in row:
        parts.append(f"test {100 * row['test_top1']:.1f}")
    parts += [f"{k[5:]} {100 * v:.1f}%" for k, v in row.items() if k.startswith("diag_")]
    parts.append(f"{row['epoch_seconds']:.1f}s")
    return " | ".join(parts)


def describe(spec: RunSpec, tags: dict) -> str:
    """MLflow's run description: what the run is, in one line."""
    where = f" (grid {tags['grid']})" if "grid" in tags else ""
    teacher = tags.get("teacher_source", "none")
    return (f"{spec.label} ({spec.method}, teacher {teacher}) on {spec.data.task} with "
            f"{spec.arch}, seed {spec.seed}, {spec.train.epochs} epochs{where}")


@lru_cache(maxsize=8)
def dataset_input(settings: DataSettings, root: str | None) -> dict[str, str]:
    """The run's dataset for MLflow: name, a digest of the exact training, validation and test
    tensors, and where they came from."""
    d = load_data(settings, root)
    h = hashlib.sha256()
    for t in (d.train_x, d.train_y, d.val_x, d.val_y, d.test_x, d.test_y):
        if t is not None:
            h.update(t.cpu().numpy().tobytes())
    subset = f", {settings.train_subset} training images" if settings.train_subset else ""
    noise = f", label noise {settings.noise_text()}" if settings.noise != "none" else ""
    return {"name": f"{settings.name}{subset}{noise}", "digest": h.hexdigest()[:16],
            "source": data.get_spec(settings.name).source}


def cell_params(spec: RunSpec) -> dict:
    return {**spec.flat_params(), "effective_batch_size": spec.train.batch_size,
            "effective_lr": spec.train.effective_lr}


def run_cell(spec: RunSpec, tracker: Tracker, rt: Runtime = Runtime(), *,
             train_teacher: bool = True,
             on_epoch: Callable[[RunSpec, dict], None] | None = None,
             extra_tags: dict[str, str] | None = None,
             stop_after: int | None = None) -> CellOutcome:
    """Train ``spec`` unless a finished run of it exists. A missing self-teacher is trained
    first as its own CE cell when ``train_teacher`` (else :class:`CellFailed`)."""
    done = tracker.finished(spec.hash)
    if done is not None:
        return CellOutcome(spec, done.info.run_id, dict(done.data.metrics), skipped=True)
    dev = train.resolve_device(rt.device)
    workdir = tracker.results / "checkpoints" / spec.hash
    teacher_model = None
    tspec = spec.teacher_spec()
    dataset = load_data(spec.data, rt.data_root).to(dev)
    tags = {**spec.tags(), "kind": "train", "device": train.device_name(dev),
            "threads": str(train.torch.get_num_threads()),
            **(extra_tags or {})}
    if tspec is not None:
        found = tracker.teacher_checkpoint(tspec.hash, workdir / "teacher")
        if found is None:
            if not train_teacher:
                raise CellFailed(f"{spec.key}: its self-teacher {tspec.key} has not finished")
            run_cell(tspec, tracker, rt, on_epoch=on_epoch, extra_tags=extra_tags)
            found = tracker.teacher_checkpoint(tspec.hash, workdir / "teacher")
        tags["teacher_run_id"], path = found
        c, h, _ = dataset.image_shape
        teacher_model = teachers.load_model(path, spec.arch, c, dataset.num_classes, h, dev)
    run_ids: list[str] = []
    try:
        return _train_cell(spec, tracker, rt, workdir, dataset, teacher_model, tags, on_epoch,
                           stop_after, lambda r: run_ids.append(r))
    except (CellFailed, KeyboardInterrupt):
        raise
    except Exception as e:  # noqa: BLE001 - a write that failed: one line, the run FAILED
        reason = write_failure(e, workdir) or f"{type(e).__name__}: {e}"
        for run_id in run_ids:
            try:
                tracker.fail(run_id, reason)
            except Exception:  # noqa: BLE001 - the store itself may be the full disk
                pass
        raise CellFailed(f"{spec.key}: {reason}") from e


def write_failure(e: BaseException, where: Path) -> str | None:
    """``no space left on device (PATH)`` when ``e`` is a write that failed for lack of space
    (ENOSPC, SQLite's "database or disk is full", or torch's zip writer failing while the disk
    holds less than 1 MB), else None."""
    text = str(e)
    full = (isinstance(e, OSError) and e.errno == errno.ENOSPC) or "No space left" in text \
        or "database or disk is full" in text
    if not full and "unexpected pos" in text:
        try:
            full = shutil.disk_usage(where if where.exists() else where.parent).free < 2 ** 20
        except OSError:
            full = False
    if not full:
        return None
    path = getattr(e, "filename", None) or where
    return f"no space left on device ({path})"


#: MLflow's longest tag value: the per-image correctness of up to 48,000 test images.
MAX_TAG = 8000


def _train_cell(spec: RunSpec, tracker: Tracker, rt: Runtime, workdir: Path, dataset,
                teacher_model, tags: dict, on_epoch, stop_after, started) -> CellOutcome:
    """The part of :func:`run_cell` that writes: checkpoints, the run, its artifacts."""
    workdir.mkdir(parents=True, exist_ok=True)
    bad = train.quarantine_checkpoint(workdir)
    if bad is not None:
        moved, why = bad
        note = (f"{workdir / train.CHECKPOINT} could not be read ({why[:200]}); moved to "
                f"{moved}; the cell restarts from epoch 0")
        print(f"drkd-bench: {spec.key}: {note}", file=sys.stderr, flush=True)
        tags["checkpoint_reset"] = note
    fmt = rt.memory_format if rt.memory_format != "auto" else \
        train.memory_format(spec.arch, dataset, rt.device)
    tags["memory_format"] = fmt
    run_id, already_logged = tracker.start(
        spec.hash, spec.key, tags, cell_params(spec),
        checkpoint_epochs=train.checkpoint_epochs(workdir, spec),
        description=describe(spec, tags), dataset=dataset_input(spec.data, rt.data_root))
    started(run_id)
    logged = [already_logged]  # the last epoch whose metrics are in the store

    def log(history: list[dict]) -> None:  # after each checkpoint: never ahead of it
        rows = [row for row in history if row["epoch"] > logged[0]]
        if rows:
            tracker.log_epochs(run_id, rows)
            logged[0] = rows[-1]["epoch"]

    try:
        result = train.train(spec, dataset, workdir, teacher_model=teacher_model,
                             device=rt.device, on_saved=log,
                             on_epoch=(lambda row: on_epoch(spec, row)) if on_epoch else None,
                             checkpoint_seconds=rt.checkpoint_seconds, stop_after=stop_after,
                             channels_last=fmt == "channels_last")
    except KeyboardInterrupt:
        tracker.set_status(run_id, "KILLED")
        raise
    except Exception as e:  # noqa: BLE001 - recorded on the run, reported by the caller
        reason = write_failure(e, workdir) or f"{type(e).__name__}: {e}"
        try:
            tracker.fail(run_id, reason)
        except Exception:  # noqa: BLE001 - the store itself may be on the full disk
            pass
        raise CellFailed(f"{spec.key}: {reason}") from e
    if len(result.history) < spec.train.epochs:  # stopped early on purpose (stop_after)
        return CellOutcome(spec, run_id, result.final)
    if 0 < len(result.test_correct) <= MAX_TAG:  # per-image correctness: test-set intervals
        tracker.set_tags(run_id, {"test_correct": result.test_correct,
                                  "test_images": str(result.test_images)})
    model_path = workdir / "model.pt"
    teachers.save_model(result.model, model_path)
    config = {"key": spec.key, "hash": spec.hash, **spec.identity()}
    tracker.finish(run_id, config, result.history, model_path, logged[0])
    shutil.rmtree(workdir, ignore_errors=True)
    return CellOutcome(spec, run_id, result.final)


def cell_task(spec: RunSpec, rt: Runtime, say: Callable[[str], None] | None = None,
              tracker: Tracker | None = None, tags: dict[str, str] | None = None) -> dict:
    """A grid cell (in this process, a worker process or a Ray task), its teacher already
    finished; ``say`` gets the per-epoch lines. Returns ``{"final": metrics, "seconds": wall}``.
    """
    started = time.perf_counter()
    if tracker is None:  # a fresh process: its own threads and store connection
        rt.apply()
        tracker = rt.tracker()
    on_epoch = None if say is None else (lambda s, row: say(epoch_line(s, row)))
    final = run_cell(spec, tracker, rt, train_teacher=False, on_epoch=on_epoch,
                     extra_tags=tags).final
    return {"final": final, "seconds": time.perf_counter() - started}

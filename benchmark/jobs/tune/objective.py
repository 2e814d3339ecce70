"""A trial's objective: the final-epoch *validation* top-1 of the trial's settings, averaged
over its seeds (the data given to a trial has no test split), with the teacher it needs."""
from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import numpy as np

import methods
from benchmark import data as data_mod
from benchmark.config import (
    RunSpec,
    split_optimiser,
)
from benchmark.jobs import train
from benchmark.jobs.runner import load_data, run_cell
from benchmark.jobs.tune.studies import Study, redact
from benchmark.models import teachers
from benchmark.store.runtime import Runtime
from benchmark.store.tracking import Tracker


def _teacher(study: Study, dataset: data_mod.TensorData, tracker: Tracker, rt: Runtime,
             seed: int | None = None) -> Any:
    """The self-teacher for tuning: the grid's CE cell of the same dataset, arch, seed and
    training settings, trained (and tracked) as that cell first when it has not finished."""
    tspec = study.teacher_for(study.spec.seed if seed is None else seed)
    if tspec is None:
        return None
    folder = tracker.results / "checkpoints" / "tune-teachers" / tspec.hash
    found = tracker.teacher_checkpoint(tspec.hash, folder)
    if found is None:  # tracked, but not as a cell a report evaluates: its seed is tuning's
        run_cell(tspec, tracker, rt, extra_tags={"kind": "tuning-teacher"})
        found = tracker.teacher_checkpoint(tspec.hash, folder)
    c, h, _ = dataset.image_shape
    dev = train.resolve_device(rt.device)
    return teachers.load_model(found[1], study.spec.arch, c, dataset.num_classes, h, dev)


def prepare(study_def: Study, tracker: Tracker, rt: Runtime, seeds=None):
    """Per seed of ``seeds`` (default: the study's trial seeds): the data that seed trains on,
    without its test split, on the device (with ``split: per-seed`` each seed its own split,
    as its self-teacher's), and its self-teacher (None for a method without one)."""
    dev = train.resolve_device(rt.device)
    seeds = study_def.seeds if seeds is None else seeds
    data = {s: without_test(load_data(trial_spec(study_def, {}, s).data, rt.data_root)).to(dev)
            for s in seeds}
    return data, {s: _teacher(study_def, data[s], tracker, rt, s) for s in seeds}


def trial_spec(study_def: Study, params: dict[str, Any], seed: int) -> RunSpec:
    """The run a trial's ``params`` mean for ``seed``: the searched hyperparameters resolved by
    the method, the optimiser settings (``lr``, ``weight_decay``) in the training settings."""
    searched, train_values = split_optimiser(params)
    hp = {**study_def.spec.hyperparameters, **searched}
    return dataclasses.replace(
        study_def.spec, seed=seed, hyperparameters=methods.get(study_def.spec.method).resolve(hp),
        train=dataclasses.replace(study_def.spec.train, **train_values),
        data=study_def.data_for(study_def.spec.data, seed))  # split: per-seed; folds


def score(study_def: Study, params: dict[str, Any], seeds, dataset: dict, teachers_by_seed: dict,
          rt: Runtime, on_epoch=None) -> dict[str, Any]:
    """Train ``params`` once per seed (``dataset``: each seed's data, from :func:`prepare`); the
    mean validation top-1 (the trial's value), its SD over the seeds, the mean validation NLL
    and the images forwarded (student and teacher models)."""
    values, nlls, images = [], [], 0.0
    for i, seed in enumerate(seeds):
        spec = trial_spec(study_def, params, seed)
        result = train.train(spec, dataset[seed], teacher_model=teachers_by_seed.get(seed),
                             device=rt.device, on_epoch=on_epoch if i == 0 else None,
                             channels_last=None if rt.memory_format == "auto"
                             else rt.memory_format == "channels_last")
        value = result.final["val_top1"]
        if not math.isfinite(value):
            raise train.TrainingDiverged("validation accuracy is not finite")
        values.append(value)
        nlls.append(result.final["val_nll"])
        images += sum(r.get("cost_student_images", 0.0) + r.get("cost_teacher_images", 0.0)
                      for r in result.history)
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
    return {"value": float(np.mean(values)), "values": values, "sd": sd,
            "nll": float(np.mean(nlls)), "images": images, "seeds": list(seeds)}


def without_test(d: data_mod.TensorData) -> data_mod.TensorData:
    return dataclasses.replace(d, test_x=None, test_y=None)


def safe(fn, *args, **kwargs):
    """Tracking must never kill a study: log the problem and go on."""
    try:
        return fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001
        warnings.warn(f"tracking failed, the study goes on: {type(e).__name__}: {e}",
                      stacklevel=2)
        return None


def parent_run(tracker: Tracker, study: Study, storage: str) -> str:
    """The study's one MLflow parent run for this storage (found again on a rerun, marked
    RUNNING), created in the command's own process before any worker starts."""
    where = redact(storage)
    found = [r for r in tracker.runs(f"tags.kind = 'study' and tags.study = '{study.name}'")
             if r.data.tags.get("storage") == where]
    if found:
        tracker.set_status(found[0].info.run_id, "RUNNING")
        return found[0].info.run_id
    return tracker.new_run(f"study {study.name}", {
        "kind": "study", "study": study.name, "storage": where, "dataset": study.spec.data.task,
        "arch": study.spec.arch, "method": study.spec.method, "variant": study.spec.label,
        **study.tags})

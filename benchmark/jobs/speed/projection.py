"""A grid's projected wall time: each cell's epochs at its method's measured step rate."""
from __future__ import annotations

import dataclasses

import methods
from benchmark import config
from benchmark.jobs.speed.measure import TEST_IMAGES, TRAIN_IMAGES, Row


def step_label(method_name: str, hyperparameters: dict) -> str:
    """The speed table's label of a cell's step: the method, with its teacher source when the
    teacher is a choice, or its fidelity when that decides whether the step takes features (the
    labels :func:`variants` measures)."""
    m = methods.get(method_name)
    hp = m.resolve(dict(hyperparameters))
    if m.teacher == "param":
        return f"{method_name} ({m.teacher_source(hp)})"
    if m.needs_features is not None and "fidelity" in m.params:  # as variants() measures it
        return f"{method_name} ({hp['fidelity']})"
    return method_name


def project(cfg: config.GridConfig, measured: dict[str, list[Row]],
            gpu_counts: tuple[int, ...] = (1, 8)) -> list[Row]:
    """The wall time of grid ``cfg`` from the measured rows of each of its architectures.

    A cell alone on a GPU takes, per epoch, its training images at its method's harness step
    rate plus its validation and test images at the evaluation rate. K cells per GPU multiply
    throughput by s_K (aggregate rate of K cells over one cell) and stretch each cell by K / s_K.
    On G GPUs the grid takes max(total / (G s_K), critical path * K / s_K), the critical path
    being a CE cell followed by the slowest cell that distils from it. K is the measured one
    with the highest s_K. Cells of an architecture without measurements make it an error."""
    from benchmark.jobs import grid as grid_mod

    # a tuned variant costs what its reference twin costs: project without reading studies
    cfg = dataclasses.replace(cfg, variants=tuple(dataclasses.replace(v, tuned=False)
                                                  for v in cfg.variants))
    cells = grid_mod.expand(cfg)
    missing = sorted({c.arch for c in cells} - set(measured))
    if missing:
        raise ValueError(f"no speed measurements for {', '.join(missing)} (grid {cfg.name})")
    by_arch = {arch: {r.name: r for r in rows} for arch, rows in measured.items()}
    seconds: dict[str, float] = {}
    for c in cells:
        rows = by_arch[c.arch]
        step = rows[f"harness step: {step_label(c.method, c.hyperparameters)}"].images_per_s
        evaluation = rows["evaluation forward (no gradient)"].images_per_s
        total = min(TRAIN_IMAGES[c.data.name], c.data.train_subset or TRAIN_IMAGES[c.data.name])
        val = round(total * c.data.val_fraction)
        test = TEST_IMAGES[c.data.name]
        seconds[c.hash] = c.train.epochs * ((total - val) / step + (val + test) / evaluation)
    deps = grid_mod.dependencies(cells)
    path = max((seconds.get(deps.get(c.hash, ""), 0.0) + seconds[c.hash] for c in cells),
               default=0.0)
    scaling: dict[int, float] = {}
    for arch_rows in measured.values():
        for r in arch_rows:
            if "cell(s) per device" in r.name:
                k = int(r.name.split()[0])
                scaling[k] = min(scaling.get(k, float("inf")), r.ratio)  # the worst arch's
    scaling = scaling or {1: 1.0}
    k_best = max(scaling, key=lambda k: scaling[k])
    total = sum(seconds.values())
    rows = []
    for g in gpu_counts:
        for k in sorted({1, k_best}):
            s_k = scaling.get(k, 1.0)
            wall = max(total / (g * s_k), path * k / s_k)
            rows.append(Row(f"projected {cfg.name}: {len(cells)} cells on {g} GPU(s), {k} "
                            f"cell(s) per GPU", float("nan"), seconds=wall))
    return rows

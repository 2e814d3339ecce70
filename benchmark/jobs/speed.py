"""``drkd-bench speed``: the harness's own cost next to the model's, measured side by side in one
process after a warm-up, as images per second (median of repeats).

Rows: the bare step (forward, backward, SGD on one fixed normalised batch: the limit); the
harness's full step for every method and DR-KD teacher source (augmentation included); the data
pipeline alone against torchvision's PIL transforms in a ``DataLoader`` with workers; one whole
KD epoch (``tfkd-self``) of the harness against a reference-style loop (PIL ``DataLoader``, a
separate teacher forward, per-batch ``.item()``) and against its compute limit (bare student step
plus one teacher forward on a fixed batch). Synthetic uint8 images of the dataset's shape are used
so that no download is needed; the cost does not depend on pixel values.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import os
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import methods
from benchmark import config, models
from benchmark import data as data_mod
from benchmark.jobs import train
from benchmark.store.runtime import adopt_environment, worker_context

SHAPES = {"digits": (1, 8), "fashion-mnist": (1, 28), "cifar10": (3, 32), "cifar100": (3, 32),
          "tiny-imagenet": (3, 64)}
DATA_NOTE = "synthetic images of the dataset's shape: speed only, no accuracy"
#: Targets of a method's step against CE's, by teacher source (the others: >= 0.95).
STEP_TARGETS = {"pretrained": ">= 0.70", "ema": ">= 0.70", "previous-epoch": ">= 0.97",
                "partner": "", "previous-batch": ""}


def variants() -> list[tuple[str, str, dict]]:
    """(label, method, hyperparameters): every registered method, and a method whose teacher is a
    choice once per teacher source."""
    out = []
    for name in methods.names():
        m = methods.get(name)
        if m.teacher == "param":
            out += [(f"{name} ({s})", name, {"teacher": s}) for s in m.params["teacher"].choices]
        elif m.needs_features is not None and "fidelity" in m.params:  # e.g. dense votes or not
            out += [(f"{name} ({f})", name, {"fidelity": f})
                    for f in m.params["fidelity"].choices]
        else:
            out.append((name, name, {}))
    return out


@dataclass
class Row:
    """``forwards``: images the student forwards per trained image, + a separate teacher's.
    ``seconds``: for time rows (an epoch, a compile, a projected grid); ``peak_mb``: GPU memory
    (CUDA only). A target ``>= x`` is on ``ratio``, ``<= x`` on ``seconds``."""

    name: str
    images_per_s: float
    against: str = ""
    ratio: float = float("nan")
    target: str = ""
    forwards: str = ""
    seconds: float = float("nan")
    peak_mb: float = float("nan")

    @property
    def ok(self) -> str:
        if not self.target:
            return ""
        op, value = self.target.split(" ")[:2]
        if op == "<=":
            return "yes" if self.seconds <= float(value) else "NO"
        return "yes" if self.ratio >= float(value) else "NO"


#: Training images of one epoch of each dataset (before the validation split).
TRAIN_IMAGES = {"digits": 1347, "fashion-mnist": 60_000, "cifar10": 50_000, "cifar100": 50_000,
                "tiny-imagenet": 100_000}
TEST_IMAGES = {"digits": 450, "fashion-mnist": 10_000, "cifar10": 10_000, "cifar100": 10_000,
               "tiny-imagenet": 10_000}


def synthetic(dataset: str, n: int, seed: int = 0) -> data_mod.TensorData:
    spec = data_mod.get_spec(dataset)
    c, s = SHAPES[dataset]
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, c, s, s), generator=g, dtype=torch.uint8)
    y = torch.randint(0, spec.num_classes, (n,), generator=g)
    return data_mod.TensorData(dataset, spec.num_classes, spec.mean, spec.std, spec.augment,
                               x, y, x[:256], y[:256], None, None)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def rates(cases: dict[str, Callable[[], int]], dev: torch.device, repeats: int,
          warmup: int = 1) -> dict[str, float]:
    """Median images/s of each case (a function returning the images it processed). The cases
    are interleaved round by round, so a slow spell of a noisy machine hits them all alike."""
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    _sync(dev)
    out: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            n = fn()
            _sync(dev)
            out[name].append(n / (time.perf_counter() - start))
    return {name: statistics.median(v) for name, v in out.items()}


def _model(arch: str, d: data_mod.TensorData, dev: torch.device, channels_last: bool):
    torch.manual_seed(0)
    c, h, _ = d.image_shape
    m = models.build(arch, c, d.num_classes, h).to(dev)
    return m.to(memory_format=torch.channels_last) if channels_last else m


def _optimizer(model) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)


def _harness_steps(run: train.Run, d: data_mod.TensorData, steps: int) -> int:
    """``steps`` optimisation steps of the harness's own loop on a built run; images trained."""
    run.model.train()
    for batch_ in itertools.islice(run.plan.epoch(), steps):
        run.step(d.train_x, d.train_y, batch_)
    return steps * run.plan.batch


def peaks(cases: dict[str, Callable[[], int]], dev: torch.device) -> dict[str, float]:
    """Per case, the GPU memory it needs beyond what is already resident (MB): the peak while
    it runs once, less what was allocated before. NaN off CUDA."""
    if dev.type != "cuda":
        return {name: float("nan") for name in cases}
    out = {}
    for name, fn in cases.items():
        torch.cuda.synchronize(dev)
        before = torch.cuda.memory_allocated(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        fn()
        torch.cuda.synchronize(dev)
        out[name] = (torch.cuda.max_memory_allocated(dev) - before) / 2 ** 20
    return out


def measure(dataset: str = "fashion-mnist", arch: str | None = None, batch: int = 128,
            steps: int = 20, repeats: int = 3, epoch_images: int = 10_000, workers: int = 2,
            device: str | None = None, compile: bool = False,
            say: Callable[[str], None] = lambda s: None) -> list[Row]:
    """Every row for one architecture (see the module's docstring); with ``compile``, the CE
    step compiled by ``torch.compile``: its compile time, its rate, and whether a whole run of
    the paper's length (200 epochs of the dataset) is faster with it, compile time included."""
    dev = train.resolve_device(device)
    cuda = dev.type == "cuda"
    warmup = 1 if repeats > 1 else 0  # --repeats 1 is a smoke run: no warm-up call either
    arch = arch or data_mod.get_spec(dataset).default_arch
    d = synthetic(dataset, max(epoch_images, batch * steps)).to(dev)
    pipeline = data_mod.Pipeline(d, channels_last=cuda)
    rows: list[Row] = []

    # the bare step: one fixed normalised batch
    model = _model(arch, d, dev, cuda)
    opt = _optimizer(model)
    fixed_x = pipeline.normalize(d.train_x[:batch])
    fixed_y = d.train_y[:batch]

    def bare() -> int:
        model.train()
        for _ in range(steps):
            with torch.autocast(dev.type, torch.bfloat16, enabled=cuda):
                loss = F.cross_entropy(model(fixed_x).float(), fixed_y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return steps * batch

    teacher_model = _model(arch, d, dev, cuda).eval()
    cases: dict[str, Callable[[], int]] = {"bare": bare}
    forwards: dict[str, str] = {}
    for label, name, hp in variants():
        spec = config.make_spec(dataset, arch, name, 0, hp, {"batch_size": batch, "epochs": 1})
        run = train.build(spec, d, dev, teacher_model, amp=cuda, channels_last=cuda)

        cases[label] = functools.partial(_harness_steps, run, d, steps)
        extra = run.teacher is not None and run.teacher.extra_forward
        student = run.plan.forwarded_per_step() / batch
        forwards[label] = f"{student:g}+{int(extra)}"
    eval_x = d.train_x[: min(len(d.train_x), 1000)]

    def evaluation() -> int:
        train.predict(model, eval_x, pipeline, amp=cuda)
        return len(eval_x)

    cases["evaluation"] = evaluation
    say("steps: bare and harness for every method and teacher source, interleaved")
    r = rates(cases, dev, repeats, warmup)
    mem = peaks(cases, dev)
    rows.append(Row("bare step (limit)", r["bare"], peak_mb=mem["bare"]))
    rows.append(Row("harness step: ce", r["ce"], "bare step", r["ce"] / r["bare"], ">= 0.95",
                    forwards["ce"], peak_mb=mem["ce"]))
    for label in forwards:
        if label == "ce":
            continue
        target = STEP_TARGETS.get(label.split(" (")[-1].rstrip(")"), ">= 0.95")
        if forwards[label] != "1+0" and "(" not in label:
            target = ""  # forwards twice the images per step by design: no target, shown
        rows.append(Row(f"harness step: {label}", r[label], "harness ce", r[label] / r["ce"],
                        target, forwards[label], peak_mb=mem[label]))
    images = TRAIN_IMAGES[dataset]
    rows.append(Row(f"ce epoch: {images:,} training images at the harness ce step rate",
                    r["ce"], seconds=images / r["ce"], target="<= 5 s" if cuda else ""))
    rows.append(Row("evaluation forward (no gradient)", r["evaluation"],
                    peak_mb=mem["evaluation"]))
    if compile:
        say("compiled ce step: compile time and rate")
        rows += _compiled(dataset, arch, batch, steps, repeats, d, dev, r["ce"])
    if "drkd (ema)" in r and "drkd (pretrained)" in r:
        rows.append(Row("harness step: drkd (ema) vs drkd (pretrained)", r["drkd (ema)"],
                        "drkd (pretrained)", r["drkd (ema)"] / r["drkd (pretrained)"], ">= 0.95",
                        forwards["drkd (ema)"]))

    # the data pipeline alone
    n = epoch_images
    gen = torch.Generator(dev).manual_seed(0)

    def ours() -> int:
        perm = torch.randperm(n, device=dev, generator=gen)
        for b in range(n // batch):
            pipeline.train(d.train_x[perm[b * batch:(b + 1) * batch]], gen)
        return (n // batch) * batch

    loader = reference_loader(d, batch, workers)

    def pil() -> int:
        count = 0
        for x, _y in loader:
            x.to(dev, non_blocking=True)
            count += len(x)
        return count

    say("data pipeline: harness and PIL DataLoader")
    r = rates({"ours": ours, "pil": pil}, dev, repeats, warmup)
    ours_rate, pil_rate = r["ours"], r["pil"]
    rows.append(Row("data pipeline: PIL DataLoader (reference)", pil_rate))
    rows.append(Row("data pipeline: harness batched tensors", ours_rate,
                    "PIL DataLoader", ours_rate / pil_rate, ">= 5"))

    # one whole tfkd-self epoch
    method = methods.get("tfkd-self")
    kw = method.loss_kwargs(method.resolve({}))
    spec = config.make_spec(dataset, arch, "tfkd-self", 0, {}, {"batch_size": batch, "epochs": 1})
    epoch_run = train.build(spec, d, dev, teacher_model, amp=cuda, channels_last=cuda)

    def harness_epoch() -> int:
        train.train_epoch(epoch_run.step, d.train_x, d.train_y, epoch_run.plan)
        return epoch_run.plan.steps * batch

    # the reference implementations: fp32, default memory layout, a PIL DataLoader
    ref_model = _model(arch, d, dev, False)
    ref_teacher = _model(arch, d, dev, False).eval()
    ref_opt = _optimizer(ref_model)

    def reference_epoch() -> int:
        ref_model.train()
        count = 0
        for x, y in loader:
            x, y = x.to(dev), y.to(dev)
            out = ref_model(x)
            with torch.no_grad():
                t_out = ref_teacher(x)
            loss = method.terms(out, y, t_out, **kw)["loss"]
            ref_opt.zero_grad()
            loss.backward()
            ref_opt.step()
            _ = loss.item()
            _ = (out.argmax(1) == y).sum().item()
            count += len(x)
        return count

    student = _model(arch, d, dev, cuda)
    limit_opt = _optimizer(student)

    def limit_epoch() -> int:
        student.train()
        for _ in range(n // batch):
            with torch.autocast(dev.type, torch.bfloat16, enabled=cuda):
                loss = F.cross_entropy(student(fixed_x).float(), fixed_y)
            with torch.inference_mode():
                with torch.autocast(dev.type, torch.bfloat16, enabled=cuda):
                    teacher_model(fixed_x)
            limit_opt.zero_grad(set_to_none=True)
            loss.backward()
            limit_opt.step()
        return (n // batch) * batch

    say("tfkd-self epochs: reference-style loop, compute limit, harness, interleaved")
    r = rates({"ref": reference_epoch, "limit": limit_epoch, "ours": harness_epoch}, dev,
              max(1, repeats - 1), warmup=0)
    ref_rate, lim_rate, ours_epoch = r["ref"], r["limit"], r["ours"]
    rows.append(Row("tfkd-self epoch: reference-style loop", ref_rate))
    rows.append(Row("tfkd-self epoch: compute limit (bare step + teacher forward)", lim_rate))
    rows.append(Row("tfkd-self epoch: harness vs reference", ours_epoch, "reference-style loop",
                    ours_epoch / ref_rate, ">= 1.2"))
    rows.append(Row("tfkd-self epoch: harness vs limit", ours_epoch, "compute limit",
                    ours_epoch / lim_rate, ">= 0.87"))
    return rows


def _compiled(dataset: str, arch: str, batch: int, steps: int, repeats: int,
              d: data_mod.TensorData, dev: torch.device, eager_rate: float) -> list[Row]:
    cuda = dev.type == "cuda"
    spec = config.make_spec(dataset, arch, "ce", 0, {},
                            {"batch_size": batch, "epochs": 1, "compile": True})
    run = train.build(spec, d, dev, None, amp=cuda, channels_last=cuda)

    harness = functools.partial(_harness_steps, run, d, steps)
    started = time.perf_counter()
    harness()  # compiles
    _sync(dev)
    compile_s = time.perf_counter() - started
    rate = rates({"compiled": harness}, dev, repeats, warmup=0)["compiled"]  # warm: compiled
    epochs, images = 200, TRAIN_IMAGES[dataset]
    eager_run = epochs * images / eager_rate
    compiled_run = compile_s + epochs * images / rate
    return [Row("harness step: ce compiled (torch.compile)", rate, "harness ce", rate / eager_rate,
                forwards="1+0"),
            Row("torch.compile: first call (compile time)", float("nan"), seconds=compile_s),
            Row(f"torch.compile: a {epochs}-epoch run, eager time / compiled time (compile "
                "included; > 1: compile pays)", rate, "eager run", eager_run / compiled_run,
                ">= 1.0", seconds=compiled_run)]


# --- several cells on one device ------------------------------------------------------------------

def _cell_worker(dataset: str, arch: str, batch: int, steps: int, device: str, threads: int,
                 inbox, outbox, env: dict) -> None:
    """One CE cell's training steps in a process of its own (as a grid worker runs a cell): warm
    up, report ready with its resident GPU memory, then time ``steps`` steps from each start
    time it is sent until it is sent None."""
    adopt_environment(env)
    torch.set_num_threads(threads)
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    d = synthetic(dataset, batch * steps).to(dev)
    spec = config.make_spec(dataset, arch, "ce", 0, {}, {"batch_size": batch, "epochs": 1})
    run = train.build(spec, d, dev, None, amp=cuda, channels_last=cuda)

    def go() -> None:
        _harness_steps(run, d, steps)
        _sync(dev)

    go()
    outbox.put(("ready", torch.cuda.max_memory_allocated(dev) / 2 ** 20 if cuda
                else float("nan")))
    while (start_at := inbox.get()) is not None:
        while time.time() < start_at:
            time.sleep(0.0005)
        began = time.time()
        go()
        outbox.put((began, time.time()))


def cells_per_device(dataset: str, arch: str, batch: int, steps: int, repeats: int,
                     ks: list[int], device: str | None = None,
                     say: Callable[[str], None] = lambda s: None) -> list[Row]:
    """Aggregate images/s of K CE cells training at once on one device (K processes, started
    together), for each K in ``ks``, against one cell alone (median of ``repeats``)."""
    dev = train.resolve_device(device)
    where = f"cuda:{dev.index or 0}" if dev.type == "cuda" else "cpu"
    ctx = worker_context()  # as the grid starts its workers
    most = max(ks)
    threads = max(1, torch.get_num_threads() // most) if dev.type == "cpu" else 1
    outbox = ctx.Queue()
    inboxes = [ctx.Queue() for _ in range(most)]
    procs = [ctx.Process(target=_cell_worker, daemon=True,
                         args=(dataset, arch, batch, steps, where, threads, q, outbox,
                               dict(os.environ)))
             for q in inboxes]
    say(f"{most} cell processes of {arch}: starting")
    for proc in procs:
        proc.start()
    try:
        ready = [outbox.get(timeout=600) for _ in procs]
        cell_mb = max(mb for _, mb in ready)
        aggregate: dict[int, float] = {}
        for k in sorted(set(ks)):
            say(f"{k} cell(s) at once")
            samples = []
            for _ in range(repeats):
                start_at = time.time() + 0.2
                for q in inboxes[:k]:
                    q.put(start_at)
                spans = [outbox.get(timeout=600) for _ in range(k)]
                wall = max(e for _, e in spans) - min(b for b, _ in spans)
                samples.append(k * steps * batch / wall)
            aggregate[k] = statistics.median(samples)
    finally:
        for q in inboxes:
            q.put(None)
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    one = aggregate[min(aggregate)]
    rows = [Row(f"{k} cell(s) per device: aggregate ce images/s", rate, "1 cell",
                rate / one, ">= 1.5" if k > 1 and dev.type == "cuda" else "",
                peak_mb=cell_mb if k == min(aggregate) else float("nan"))
            for k, rate in aggregate.items()]
    return rows


# --- projected wall time of a grid ----------------------------------------------------------------

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


class _PILDataset(torch.utils.data.Dataset):
    """The reference implementations' pipeline: uint8 array -> PIL image -> torchvision
    transforms (crop with padding, flip, rotation, ToTensor, Normalize) per sample."""

    def __init__(self, d: data_mod.TensorData):
        from torchvision import transforms as T

        x = d.train_x.cpu().numpy()
        self.images = x[:, 0] if x.shape[1] == 1 else x.transpose(0, 2, 3, 1)
        self.targets = d.train_y.cpu().numpy()
        a = d.augment
        ops = []
        if a.crop_padding:
            ops.append(T.RandomCrop(self.images.shape[1], padding=a.crop_padding))
        if a.flip:
            ops.append(T.RandomHorizontalFlip())
        if a.rotation:
            ops.append(T.RandomRotation(a.rotation))
        ops += [T.ToTensor(), T.Normalize(d.mean, d.std)]
        self.transform = T.Compose(ops)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.targets[i])


def reference_loader(d: data_mod.TensorData, batch: int, workers: int):
    return torch.utils.data.DataLoader(_PILDataset(d), batch_size=batch, shuffle=True,
                                       num_workers=workers, drop_last=True,
                                       persistent_workers=workers > 0)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def table(rows: list[Row]) -> str:
    def num(x: float, fmt: str) -> str:
        return "" if np.isnan(x) else format(x, fmt)

    lines = [f"{'measurement':<66} {'images/s':>10} {'ratio':>7} {'seconds':>9} {'GPU MB':>7}  "
             f"{'target':<8} ok  {'fwd':<5} against"]
    for r in rows:
        lines.append(f"{r.name:<66} {num(r.images_per_s, '.0f'):>10} {num(r.ratio, '.3f'):>7} "
                     f"{num(r.seconds, '.1f'):>9} {num(r.peak_mb, '.0f'):>7}  {r.target:<8} "
                     f"{r.ok:<3} {r.forwards:<5} {r.against}")
    return "\n".join(lines)


def write_csv(rows: list[Row], path: Path, meta: dict) -> None:
    import csv

    def num(x: float, fmt: str) -> str:
        return "" if np.isnan(x) else format(x, fmt)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["measurement", "images_per_s", "ratio", "against", "target", "ok",
                    "forwards", "seconds", "peak_gpu_mb", *meta.keys()])
        for r in rows:
            w.writerow([r.name, num(r.images_per_s, ".1f"), num(r.ratio, ".4f"), r.against,
                        r.target, r.ok, r.forwards, num(r.seconds, ".2f"), num(r.peak_mb, ".0f"),
                        *meta.values()])
    tmp.replace(path)

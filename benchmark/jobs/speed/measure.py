"""``drkd-bench speed``: the harness's own cost next to the model's, measured side by side in one
process after a warm-up, as images per second (median of repeats).

Rows: the bare step (forward, backward, SGD on one fixed normalised batch: the limit); the
harness's full step for every method and DR-KD teacher source (augmentation included); the data
pipeline alone against torchvision's PIL transforms in a ``DataLoader`` with workers; one whole
KD epoch (``tfkd-self``) of the harness against a reference-style loop (PIL ``DataLoader``, a
separate teacher forward, per-batch ``.item()``) and against its compute limit (bare student step
plus one teacher forward on a fixed batch). Synthetic uint8 images of the dataset's shape are used
so that no download is needed; the cost does not depend on pixel values.

:func:`measure` runs three named steps over one :class:`Bench`: :func:`step_rows`,
:func:`pipeline_rows` and :func:`epoch_rows`.
"""
from __future__ import annotations

import functools
import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

import methods
from benchmark import config, models
from benchmark import data as data_mod
from benchmark.jobs import train

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


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def rates(cases: dict[str, Callable[[], int]], dev: torch.device, repeats: int,
          warmup: int = 1) -> dict[str, float]:
    """Median images/s of each case (a function returning the images it processed). The cases
    are interleaved round by round, so a slow spell of a noisy machine hits them all alike."""
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    sync(dev)
    out: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            n = fn()
            sync(dev)
            out[name].append(n / (time.perf_counter() - start))
    return {name: statistics.median(v) for name, v in out.items()}


def _model(arch: str, d: data_mod.TensorData, dev: torch.device, channels_last: bool):
    torch.manual_seed(0)
    c, h, _ = d.image_shape
    m = models.build(arch, c, d.num_classes, h).to(dev)
    return m.to(memory_format=torch.channels_last) if channels_last else m


def _optimizer(model) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)


def harness_steps(run: train.Run, d: data_mod.TensorData, steps: int) -> int:
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


@dataclass
class Bench:
    """What every measurement of one architecture shares: the device, the synthetic data, its
    pipeline, one fixed normalised batch, a teacher model and the measurement's sizes."""

    dataset: str
    arch: str
    batch: int
    steps: int
    repeats: int
    images: int  # the data pipeline's and the epochs' images
    dev: torch.device
    d: data_mod.TensorData
    pipeline: data_mod.Pipeline
    teacher_model: torch.nn.Module
    fixed_x: torch.Tensor
    fixed_y: torch.Tensor

    @property
    def cuda(self) -> bool:
        return self.dev.type == "cuda"

    @property
    def warmup(self) -> int:
        return 1 if self.repeats > 1 else 0  # --repeats 1 is a smoke run: no warm-up call either


def measure(dataset: str = "fashion-mnist", arch: str | None = None, batch: int = 128,
            steps: int = 20, repeats: int = 3, epoch_images: int = 10_000, workers: int = 2,
            device: str | None = None, compile: bool = False,
            say: Callable[[str], None] = lambda s: None) -> list[Row]:
    """Every row for one architecture (see the module's docstring); with ``compile``, the CE
    step compiled by ``torch.compile``: its compile time, its rate, and whether a whole run of
    the paper's length (200 epochs of the dataset) is faster with it, compile time included."""
    dev = train.resolve_device(device)
    cuda = dev.type == "cuda"
    arch = arch or data_mod.get_spec(dataset).default_arch
    d = synthetic(dataset, max(epoch_images, batch * steps)).to(dev)
    pipeline = data_mod.Pipeline(d, channels_last=cuda)
    b = Bench(dataset, arch, batch, steps, repeats, epoch_images, dev, d, pipeline,
              _model(arch, d, dev, cuda).eval(), pipeline.normalize(d.train_x[:batch]),
              d.train_y[:batch])
    loader = reference_loader(d, batch, workers)
    return step_rows(b, compile, say) + pipeline_rows(b, loader, say) + epoch_rows(b, loader, say)


def step_rows(b: Bench, compile: bool, say) -> list[Row]:
    """The bare step (one fixed batch: the limit), the harness's step for every method and
    teacher source against it, the evaluation forward, and the compiled CE step when asked."""
    model = _model(b.arch, b.d, b.dev, b.cuda)
    opt = _optimizer(model)

    def bare() -> int:
        model.train()
        for _ in range(b.steps):
            with torch.autocast(b.dev.type, torch.bfloat16, enabled=b.cuda):
                loss = F.cross_entropy(model(b.fixed_x).float(), b.fixed_y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return b.steps * b.batch

    cases: dict[str, Callable[[], int]] = {"bare": bare}
    forwards: dict[str, str] = {}
    for label, name, hp in variants():
        spec = config.make_spec(b.dataset, b.arch, name, 0, hp,
                                {"batch_size": b.batch, "epochs": 1})
        run = train.build(spec, b.d, b.dev, b.teacher_model, amp=b.cuda, channels_last=b.cuda)
        cases[label] = functools.partial(harness_steps, run, b.d, b.steps)
        extra = run.teacher is not None and run.teacher.extra_forward
        student = run.plan.forwarded_per_step() / b.batch
        forwards[label] = f"{student:g}+{int(extra)}"
    eval_x = b.d.train_x[: min(len(b.d.train_x), 1000)]

    def evaluation() -> int:
        train.predict(model, eval_x, b.pipeline, amp=b.cuda)
        return len(eval_x)

    cases["evaluation"] = evaluation
    say("steps: bare and harness for every method and teacher source, interleaved")
    r = rates(cases, b.dev, b.repeats, b.warmup)
    mem = peaks(cases, b.dev)
    rows = [Row("bare step (limit)", r["bare"], peak_mb=mem["bare"]),
            Row("harness step: ce", r["ce"], "bare step", r["ce"] / r["bare"], ">= 0.95",
                forwards["ce"], peak_mb=mem["ce"])]
    for label in forwards:
        if label == "ce":
            continue
        target = STEP_TARGETS.get(label.split(" (")[-1].rstrip(")"), ">= 0.95")
        if forwards[label] != "1+0" and "(" not in label:
            target = ""  # forwards twice the images per step by design: no target, shown
        rows.append(Row(f"harness step: {label}", r[label], "harness ce", r[label] / r["ce"],
                        target, forwards[label], peak_mb=mem[label]))
    images = TRAIN_IMAGES[b.dataset]
    rows.append(Row(f"ce epoch: {images:,} training images at the harness ce step rate",
                    r["ce"], seconds=images / r["ce"], target="<= 5 s" if b.cuda else ""))
    rows.append(Row("evaluation forward (no gradient)", r["evaluation"],
                    peak_mb=mem["evaluation"]))
    if compile:
        say("compiled ce step: compile time and rate")
        rows += _compiled(b.dataset, b.arch, b.batch, b.steps, b.repeats, b.d, b.dev, r["ce"])
    if "drkd (ema)" in r and "drkd (pretrained)" in r:
        rows.append(Row("harness step: drkd (ema) vs drkd (pretrained)", r["drkd (ema)"],
                        "drkd (pretrained)", r["drkd (ema)"] / r["drkd (pretrained)"], ">= 0.95",
                        forwards["drkd (ema)"]))
    return rows


def pipeline_rows(b: Bench, loader, say) -> list[Row]:
    """The data pipeline alone: the harness's batched uint8 tensors against a PIL DataLoader."""
    n, batch, dev = b.images, b.batch, b.dev
    gen = torch.Generator(dev).manual_seed(0)

    def ours() -> int:
        perm = torch.randperm(n, device=dev, generator=gen)
        for i in range(n // batch):
            b.pipeline.train(b.d.train_x[perm[i * batch:(i + 1) * batch]], gen)
        return (n // batch) * batch

    def pil() -> int:
        count = 0
        for x, _y in loader:
            x.to(dev, non_blocking=True)
            count += len(x)
        return count

    say("data pipeline: harness and PIL DataLoader")
    r = rates({"ours": ours, "pil": pil}, dev, b.repeats, b.warmup)
    return [Row("data pipeline: PIL DataLoader (reference)", r["pil"]),
            Row("data pipeline: harness batched tensors", r["ours"], "PIL DataLoader",
                r["ours"] / r["pil"], ">= 5")]


def epoch_rows(b: Bench, loader, say) -> list[Row]:
    """One whole tfkd-self epoch: the harness against a reference-style loop (fp32, default
    memory layout, a PIL DataLoader) and against the compute limit (bare step + teacher
    forward on one fixed batch)."""
    n, batch, dev, d = b.images, b.batch, b.dev, b.d
    method = methods.get("tfkd-self")
    kw = method.loss_kwargs(method.resolve({}))
    spec = config.make_spec(b.dataset, b.arch, "tfkd-self", 0, {},
                            {"batch_size": batch, "epochs": 1})
    epoch_run = train.build(spec, d, dev, b.teacher_model, amp=b.cuda, channels_last=b.cuda)

    def harness_epoch() -> int:
        train.train_epoch(epoch_run.step, d.train_x, d.train_y, epoch_run.plan)
        return epoch_run.plan.steps * batch

    ref_model = _model(b.arch, d, dev, False)
    ref_teacher = _model(b.arch, d, dev, False).eval()
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

    student = _model(b.arch, d, dev, b.cuda)
    limit_opt = _optimizer(student)

    def limit_epoch() -> int:
        student.train()
        for _ in range(n // batch):
            with torch.autocast(dev.type, torch.bfloat16, enabled=b.cuda):
                loss = F.cross_entropy(student(b.fixed_x).float(), b.fixed_y)
            with torch.inference_mode():
                with torch.autocast(dev.type, torch.bfloat16, enabled=b.cuda):
                    b.teacher_model(b.fixed_x)
            limit_opt.zero_grad(set_to_none=True)
            loss.backward()
            limit_opt.step()
        return (n // batch) * batch

    say("tfkd-self epochs: reference-style loop, compute limit, harness, interleaved")
    r = rates({"ref": reference_epoch, "limit": limit_epoch, "ours": harness_epoch}, dev,
              max(1, b.repeats - 1), warmup=0)
    return [Row("tfkd-self epoch: reference-style loop", r["ref"]),
            Row("tfkd-self epoch: compute limit (bare step + teacher forward)", r["limit"]),
            Row("tfkd-self epoch: harness vs reference", r["ours"], "reference-style loop",
                r["ours"] / r["ref"], ">= 1.2"),
            Row("tfkd-self epoch: harness vs limit", r["ours"], "compute limit",
                r["ours"] / r["limit"], ">= 0.87")]


def _compiled(dataset: str, arch: str, batch: int, steps: int, repeats: int,
              d: data_mod.TensorData, dev: torch.device, eager_rate: float) -> list[Row]:
    cuda = dev.type == "cuda"
    spec = config.make_spec(dataset, arch, "ce", 0, {},
                            {"batch_size": batch, "epochs": 1, "compile": True})
    run = train.build(spec, d, dev, None, amp=cuda, channels_last=cuda)

    harness = functools.partial(harness_steps, run, d, steps)
    started = time.perf_counter()
    harness()  # compiles
    sync(dev)
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

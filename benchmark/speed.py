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

import itertools
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

from . import config, models, train
from . import data as data_mod

SHAPES = {"digits": (1, 8), "fashion-mnist": (1, 28), "cifar10": (3, 32), "cifar100": (3, 32),
          "tiny-imagenet": (3, 64)}
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
        else:
            out.append((name, name, {}))
    return out


@dataclass
class Row:
    """``forwards``: images the student forwards per trained image, + a separate teacher's."""

    name: str
    images_per_s: float
    against: str = ""
    ratio: float = float("nan")
    target: str = ""
    forwards: str = ""

    @property
    def ok(self) -> str:
        if not self.target:
            return ""
        op, value = self.target.split(" ")
        return "yes" if self.ratio >= float(value) else "NO"


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


def measure(dataset: str = "fashion-mnist", arch: str | None = None, batch: int = 128,
            steps: int = 20, repeats: int = 3, epoch_images: int = 10_000, workers: int = 2,
            device: str | None = None, say: Callable[[str], None] = lambda s: None) -> list[Row]:
    dev = train.resolve_device(device)
    cuda = dev.type == "cuda"
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

        def harness(run=run) -> int:
            run.model.train()
            for batch_ in itertools.islice(run.plan.epoch(), steps):
                run.step(d.train_x, d.train_y, batch_)
            return steps * batch

        cases[label] = harness
        extra = run.teacher is not None and run.teacher.extra_forward
        student = run.plan.forwarded_per_step() / batch
        forwards[label] = f"{student:g}+{int(extra)}"
    say("steps: bare and harness for every method and teacher source, interleaved")
    r = rates(cases, dev, repeats)
    rows.append(Row("bare step (limit)", r["bare"]))
    rows.append(Row("harness step: ce", r["ce"], "bare step", r["ce"] / r["bare"], ">= 0.95",
                    forwards["ce"]))
    for label in forwards:
        if label == "ce":
            continue
        target = STEP_TARGETS.get(label.split(" (")[-1].rstrip(")"), ">= 0.95")
        if forwards[label] != "1+0" and "(" not in label:
            target = ""  # forwards twice the images per step by design: no target, shown
        rows.append(Row(f"harness step: {label}", r[label], "harness ce", r[label] / r["ce"],
                        target, forwards[label]))
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
    r = rates({"ours": ours, "pil": pil}, dev, repeats)
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

    ref_model = _model(arch, d, dev, cuda)
    ref_opt = _optimizer(ref_model)

    def reference_epoch() -> int:
        ref_model.train()
        count = 0
        for x, y in loader:
            x, y = x.to(dev), y.to(dev)
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(dev.type, torch.bfloat16, enabled=cuda):
                out = ref_model(x).float()
            with torch.no_grad():
                with torch.autocast(dev.type, torch.bfloat16, enabled=cuda):
                    t_out = teacher_model(x).float()
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
    lines = [f"{'measurement':<62} {'images/s':>10} {'ratio':>7}  {'target':<8} ok  "
             f"{'fwd':<5} against"]
    for r in rows:
        ratio = "" if np.isnan(r.ratio) else f"{r.ratio:.3f}"
        lines.append(f"{r.name:<62} {r.images_per_s:>10.0f} {ratio:>7}  {r.target:<8} "
                     f"{r.ok:<3} {r.forwards:<5} {r.against}")
    return "\n".join(lines)


def write_csv(rows: list[Row], path: Path, meta: dict) -> None:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["measurement", "images_per_s", "ratio", "against", "target", "ok",
                    "forwards", *meta.keys()])
        for r in rows:
            w.writerow([r.name, f"{r.images_per_s:.1f}",
                        "" if np.isnan(r.ratio) else f"{r.ratio:.4f}", r.against, r.target,
                        r.ok, r.forwards, *meta.values()])
    tmp.replace(path)

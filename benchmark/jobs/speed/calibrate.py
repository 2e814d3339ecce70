"""``drkd-bench speed --calibrate``: on the chip at hand, the training step of each architecture
in fp32 and bf16, contiguous and channels_last (and under ``torch.compile`` when asked), side by
side in one process on one thread (a grid's worker trains on one), interleaved round by round
after a warm-up; the chip's own matmul peak in fp32 and, where it has bf16 units, bf16; achieved
FLOP/s from torch's flop counter. The choices (:func:`benchmark.store.calibration.choose`) are
cached per chip and read by every later command. Then the split of the machine's cores into
worker processes x threads: each split trains the chosen path in all its processes at once, and
the one with the most images per second is the grid's default (:func:`measure_splits`).
"""
from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from benchmark import models
from benchmark.store import calibration, provenance

#: Each architecture's paths share this many seconds of timed rounds (at least one step each):
#: a path 20x slower than fp32 (bf16 on a chip without bf16 units) is timed once, not for minutes.
BUDGET_SECONDS = 6.0
ROUNDS = 5
#: The longest fp32 step a calibration times: a larger student (resnet18 at 64 px: ~25 s a step
#: at batch 128 on one core) is timed at a smaller batch (a power of two, at least
#: :data:`MIN_BATCH`, the batch it used is in its row), estimated from a probe at that batch.
STEP_SECONDS = 0.5
MIN_BATCH = 8


def batch_for(arch: str, channels: int, size: int, classes: int, batch: int) -> int:
    """``batch``, or a smaller power of two whose fp32 step is estimated at most
    :data:`STEP_SECONDS` from one probe step at :data:`MIN_BATCH` (after its warm-up)."""
    if batch <= MIN_BATCH:
        return batch
    probe = _step(arch, channels, size, classes, MIN_BATCH, "fp32", "contiguous")
    probe()
    per_image = _time(probe) / MIN_BATCH
    if per_image * batch <= STEP_SECONDS:
        return batch
    fits = max(MIN_BATCH, int(STEP_SECONDS / per_image))
    return 1 << (fits.bit_length() - 1)


def _step(arch: str, channels: int, size: int, classes: int, batch: int, precision: str,
          fmt: str, compiled: bool = False) -> Callable[[], None]:
    """One SGD training step of ``arch`` on a fixed normalised batch, in ``precision`` and
    memory format ``fmt``."""
    torch.manual_seed(0)
    model = models.build(arch, channels, classes, size)
    x = torch.randn(batch, channels, size, size)
    y = torch.randint(0, classes, (batch,))
    if fmt == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    forward = torch.compile(model) if compiled else model
    amp = precision == "bf16"

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(forward(x), y)
        loss.backward()
        opt.step()

    return step


def step_flops(arch: str, channels: int, size: int, classes: int, batch: int) -> float:
    """Floating-point operations of one training step: torch's count of the forward, times 3 (the
    backward's two products per forward one, the usual rule). The backward is not counted
    directly: torch's counter charges a grouped convolution's backward as if ungrouped (64x for
    a depthwise 64-channel 3x3: 153 MFLOP against 4.7), which put MobileNetV2 at 3x the
    chip's peak."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model = models.build(arch, channels, classes, size)
    x = torch.randn(batch, channels, size, size)
    y = torch.randint(0, classes, (batch,))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        F.cross_entropy(model(x), y)
    return 3.0 * counter.get_total_flops()


def timed(cases: dict[str, Callable[[], None]], budget: float = BUDGET_SECONDS,
          rounds: int = ROUNDS, sample: float = 0.05) -> dict[str, float]:
    """Median seconds per call of each case: one warm-up call each (which also sizes a sample:
    enough calls to last ``sample`` seconds, so a 2 ms step is not timed by one call), then
    rounds that run every case in turn (a slow spell of a busy machine hits them all alike),
    until ``rounds`` rounds or ``budget`` seconds, whichever comes first (never fewer than one
    round)."""
    calls = {name: max(1, math.ceil(sample / max(_time(fn), 1e-6))) for name, fn in cases.items()}
    samples: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    start = time.perf_counter()
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:  # no case always first
            fn = cases[name]
            t = time.perf_counter()
            for _ in range(calls[name]):
                fn()
            samples[name].append((time.perf_counter() - t) / calls[name])
        if time.perf_counter() - start > budget:
            break
    return {name: statistics.median(v) for name, v in samples.items()}


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of an n x n matmul on one thread: the chip's own reachable peak for ``dtype``."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    best = min(_time(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _time(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def has_bf16_units() -> bool:
    """Whether the chip has bf16 arithmetic (AVX-512 BF16 or AMX): without it bf16 is emulated."""
    return bool({"avx512_bf16", "amx_bf16"} & set(provenance.cpu_flags().split()))


def calibrate(shapes: list[tuple[str, int, int, int]], batch: int = 128, compile: bool = False,
              say: Callable[[str], None] = lambda s: None) -> list[dict]:
    """One row per (arch, channels, size, classes): each path's step time, the choices, the
    achieved GFLOP/s of the chosen path and its share of the measured peak. Runs on one thread
    and restores the thread count after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        say("matmul peak (fp32" + (", bf16" if has_bf16_units() else "") + ")")
        peaks = {"fp32": matmul_peak(torch.float32)}
        if has_bf16_units():
            peaks["bf16"] = matmul_peak(torch.bfloat16)
        rows = []
        for arch, channels, size, classes in shapes:
            size_batch = batch_for(arch, channels, size, classes, batch)
            say(f"{arch} at {channels}x{size}x{size}, batch {size_batch}")
            cases = {f"{p}/{f}": _step(arch, channels, size, classes, size_batch, p, f)
                     for p, f in calibration.PATHS}
            if compile:
                cases["fp32/contiguous+compile"] = _step(arch, channels, size, classes,
                                                         size_batch, "fp32", "contiguous",
                                                         compiled=True)
            seconds = timed(cases)
            chosen = calibration.choose({k: v for k, v in seconds.items() if "+" not in k})
            flops = step_flops(arch, channels, size, classes, size_batch)
            peak = peaks.get(chosen["precision"], peaks["fp32"])
            gflops = flops / seconds[chosen["path"]] / 1e9
            rows.append({"arch": arch, "channels": channels, "size": size, "batch": size_batch,
                         "seconds": seconds, **chosen, "gflops": gflops, "peak_gflops": peak,
                         "peak_share": gflops / peak, "step_gflop": flops / 1e9,
                         "threads": 1, "classes": classes})
        return rows
    finally:
        torch.set_num_threads(threads)


def workers_for(cells) -> int | None:
    """The calibrated worker count for a grid's ``cells``: that of the architecture and input
    shape most of them train (None where this chip has no split measured for it)."""
    from collections import Counter

    from benchmark.jobs.speed.measure import SHAPES

    counts = Counter((SHAPES.get(c.data.name), c.arch) for c in cells)
    for (shape, arch), _ in counts.most_common():
        if shape is not None:
            return calibration.workers(*shape, arch)
    return None


#: Seconds each process of a split trains after its warm-up step.
SPLIT_SECONDS = 1.5


def splits(cores: int) -> list[tuple[int, int]]:
    """Every (processes, threads) whose product is ``cores``, most processes first."""
    return [(p, cores // p) for p in range(cores, 0, -1) if cores % p == 0]


def _split_worker(job: tuple) -> tuple[int, float]:
    """In a worker of a split: (steps trained, seconds) of the chosen path over ``seconds``
    after one warm-up step, on ``threads`` threads."""
    arch, channels, size, classes, batch, precision, fmt, threads, seconds = job
    torch.set_num_threads(threads)
    step = _step(arch, channels, size, classes, batch, precision, fmt)
    step()
    n, start = 0, time.perf_counter()
    while n == 0 or time.perf_counter() - start < seconds:
        step()
        n += 1
    return n, time.perf_counter() - start


def measure_splits(rows: list[dict], cores: int, seconds: float = SPLIT_SECONDS,
                   say: Callable[[str], None] = lambda s: None) -> list[dict]:
    """``rows`` (from :func:`calibrate`) with ``splits`` (``"PxT"`` -> images per second of
    the whole machine, P processes of T threads training at once) and ``workers`` (the P of
    the fastest split; ties go to more processes). One pool per split serves every row."""
    import multiprocessing

    if cores < 2 or not rows:
        return [{**r, "splits": {}, "workers": 1} for r in rows]
    found: dict[int, dict[str, float]] = {i: {} for i in range(len(rows))}
    ctx = multiprocessing.get_context("spawn")
    for p, t in splits(cores):
        say(f"{p} process(es) x {t} thread(s)")
        with ctx.Pool(p) as pool:
            for i, r in enumerate(rows):
                precision, fmt = r["path"].split("/")
                job = (r["arch"], r["channels"], r["size"], r["classes"], r["batch"],
                       precision, fmt, t, seconds)
                done = pool.map(_split_worker, [job] * p, chunksize=1)
                found[i][f"{p}x{t}"] = sum(n * r["batch"] / s for n, s in done)
    out = []
    for i, r in enumerate(rows):
        best = max(found[i], key=lambda k: (found[i][k], int(k.split("x")[0])))
        out.append({**r, "splits": found[i], "workers": int(best.split("x")[0])})
    return out


def default_shapes() -> list[tuple[str, int, int, int]]:
    """(arch, channels, size, classes) of every student of the shipped configs, once each."""
    from benchmark import config, data
    from benchmark.jobs.speed.measure import SHAPES

    out = {}
    for name in sorted(config.shipped_configs()):
        try:
            cfg = config.load_grid(name)
        except Exception:  # noqa: BLE001 - a config that needs a plugin or data not here
            continue
        for _, ds, arch in cfg.tasks():
            if ds.name in SHAPES and not arch.startswith("timm:"):
                c, s = SHAPES[ds.name]
                out.setdefault((arch, c, s), data.get_spec(ds.name).num_classes)
    return [(a, c, s, k) for (a, c, s), k in sorted(out.items())]



def table(rows: list[dict]) -> str:
    """The calibration as a text table: each path's step time, the chosen path, its speed-up
    over fp32 contiguous, achieved GFLOP/s and share of the measured peak."""
    paths = [f"{p}/{f}" for p, f in calibration.PATHS]
    extra = sorted({k for r in rows for k in r["seconds"]} - set(paths))
    short = [p.replace("channels_last", "cl").replace("contiguous", "contig")
             for p in paths + extra]
    head = ["arch", "input", "batch"] + short + ["chosen", "speed-up", "GFLOP/s", "peak",
                                                 "% peak", "workers"]
    lines = [head]
    for r in rows:
        lines.append([r["arch"], f"{r['channels']}x{r['size']}", str(r["batch"])]
                     + [f"{1000 * r['seconds'][p]:.1f}" if p in r["seconds"] else "-"
                        for p in paths + extra]
                     + [r["path"], f"{r['speedup']:.2f}x", f"{r['gflops']:.1f}",
                        f"{r['peak_gflops']:.0f}", f"{100 * r['peak_share']:.0f}%",
                        _split_text(r)])
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(str(v).rjust(w) for v, w in zip(line, widths)) for line in lines)


def _split_text(r: dict) -> str:
    """'2x1 (2x1 5400/s, 1x2 3900/s)': the chosen split and each split's images per second."""
    found = r.get("splits") or {}
    if not found:
        return "-"
    chosen = next(k for k in found if k.split("x")[0] == str(r["workers"]))
    return chosen + " (" + ", ".join(f"{k} {v:.0f}/s" for k, v in found.items()) + ")"


def precisions(cfg) -> dict[tuple[str, str], str]:
    """What ``train.precision: auto`` resolves to for each task of ``cfg`` set to it, on this
    chip (fp32 where the chip was never calibrated for the architecture at the data's shape)."""
    return {(d, arch): resolve_one(ds.name, arch, "auto")[0] for d, ds, arch in cfg.tasks()
            if cfg.asked_precision(d, arch) == "auto"}


def slower_bf16(cfg) -> list[str]:
    """One warning line per task set to bf16 by hand where this chip measured bf16 slower than
    fp32 for the architecture (with the measured ratio)."""
    lines = []
    for d, ds, arch in cfg.tasks():
        if cfg.asked_precision(d, arch) == "bf16":
            _, warning = resolve_one(ds.name, arch, "bf16", task=d)
            if warning:
                lines.append(warning)
    return lines


def resolve_one(dataset: str, arch: str, precision: str,
                task: str | None = None) -> tuple[str, str | None]:
    """(the precision one run of ``arch`` on ``dataset`` trains in, a warning line or None):
    ``auto`` resolved as for a grid; ``bf16`` kept, with a warning where it measured slower
    (naming ``task``, a grid's data name, or the dataset)."""
    from benchmark.jobs.speed.measure import SHAPES

    shape = SHAPES.get(dataset)
    if precision == "auto":
        return (calibration.auto_precision(*shape, arch) if shape else "fp32"), None
    if precision == "bf16" and shape:
        ratio = calibration.bf16_ratio(*shape, arch)
        if ratio is not None and ratio < 1:
            return precision, (f"train.precision: bf16 for {task or dataset}/{arch}: this chip's "
                               f"calibration measured bf16 {1 / ratio:.1f}x slower than fp32 "
                               f"(ratio {ratio:.2f}); precision: auto would train fp32 here")
    return precision, None


def write_csv(rows: list[dict], sig: dict[str, str], path) -> None:
    """One line per architecture and path: step seconds, whether it is the chosen one, and the
    chip (the figures a benchmark commits: measured here, never asserted by a test)."""
    import csv

    fields = ["arch", "channels", "size", "batch", "path", "step_seconds", "chosen",
              "speedup_over_fp32_contiguous", "gflops_chosen", "peak_gflops", *sig]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for r in rows:
            base = r["seconds"]["fp32/contiguous"]
            for p, seconds in r["seconds"].items():
                writer.writerow({"arch": r["arch"], "channels": r["channels"],
                                 "size": r["size"], "batch": r["batch"], "path": p,
                                 "step_seconds": f"{seconds:.6g}",
                                 "chosen": p == r["path"],
                                 "speedup_over_fp32_contiguous": f"{base / seconds:.4g}",
                                 "gflops_chosen": f"{r['gflops']:.4g}",
                                 "peak_gflops": f"{r['peak_gflops']:.4g}", **sig})

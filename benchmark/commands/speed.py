"""``drkd-bench speed``: measure the harness's overhead against the bare model step."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmark.commands.common import UsageError, check_device


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("speed", help="measure the harness's overhead against the bare model step",
                       description="Images per second, side by side in one process after a "
                                   "warm-up (median of repeats): bare step, the harness's step "
                                   "per method, the data pipeline against torchvision's PIL "
                                   "DataLoader, and a whole tfkd-self epoch against a "
                                   "reference-style loop and its compute limit. Prints a table "
                                   "of ratios and writes it as CSV under RESULTS/.")
    p.add_argument("--dataset", default="fashion-mnist", help="the data's shape and classes "
                                                              "(synthetic images; default "
                                                              "fashion-mnist)")
    p.add_argument("--arch", action="append", help="an architecture to measure; repeat for "
                                                   "several (default: the dataset's default)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=20, help="steps per timed repeat")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats per case, after one "
                   "warm-up call (1: a smoke run without warm-up)")
    p.add_argument("--epoch-images", type=int, default=10_000, help="images in the epoch "
                                                                    "comparison")
    p.add_argument("--loader-workers", type=int, default=2, help="DataLoader workers of the "
                                                                 "reference pipeline")
    p.add_argument("--device", default="auto", help="cpu or cuda (default: cuda if available)")
    p.add_argument("--compile", nargs="?", const="all", metavar="ARCH,...",
                   help="also the CE step under torch.compile: compile time, rate, and whether "
                        "a 200-epoch run gains, compile included (every measured architecture, "
                        "or only those listed)")
    p.add_argument("--cells-per-gpu", metavar="K,K,...", help="also the aggregate rate of K CE "
                   "cells training at once on the device (one process each), e.g. 1,2,3,4")
    p.add_argument("--project", metavar="CONFIG", help="also the projected wall time of this "
                   "grid config on 1 and 8 GPUs from these measurements (every architecture of "
                   "the grid must be measured)")
    p.add_argument("--calibrate", action="store_true",
                   help="instead: time the training step of each architecture in fp32 and bf16, "
                        "contiguous and channels_last (one thread, side by side), with the "
                        "chip's matmul peak; cache the fastest path per architecture for this "
                        "chip (the grid, tune and train then use it: channels_last where "
                        "faster, and train.precision: auto). Default architectures: every "
                        "student of the shipped configs, at its dataset's shape; --arch (with "
                        "--dataset) picks others")
    p.add_argument("--json", metavar="FILE", help="with --calibrate: also write the table as a "
                                                  "JSON list of objects")
    p.add_argument("--results", default="results")
    return p


def run(args) -> int:
    from benchmark import config, data, models
    from benchmark.jobs import speed

    if args.calibrate:
        return _calibrate(args)
    if args.json:
        raise UsageError("--json goes with --calibrate")
    check_device(args.device)
    if args.dataset not in speed.SHAPES:
        raise UsageError(f"--dataset {args.dataset!r}: choose one of: {', '.join(speed.SHAPES)}")
    archs = args.arch or [data.get_spec(args.dataset).default_arch]
    for arch in archs:
        models.check(arch)
    for flag in ("batch", "steps", "repeats", "epoch_images"):
        if getattr(args, flag) < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be >= 1")
    if args.epoch_images < args.batch:
        raise UsageError("--epoch-images must be at least --batch")
    ks: list[int] = []
    if args.cells_per_gpu:
        try:
            ks = sorted({int(k) for k in args.cells_per_gpu.split(",")})
        except ValueError:
            raise UsageError(f"--cells-per-gpu {args.cells_per_gpu!r}: expected integers "
                             "such as 1,2,3,4") from None
        if ks[0] < 1:
            raise UsageError("--cells-per-gpu: every K must be >= 1")
    compiled = [] if args.compile in (None, "all") else args.compile.split(",")
    if set(compiled) - set(archs):
        raise UsageError(f"--compile {args.compile}: not among the measured architectures "
                         f"({', '.join(archs)})")
    if args.project:
        cfg = config.load_grid(args.project)
        missing = sorted(set(cfg.architectures) - set(archs))
        if missing:
            raise UsageError(f"--project {args.project}: measure every architecture of the grid "
                             f"too (missing --arch {' --arch '.join(missing)})")
    import torch

    from benchmark.jobs.train import device_name, resolve_device

    dev = resolve_device(args.device)
    started = time.perf_counter()
    say = lambda s: print(f"  measuring {s} ...", file=sys.stderr, flush=True)  # noqa: E731
    measured = {}
    for arch in archs:
        rows = speed.measure(args.dataset, arch, args.batch, args.steps, args.repeats,
                             args.epoch_images, args.loader_workers, args.device,
                             compile=args.compile == "all" or arch in compiled, say=say)
        if ks:
            rows += speed.cells_per_device(args.dataset, arch, args.batch, args.steps,
                                           args.repeats, ks, args.device, say=say)
        measured[arch] = rows
        meta = {"dataset": args.dataset, "arch": arch, "batch": args.batch,
                "device": device_name(dev), "threads": torch.get_num_threads(),
                "data": speed.DATA_NOTE, "torch": torch.__version__}
        print(f"drkd-bench speed: {args.dataset}-shaped synthetic data, {arch}, batch "
              f"{args.batch}, {device_name(dev)}, {torch.get_num_threads()} threads")
        print(speed.table(rows))
        path = Path(args.results) / f"speed_{args.dataset}_{arch.replace(':', '-')}_{dev.type}.csv"
        speed.write_csv(rows, path, meta)
        print(f"written to {path}")
    if args.project:
        rows = speed.project(cfg, measured)
        print(speed.table(rows))
        for r in rows:
            print(f"  {r.name}: {r.seconds / 3600:.2f} h")
        path = Path(args.results) / f"speed_projection_{cfg.name}_{dev.type}.csv"
        speed.write_csv(rows, path, {"dataset": args.dataset, "archs": "+".join(archs),
                                     "device": device_name(dev), "data": speed.DATA_NOTE})
        print(f"written to {path}")
    print(f"peak resident memory {speed.peak_rss_mb():.0f} MB; "
          f"{time.perf_counter() - started:.0f}s")
    return 0


def _calibrate(args) -> int:
    import json

    from benchmark import data, models
    from benchmark.commands.common import writable
    from benchmark.jobs import speed
    from benchmark.jobs.speed import calibrate
    from benchmark.store import calibration
    from benchmark.store.runtime import cores

    if args.batch < 1:
        raise UsageError("--batch must be >= 1")
    if args.arch:
        if args.dataset not in speed.SHAPES:
            raise UsageError(f"--dataset {args.dataset!r}: choose one of: "
                             f"{', '.join(speed.SHAPES)}")
        for arch in args.arch:
            models.check(arch)
        c, s = speed.SHAPES[args.dataset]
        shapes = [(a, c, s, data.get_spec(args.dataset).num_classes) for a in args.arch]
    else:
        shapes = calibrate.default_shapes()
    if args.json:
        writable(Path(args.json).parent)
    started = time.perf_counter()
    say = lambda s: print(f"  calibrating {s} ...", file=sys.stderr, flush=True)  # noqa: E731
    rows = calibrate.calibrate(shapes, args.batch, compile=args.compile is not None, say=say)
    rows = calibrate.measure_splits(rows, cores(), say=say)
    kept = calibration.save({calibration.key(r["channels"], r["size"], r["arch"]): r
                             for r in rows})
    sig = calibration.signature()
    print(f"drkd-bench speed --calibrate: {sig['cpu_vendor']} {sig['cpu']} (torch CPU "
          f"capability {sig['cpu_capability']}; {sig['cpu_flags'] or 'no listed ISA flags'}), "
          f"1 thread, batch {args.batch} (smaller where a step would pass 0.5 s); step time in ms; "
          f"workers: the split of the {cores()} cores into processes x threads with the "
          "most images per second (the grid's default)")
    print(calibrate.table(rows))
    print(f"cached for this chip in {kept}" if kept else
          "not cached (DRKD_CACHE=off): later commands train contiguous and fp32")
    if args.json:
        out = [{**r, "signature": sig} for r in rows]
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
        print(f"written to {args.json}")
    csv = Path(args.results) / "speed_calibration.csv"
    writable(csv.parent)
    calibrate.write_csv(rows, sig, csv)
    print(f"written to {csv}")
    print(f"{time.perf_counter() - started:.0f}s")
    return 0

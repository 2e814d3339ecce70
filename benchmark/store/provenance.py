"""What every run records about where it ran: the chip, torch's CPU capability, the library
versions, the host and the commit."""
from __future__ import annotations

import getpass
import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The processor's model name (the CPU kernels, and so the last bits of a result, depend on
    it), as Linux reports it; the platform's word elsewhere."""
    return _cpuinfo("model name") or platform.processor() or "unknown"


#: The instruction-set flags that decide which kernels (and so which roundings) a chip runs.
ISA_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
             "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")
def _cpuinfo(field: str) -> str:
    """The first value of ``field`` in /proc/cpuinfo ("" where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(field):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


@lru_cache(maxsize=1)
def cpu_vendor() -> str:
    """The processor's maker as Linux reports it (GenuineIntel, AuthenticAMD, ...)."""
    return _cpuinfo("vendor_id") or platform.machine() or "unknown"


@lru_cache(maxsize=1)
def cpu_flags() -> str:
    """The chip's ISA flags among :data:`ISA_FLAGS`, space-separated ("" where unknown): a model
    name does not identify them (the same "AMD EPYC" string names AVX2-only and AVX-512 chips)."""
    have = set(_cpuinfo("flags").split())
    return " ".join(f for f in ISA_FLAGS if f in have)


@lru_cache(maxsize=1)
def onednn_version() -> str:
    """The oneDNN (MKL-DNN) version torch was built with: its CPU convolutions and matmuls."""
    import re

    import torch

    found = re.search(r"(?:oneDNN|MKL-DNN) v([\d.]+)", torch.__config__.show())
    return found.group(1) if found else "none"


def chip() -> dict[str, str]:
    """What decides a run's numbers on this machine: the chip (vendor, model, torch's CPU
    capability, ISA flags) and the numerics libraries' versions, as run tags."""
    tags = {"cpu_vendor": cpu_vendor(), "cpu": cpu_model(), "cpu_capability": cpu_capability(),
            "cpu_flags": cpu_flags(), "version.onednn": onednn_version()}
    for pkg in ("torch", "numpy"):
        try:
            tags[f"version.{pkg}"] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return tags


def cpu_capability() -> str:
    """The instruction set whose kernels torch dispatches to here (AVX2, AVX512, ...): it sets
    the rounding of every sum, and a CPU model name does not fix it."""
    import torch

    return torch.backends.cpu.get_cpu_capability()


def provenance() -> dict[str, str]:
    """Git commit, package versions and platform, logged as tags with every run."""
    tags = {"python": platform.python_version(), "platform": platform.platform(), **chip()}
    for pkg in ("drkd-bench", "torch", "torchvision", "timm", "numpy", "mlflow", "optuna"):
        try:
            tags[f"version.{pkg}"] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    try:
        here = Path(__file__).resolve().parent
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                                text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True,
                               text=True, timeout=5).stdout.strip()
        if commit:
            tags["git_commit"] = commit + ("-dirty" if dirty else "")
            tags["mlflow.source.git.commit"] = commit  # MLflow's own column and filter
    except (OSError, subprocess.SubprocessError):
        pass
    tags["mlflow.source.name"] = "drkd-bench"
    tags["mlflow.source.type"] = "LOCAL"
    try:
        tags["mlflow.user"] = getpass.getuser()
    except (OSError, KeyError):
        pass
    return tags

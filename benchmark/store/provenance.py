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
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_capability() -> str:
    """The instruction set whose kernels torch dispatches to here (AVX2, AVX512, ...): it sets
    the rounding of every sum, and a CPU model name does not fix it."""
    import torch

    return torch.backends.cpu.get_cpu_capability()


def provenance() -> dict[str, str]:
    """Git commit, package versions and platform, logged as tags with every run."""
    tags = {"python": platform.python_version(), "platform": platform.platform(),
            "cpu": cpu_model(), "cpu_capability": cpu_capability()}
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

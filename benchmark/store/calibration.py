"""The chip's calibration, cached per chip: which memory format and precision train each
architecture fastest here (measured by ``drkd-bench speed --calibrate``), kept in the user's cache
folder under the chip's signature (vendor, model, ISA flags, torch's CPU capability, torch's
version), so a grid on another chip never reads this one's.

The rules that turn measurements into choices live here, one place for the grid, the tuner, the
re-scoring and ``train``:

- memory format: ``channels_last`` where it measured at least :data:`LAYOUT_GAIN` faster than
  contiguous in fp32, else contiguous;
- ``train.precision: auto``: ``bf16`` where the best bf16 path measured at least
  :data:`BF16_GAIN` faster than the best fp32 path, else ``fp32``.

Without a calibration for the chip at hand: contiguous and fp32 (what every run did before).
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from benchmark.store import provenance

#: channels_last only where it measured at least this much faster (a smaller gain is noise).
LAYOUT_GAIN = 1.05
#: ``precision: auto`` gives bf16 only where it measured at least this much faster.
BF16_GAIN = 1.2
#: The four paths a calibration times, as (precision, memory format).
PATHS = (("fp32", "contiguous"), ("fp32", "channels_last"), ("bf16", "contiguous"),
         ("bf16", "channels_last"))
FORMAT = 1  # the cache file's layout


def off() -> bool:
    """``DRKD_CACHE=off``: no cache, so no calibration is kept or read (contiguous, fp32)."""
    return os.environ.get("DRKD_CACHE", "").lower() in ("off", "0", "no")


def folder() -> Path:
    """``$DRKD_CACHE``, else ``$XDG_CACHE_HOME/drkd-bench``, else ``~/.cache/drkd-bench`` (the
    folder that also keeps the empty tracking store new stores copy)."""
    if os.environ.get("DRKD_CACHE") and not off():
        return Path(os.environ["DRKD_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "drkd-bench"


def signature() -> dict[str, str]:
    """What the measurements depend on: the chip and the torch build that runs on it."""
    from importlib import metadata

    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "none"
    return {"cpu_vendor": provenance.cpu_vendor(), "cpu": provenance.cpu_model(),
            "cpu_flags": provenance.cpu_flags(), "cpu_capability": provenance.cpu_capability(),
            "torch": torch_version}


def path_for(sig: Mapping[str, str]) -> Path:
    digest = hashlib.sha256(json.dumps(dict(sig), sort_keys=True).encode()).hexdigest()[:16]
    return folder() / f"calibration-{digest}.json"


def key(channels: int, size: int, arch: str) -> str:
    """An entry's key: the architecture at an input shape (the step's cost depends on both)."""
    return f"{arch}@{channels}x{size}"


def save(entries: Mapping[str, Mapping[str, Any]],
         sig: Mapping[str, str] | None = None) -> Path | None:
    """Merge ``entries`` into this chip's cache file (written whole, then renamed); None, and
    nothing written, with ``DRKD_CACHE=off``."""
    if off():
        return None
    sig = dict(sig or signature())
    path = path_for(sig)
    old = _read(path)
    merged = {**(old.get("entries", {}) if old.get("signature") == sig else {}), **entries}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"format": FORMAT, "signature": sig, "entries": merged},
                              indent=1, sort_keys=True))
    tmp.replace(path)
    load.cache_clear()
    return path


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("format") == FORMAT else {}


@lru_cache(maxsize=1)
def load() -> dict[str, dict]:
    """This chip's calibration entries ({} where it was never calibrated). A file whose
    signature is not this chip's is never read, whatever its name."""
    if off():
        return {}
    sig = signature()
    data = _read(path_for(sig))
    return dict(data.get("entries", {})) if data.get("signature") == sig else {}


def entry(channels: int, size: int, arch: str) -> dict | None:
    return load().get(key(channels, size, arch))


def choose(seconds: Mapping[str, float]) -> dict[str, Any]:
    """The choices from one architecture's step times (``"fp32/contiguous"`` -> seconds; a
    path that was not measured is absent): the fp32 memory format, the precision ``auto``
    resolves to, the path that gives, and its speed-up over fp32 contiguous."""
    base = seconds["fp32/contiguous"]
    fmt = "channels_last" if base / seconds.get("fp32/channels_last", base) >= LAYOUT_GAIN \
        else "contiguous"
    fp32_best = seconds[f"fp32/{fmt}"]
    bf16 = {p: s for p, s in seconds.items() if p.startswith("bf16/")}
    precision, path = "fp32", f"fp32/{fmt}"
    if bf16:
        best = min(bf16, key=bf16.get)
        if fp32_best / bf16[best] >= BF16_GAIN:
            precision, path = "bf16", best
    return {"memory_format": fmt, "precision": precision, "path": path,
            "speedup": base / seconds[path],
            "bf16_ratio": (fp32_best / min(bf16.values())) if bf16 else None}


def memory_format(channels: int, size: int, arch: str) -> str:
    """The memory format the CPU trains ``arch`` in at this input shape."""
    found = entry(channels, size, arch)
    return found["memory_format"] if found else "contiguous"


def auto_precision(channels: int, size: int, arch: str) -> str:
    """What ``train.precision: auto`` resolves to for ``arch`` at this input shape here."""
    found = entry(channels, size, arch)
    return found["precision"] if found else "fp32"


def workers(channels: int, size: int, arch: str) -> int | None:
    """The worker processes the fastest measured split of the cores runs ``arch`` in at this
    input shape (None where no split was measured here)."""
    found = entry(channels, size, arch)
    return int(found["workers"]) if found and found.get("workers") else None


def bf16_ratio(channels: int, size: int, arch: str) -> float | None:
    """The measured fp32-over-bf16 step-time ratio (< 1: bf16 slower), or None."""
    found = entry(channels, size, arch)
    return found.get("bf16_ratio") if found else None

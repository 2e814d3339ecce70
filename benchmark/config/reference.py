"""The declaration as reference: the JSON Schema of a grid config (``drkd-bench schema``; the
shipped configs point to ``configs/drkd-bench.schema.json``) and the key tables of
docs/config-keys.md."""
from __future__ import annotations

import json
import math
import typing
from typing import Any, Literal

from benchmark.config.messages import bounds_words, unwrap
from benchmark.config.schema import (
    Compute,
    Condition,
    DatasetEntry,
    GridFile,
    Lattice,
    MethodEntry,
    Noise,
    TrainSection,
    Tune,
)
from benchmark.config.settings import DataSettings, Hash, TrainSettings, hash_policy
from benchmark.data import Augment

SCHEMA_FILE = "drkd-bench.schema.json"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a grid config (draft 2020-12), for editors and CI."""
    schema = GridFile.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            **schema, "title": "drkd-bench grid config"}


def json_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"


def _type_words(t: Any) -> str:
    inner = [x for x in unwrap(t) if x is not type(None)]
    out = []
    for x in inner:
        origin = typing.get_origin(x)
        if origin is Literal:
            out.append(" \\| ".join(f"`{a}`" for a in typing.get_args(x)))
        elif origin in (list, tuple):
            out.append("list")
        elif origin is dict:
            out.append("mapping")
        elif hasattr(x, "__pydantic_fields__"):
            out.append("mapping")
        else:
            out.append(getattr(x, "__name__", str(x)))
    return " or ".join(dict.fromkeys(out))


def _default_words(info: Any) -> str:
    if info.is_required():
        return "required"
    d = info.get_default(call_default_factory=True)
    if d is None:
        return "—"
    if isinstance(d, float) and not math.isfinite(d):
        return str(d)
    return f"`{json.dumps(d if not isinstance(d, tuple) else list(d))}`"


def _valid_words(info: Any) -> str:
    bounds = bounds_words(info)
    return bounds.replace("be ", "").replace("lie in ", "") if bounds != "be a finite number" \
        else ""


SECTIONS = [("top level", GridFile), ("`train:` (also `datasets.<name>.train`, "
                                      "`architectures.<name>.train`)", TrainSection),
            ("`datasets.<name>:`", DatasetEntry), ("`noise:`", Noise),
            ("`augment:`", Augment), ("`conditions.<name>:`", Condition),
            ("`methods:` entries", MethodEntry), ("`tune:`", Tune), ("`compute:`", Compute),
            ("`lattice:`", Lattice)]


#: The run setting each key of a section sets (the ones a cell hashes, by their declaration).
HASHED_AS = {TrainSection: lambda k: (TrainSettings, k),
             DatasetEntry: lambda k: (DataSettings, k),
             Noise: lambda k: (DataSettings, "noise" if k == "kind" else f"noise_{k}"),
             Augment: lambda k: (DataSettings, "augment")}
HASH_WORDS = {Hash.ALWAYS: "yes", Hash.UNLESS_DEFAULT: "when not the default", Hash.NEVER: "no"}


def _hash_words(model: Any, key: str) -> str:
    cls, name = HASHED_AS[model](key)
    return HASH_WORDS[hash_policy(cls, name)] if name in cls.__pydantic_fields__ else "—"


def markdown() -> str:
    """docs/config-keys.md: one table per section, from the declarations above."""
    lines = ["# Config keys", "",
             "Generated from `benchmark/config/settings.py` and `benchmark/config/schema.py` "
             "by `drkd-bench schema --markdown` (a test checks it is current). Editors check a "
             "config as it is typed with the JSON Schema "
             f"`benchmark/configs/{SCHEMA_FILE}` (`drkd-bench schema`); the harness validates "
             "the same declarations, then the names against the registries (`drkd-bench list`). "
             "The `analysis:` keys are in [statistics.md](statistics.md).", ""]
    for title, model in SECTIONS:
        hashes = model in HASHED_AS  # a run setting: its column says whether a cell hashes it
        lines += [f"## {title}", "", (model.__doc__ or "").strip().split("\n\n")[0]
                  .replace("\n", " "), "", "| key | type | default | valid | meaning |"
                  + (" in the cell hash |" if hashes else ""),
                  "|---|---|---|---|---|" + ("---|" if hashes else "")]
        for key, info in model.__pydantic_fields__.items():
            if info.description is None:
                continue
            lines.append(f"| `{key}` | {_type_words(info.annotation)} | {_default_words(info)} "
                         f"| {_valid_words(info)} | {info.description} |"
                         + (f" {_hash_words(model, key)} |" if hashes else ""))
        lines.append("")
    return "\n".join(lines)

"""A validation error as one line: ``where: key.path: what is wrong``, in words a config's
author reads (the key's kind, its valid range or choices)."""
from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Literal

import annotated_types
from pydantic import (
    ValidationError,
)

from benchmark.config.settings import Expect

KINDS = {"int": "an integer", "float": "a number", "bool": "true or false", "string": "a string",
         "list": "a list", "tuple": "a list", "dict": "a mapping", "model": "a mapping",
         "dataclass": "a mapping", "literal": "one of", "none": "nothing"}


def message(e: ValidationError, model: type, where: str) -> str:
    """The first error of ``e`` as one line: ``where: key.path: what is wrong``."""
    err = e.errors(include_url=False)[0]
    loc = [p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p in KINDS))]
    kind, value = err["type"], err.get("input")
    key = loc[-1] if loc else ""
    parent = ".".join(map(str, loc[:-1]))
    at = f"{where}: {parent}" if parent else where
    path = ".".join(map(str, loc))
    container, info, declared = _lookup(model, loc)
    expect = next((m.words for m in getattr(info, "metadata", ()) if isinstance(m, Expect)),
                  None)
    if expect:  # said of the key that declares it, not of an item of it
        path = ".".join(map(str, loc[:declared + 1]))
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        return f"{at}: unknown key {key!r}; valid: {', '.join(field_names(container))}"
    if kind in ("missing", "missing_argument"):
        return f"{at}: missing key {key!r}" + (f" (expected {expect})" if expect else "")
    if kind == "value_error":
        text = str(err.get("ctx", {}).get("error", err["msg"]))
        return f"{where}: {path}: {text}" if path else f"{where}: {text}"
    if expect:
        return f"{where}: {path}: expected {expect}, got {value!r}"
    if kind == "literal_error":
        choices = ", ".join(str(c) for c in _literal(info))
        return f"{where}: {path} must be one of: {choices} (got {value!r})"
    if kind == "finite_number":
        bounds = bounds_words(info).removeprefix("be ")
        return f"{where}: {path} must be finite and {bounds}, got {value!r}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{where}: {path} must {bounds_words(info)}, got {value!r}"
    if kind in ("too_short", "string_too_short"):  # a string's own, or a list's or mapping's
        what = "string" if kind == "string_too_short" else _kind(info)
        return f"{where}: {path}: expected a non-empty {KINDS[what].removeprefix('a ')}"
    words = KINDS.get(kind.split("_")[0], kind.replace("_", " "))
    return f"{where}: {path}: expected {words}, got {value!r}"


def field_names(model) -> list[str]:
    return list(getattr(model, "__pydantic_fields__", {}) or {})


def unwrap(t: Any) -> list[Any]:
    """The types inside an annotation (Optional, Annotated, list, dict values)."""
    origin = typing.get_origin(t)
    if origin is Annotated:
        return unwrap(typing.get_args(t)[0])
    if origin in (typing.Union, types.UnionType):
        return [x for a in typing.get_args(t) for x in unwrap(a)]
    return [t]


def _lookup(model: Any, loc: list) -> tuple[Any, Any, int]:
    """(the model the last key of ``loc`` was given to, the declaration of that key or of the
    list or mapping an item of ``loc`` belongs to, and that key's index in ``loc``)."""
    holders = _holders(model, loc)
    for i in range(len(loc) - 1, -1, -1):
        fields = getattr(holders[i], "__pydantic_fields__", None) or {}
        if isinstance(loc[i], str) and loc[i] in fields:
            return holders[-1], fields[loc[i]], i
    return (holders[-1] if holders else model), None, len(loc) - 1


def _holders(model: Any, loc: list) -> list:
    """For each part of ``loc``, the model it is a key of (a list index or a mapping key stays
    with the model that holds the list or mapping), in one walk down the declarations."""
    out, container = [], model
    for part in loc:
        out.append(container)
        fields = getattr(container, "__pydantic_fields__", None) or {}
        if isinstance(part, str) and part in fields:
            container = _model_in(fields[part].annotation) or container
    return out


def _model_in(annotation: Any) -> Any:
    """The model (or pydantic dataclass) an annotation holds: itself, or the items of its list
    or the values of its mapping; None when it holds none."""
    inner = [x for x in unwrap(annotation) if x is not type(None)]
    items = [a for x in inner for y in typing.get_args(x) for a in unwrap(y)]
    return next((x for x in inner + items if hasattr(x, "__pydantic_fields__")), None)


def _literal(info: Any) -> tuple:
    for t in unwrap(getattr(info, "annotation", None)):
        if typing.get_origin(t) is Literal:
            return typing.get_args(t)
    return ()


def _kind(info: Any) -> str:
    """``dict`` for a mapping's declaration, else ``list`` (too_short is said of lists, tuples
    and mappings only)."""
    types_ = unwrap(getattr(info, "annotation", None))
    return "dict" if any((typing.get_origin(t) or t) is dict for t in types_) else "list"


def bounds_words(info: Any) -> str:
    """``be >= 1``, ``be > 0`` or ``lie in (0, 1]`` from a field's declared range."""
    low = high = None
    for m in getattr(info, "metadata", ()):
        if isinstance(m, (annotated_types.Ge, annotated_types.Gt)):
            low = ("[" if isinstance(m, annotated_types.Ge) else "(",
                   getattr(m, "ge", getattr(m, "gt", None)))
        if isinstance(m, (annotated_types.Le, annotated_types.Lt)):
            high = ("]" if isinstance(m, annotated_types.Le) else ")",
                    getattr(m, "le", getattr(m, "lt", None)))
    if low and high:
        return f"lie in {low[0]}{low[1]:g}, {high[1]:g}{high[0]}"
    if low:
        return f"be {'>=' if low[0] == '[' else '>'} {low[1]:g}"
    if high:
        return f"be {'<=' if high[0] == ']' else '<'} {high[1]:g}"
    return "be a finite number"

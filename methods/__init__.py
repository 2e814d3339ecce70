"""Teacher-free distillation losses and their registry (torch only; lift them into your code).

>>> import methods
>>> methods.names()
['ce', 'lsr', 'tfkd-self', 'tfkd-reg', 'drkd', 'ps-kd', 'cs-kd', 'zipf-ls', 'dlb']
>>> loss = methods.get("drkd").loss(student_logits, targets, teacher_logits, temperature=4.0)
"""
import importlib

from .registry import BUILTINS, Method, MethodError, Param, get, names, register


def __getattr__(name: str):
    """``methods.drkd`` and the other built-in modules, imported when first named (the registry
    loads them all on its first use; ``import methods`` alone does not import torch)."""
    if name in BUILTINS or name == "functional":
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["Method", "MethodError", "Param", "get", "names", "register"]

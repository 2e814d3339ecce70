"""Teacher-free distillation losses and their registry (torch only; lift them into your code).

>>> import methods
>>> methods.names()
['ce', 'lsr', 'tfkd-self', 'tfkd-reg', 'drkd', 'ps-kd', 'cs-kd', 'zipf-ls', 'dlb']
>>> loss = methods.get("drkd").loss(student_logits, targets, teacher_logits, temperature=4.0)
"""
from . import ce, lsr, tfkd, drkd, pskd, cskd, zipfls, dlb  # noqa: F401, I001  (import order is the listing order)
from .registry import Method, MethodError, Param, get, names, register

__all__ = ["Method", "MethodError", "Param", "get", "names", "register"]

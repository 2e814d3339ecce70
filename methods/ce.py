"""CE: plain cross-entropy, the baseline and the self-teacher's objective."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .registry import Method, register


def ce_terms(student_logits: torch.Tensor, targets: torch.Tensor,
             teacher_logits: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """``L = CE(z_s, y)``, batch mean."""
    ce = F.cross_entropy(student_logits, targets)
    return {"loss": ce, "ce": ce}


CE = register(Method(name="ce", terms=ce_terms, params={}, teacher="none",
                     paper="baseline", summary="cross-entropy on the labels"))

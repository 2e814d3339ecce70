"""LSR: label smoothing regularisation."""
from __future__ import annotations

import torch

from .functional import smoothed_targets, soft_cross_entropy
from .registry import Method, Param, register


def lsr_terms(student_logits: torch.Tensor, targets: torch.Tensor,
              teacher_logits: torch.Tensor | None = None, *, smoothing: float = 0.1
              ) -> dict[str, torch.Tensor]:
    """``L = -sum_k q_k log softmax(z_s)_k`` with ``q = 1 - eps`` at ``y`` and ``eps / (K - 1)``
    elsewhere, batch mean.

    Note: ``eps`` is spread over the K - 1 wrong classes, as in the Tf-KD reference code
    (``loss_label_smoothing``), not over all K classes as in Szegedy et al. (2016).
    """
    q = smoothed_targets(targets, student_logits.shape[1], 1.0 - smoothing, student_logits.dtype)
    loss = soft_cross_entropy(student_logits, q)
    return {"loss": loss}


LSR = register(Method(
    name="lsr", terms=lsr_terms, teacher="none",
    params={"smoothing": Param(0.1, "epsilon, mass spread over the K-1 wrong classes "
                                    "(ref: yuanli2333/Teacher-free-Knowledge-Distillation@d000ab3 "
                                    "my_loss_function.py, "
                                    "loss_label_smoothing l. 58: alpha = 0.1)",
                               valid="[0, 1)", low=0.01, high=0.5)},
    paper="Szegedy et al., CVPR 2016; Tf-KD code convention",
    summary="label smoothing, eps over K-1 classes"))

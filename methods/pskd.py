"""PS-KD: Progressive Self-Knowledge Distillation (Kim et al., ICCV 2021).

Followed: lgcnsai/PS-KD-Pytorch at 9aa0828d099f2faed16bbac258e4153902a55021, ``main.py``
(``train``: ``soft_targets``, ``all_predictions``, ``alpha_t``) and ``loss/pskd_loss.py``.

Each sample's target in epoch ``t`` (1-based, of ``E``) is
``q = (1 - a_t) onehot(y) + a_t softmax(z_{t-1}(x))`` with ``a_t = a_T t / E``, where ``z_{t-1}(x)``
are the logits of the sample's own training forward pass one epoch earlier (the harness's
``previous-epoch`` teacher: a per-sample memory written from the training forward, no extra
forward). The loss is the soft cross-entropy ``-sum_k q_k log softmax(z)_k``, batch mean. In epoch
1 the memory holds the one-hot label (the official code initialises it so), so the target is the
label. See ``docs/methods.md``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .functional import soft_cross_entropy
from .registry import Method, Param, register


def pskd_terms(student_logits: torch.Tensor, targets: torch.Tensor,
               teacher_logits: torch.Tensor | None = None, *, alpha: float = 0.8
               ) -> dict[str, torch.Tensor]:
    """``-sum_k [(1 - a) onehot(y) + a softmax(z_t)]_k log softmax(z_s)_k``, batch mean; ``alpha``
    is this epoch's ``a_t`` (the registry's ``per_epoch`` ramps it)."""
    if teacher_logits is None:
        raise ValueError("ps-kd needs the previous epoch's logits")
    onehot = F.one_hot(targets, student_logits.shape[1]).to(student_logits.dtype)
    q = (1.0 - alpha) * onehot + alpha * F.softmax(teacher_logits.detach(), dim=1)
    return {"loss": soft_cross_entropy(student_logits, q)}


def ramp(kw: dict, epoch: int, epochs: int) -> dict:
    """``a_t = a_T * t / E`` for the 1-based epoch ``t`` (official: ``alpha_T * (epoch + 1) /
    end_epoch`` with a 0-based epoch)."""
    return {**kw, "alpha": kw["alpha"] * epoch / epochs}


PSKD = register(Method(
    name="ps-kd", terms=pskd_terms, teacher="previous-epoch", per_epoch=ramp,
    params={"alpha": Param(0.8, "a_T, the final weight of the previous-epoch prediction, ramped "
                                "linearly from a_T/E (ref: lgcnsai/PS-KD-Pytorch@9aa0828 "
                                "main.py l. 69, --alpha_T default 0.8)",
                           valid="[0, 1]", low=0.1, high=0.95)},
    paper="Kim et al., ICCV 2021 (PS-KD)",
    source="lgcnsai/PS-KD-Pytorch@9aa0828 main.py, loss/pskd_loss.py",
    summary="targets mixing the label with the previous epoch's own prediction"))

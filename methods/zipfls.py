"""Zipf's label smoothing (Liang et al., ECCV 2022, "Efficient One Pass Self-distillation with
Zipf's Label Smoothing").

Followed: megvii-research/zipfls at 108e27aaf81aee0dc6dcd965ed6389f2ea06ba10,
``pytorch_zipfls/losses.py`` (``zipf_loss``, ``gen_pdf`` with ``rank='hard'``,
``get_masked_distribution`` with ``rank_zipf``, ``kl_loss``) and ``pytorch_zipfls/train.py``
(``total_loss = loss_lambda * kd_loss + xent_loss``).

The classes are ranked by the model's own detached logits (rank 1 = largest, ties share the
smallest rank, as ``scipy.stats.rankdata(method='min')``). The non-target classes get the target
``q_k = r_k^-p / sum_{j != y} r_j^-p`` and the loss is
``CE(z, y) + lam KL(q || softmax over the non-target logits)``, the KL summed over the K - 1
non-target classes and averaged over the batch. One forward pass, no teacher.

Deviation: the official CIFAR runs (``--dense``) rank the classes by votes of a classifier applied
at every position of the last feature map; that needs the architecture's feature map, so the
harness ranks by the output logits (the code's non-dense path). See ``docs/methods.md``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .registry import Method, Param, register


def zipf_targets(logits: torch.Tensor, targets: torch.Tensor, power: float = 1.0) -> torch.Tensor:
    """(N, K) Zipf distribution over the non-target classes by rank of ``logits``; 0 at ``y``."""
    z = logits.detach()
    rank = 1 + (z.unsqueeze(1) > z.unsqueeze(2)).sum(dim=2)  # rank_i = 1 + #{j: z_j > z_i}
    dist = rank.to(z.dtype).pow(-power)
    dist = dist.scatter(1, targets.unsqueeze(1), 0.0)
    return dist / dist.sum(dim=1, keepdim=True)


def zipf_ls_terms(student_logits: torch.Tensor, targets: torch.Tensor,
                  teacher_logits: torch.Tensor | None = None, *, lam: float = 0.1,
                  power: float = 1.0) -> dict[str, torch.Tensor]:
    """``CE(z, y) + lam KL(q_zipf || softmax(z without y))``, batch mean."""
    ce = F.cross_entropy(student_logits, targets)
    q = zipf_targets(student_logits, targets, power)
    is_target = F.one_hot(targets, student_logits.shape[1]).bool()
    log_p = F.log_softmax(student_logits.masked_fill(is_target, float("-inf")), dim=1)
    pointwise = torch.where(is_target, torch.zeros_like(q), torch.xlogy(q, q) - q * log_p)
    kd = pointwise.sum(dim=1).mean()
    return {"loss": ce + lam * kd, "ce": ce, "kd": kd}


ZIPF_LS = register(Method(
    name="zipf-ls", terms=zipf_ls_terms, teacher="none",
    params={"lam": Param(0.1, "weight of the Zipf term (ref: zipfls README, CIFAR-100 ResNet18 "
                              "--loss_lambda 0.1)", valid="[0, inf)", low=0.01, high=2.0,
                         log=True),
            "power": Param(1.0, "Zipf exponent p (ref: zipfls train.py, --power default 1.0)",
                           valid="(0, inf)", low=0.5, high=2.0)},
    paper="Liang et al., ECCV 2022 (Zipf's LS)",
    source="megvii-research/zipfls@108e27a pytorch_zipfls/losses.py, train.py",
    summary="label smoothing shaped by the model's own class ranking (Zipf's law)"))

"""Small pure helpers shared by the losses (notation of ``docs/methods.md``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """``-sum_k q_k log softmax(z)_k``, averaged over the batch."""
    return -(target_probs * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def smoothed_targets(targets: torch.Tensor, num_classes: int, on_value: float,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``on_value`` at the label, ``(1 - on_value) / (K - 1)`` elsewhere (the Tf-KD convention)."""
    off = (1.0 - on_value) / (num_classes - 1)
    q = torch.full((targets.shape[0], num_classes), off, dtype=dtype, device=targets.device)
    return q.scatter_(1, targets.unsqueeze(1), on_value)


def kl_divergence(target_probs: torch.Tensor, student_log_probs: torch.Tensor,
                  reduction: str = "batchmean") -> torch.Tensor:
    """``KL(p || q) = sum_k p_k (log p_k - log q_k)`` with ``0 log 0 = 0``.

    ``reduction="batchmean"`` divides the sum by N (the true KL per sample).
    ``reduction="elementwise"`` divides by N*K, what ``nn.KLDivLoss()`` does by default in the
    Tf-KD reference code; it equals batchmean / K.
    """
    pointwise = torch.xlogy(target_probs, target_probs) - target_probs * student_log_probs
    total = pointwise.sum()
    if reduction == "batchmean":
        return total / student_log_probs.shape[0]
    if reduction == "elementwise":
        return total / student_log_probs.numel()
    raise ValueError(f"unknown kl_reduction {reduction!r}; choose one of: batchmean, elementwise")


def kd_terms(student_logits: torch.Tensor, targets: torch.Tensor, teacher_logits: torch.Tensor,
             alpha: float, temperature: float, kl_reduction: str = "batchmean",
             multiplier: float = 1.0) -> dict[str, torch.Tensor]:
    """``(1 - a) CE(z_s, y) + a T^2 m KL(p_T(z_t) || p_T(z_s))``; no gradient reaches ``z_t``."""
    teacher_logits = teacher_logits.detach()
    ce = F.cross_entropy(student_logits, targets)
    kl = kl_divergence(F.softmax(teacher_logits / temperature, dim=1),
                       F.log_softmax(student_logits / temperature, dim=1), kl_reduction)
    kd = kl * (temperature ** 2) * multiplier
    return {"loss": (1.0 - alpha) * ce + alpha * kd, "ce": ce, "kd": kd}

"""DR-KD: Dynamic Rectification Knowledge Distillation (Amik et al., arXiv 2201.11319).

Our reading: the paper's full text and code were not available to us. The method below follows its
abstract ("the student is its own teacher; wrong teacher predictions are rectified by the ground
truth before the knowledge is distilled; a low-cost dynamic teacher") and agrees with an
independent public re-implementation that swaps the teacher's wrong top logit with the true-class
logit. The teacher source is an explicit, logged choice shared with Tf-KD self (``pretrained``,
``online``, ``previous-epoch``, ``ema``; see ``docs/methods.md``), so that ``drkd`` is
``tfkd-self`` plus rectification and nothing else.
"""
from __future__ import annotations

import torch

from .functional import kd_terms
from .registry import Method, register
from .tfkd import (
    ALPHA,
    EMA_DECAY,
    FIDELITY,
    KD_PRESETS,
    KL_REDUCTION,
    MULTIPLIER,
    TEACHER,
    TEMPERATURE,
)


def rectify(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Swap, in every row whose true-class logit is below the row maximum, the logit of the top
    class with the logit of the true class. Other entries and correct rows (ties at the maximum
    included) are untouched. Returns ``(rectified copy, bool mask of swapped rows)``; the input is
    never modified (the online teacher shares storage with the student's logits)."""
    logits = logits.detach()
    top = logits.argmax(dim=1)
    true_value = logits.gather(1, targets.unsqueeze(1))
    max_value = logits.gather(1, top.unsqueeze(1))
    wrong = (true_value < max_value).squeeze(1)
    # For correct rows top may differ from y only at a tie; writing the same values back is a no-op
    # for them, so only wrong rows swap.
    new_top = torch.where(wrong.unsqueeze(1), true_value, max_value)
    new_true = torch.where(wrong.unsqueeze(1), max_value, true_value)
    out = logits.clone()
    out.scatter_(1, top.unsqueeze(1), new_top)
    out.scatter_(1, targets.unsqueeze(1), new_true)
    return out, wrong


def drkd_terms(student_logits: torch.Tensor, targets: torch.Tensor,
               teacher_logits: torch.Tensor | None = None, *, alpha: float = 0.95,
               temperature: float = 6.0, kl_reduction: str = "batchmean",
               multiplier: float = 1.0) -> dict[str, torch.Tensor]:
    """The KD term of Tf-KD self, with the teacher's logits rectified first.

    Diagnostic: ``rectified`` (fraction of the batch whose teacher was swapped; the teacher's
    accuracy and agreement are measured by the harness for every teacher source). Event:
    ``rectified``, the same rows as a mask (``terms["events"]``), so that under label noise the
    harness measures how many rectifications wrote a wrong label into the teacher.
    """
    if teacher_logits is None:
        raise ValueError("drkd needs teacher logits")
    fixed, wrong = rectify(teacher_logits, targets)
    terms = kd_terms(student_logits, targets, fixed, alpha, temperature, kl_reduction, multiplier)
    terms["rectified"] = wrong.float().mean()
    terms["events"] = {"rectified": wrong}
    return terms


DRKD = register(Method(
    name="drkd", terms=drkd_terms, teacher="param",
    params={"teacher": TEACHER, "ema_decay": EMA_DECAY, "alpha": ALPHA,
            "temperature": TEMPERATURE, "fidelity": FIDELITY, "kl_reduction": KL_REDUCTION,
            "multiplier": MULTIPLIER},
    presets=KD_PRESETS,
    diagnostics={"rectified": "share of training samples whose teacher was rectified"},
    events={"rectified": "a rectification (the teacher's top class swapped with the given "
                         "label)"},
    paper="Amik et al., arXiv 2201.11319 (DR-KD), our reading",
    summary="self-KD with the teacher's wrong top logit swapped with the true one"))

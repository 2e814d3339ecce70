"""DLB: Self-Distillation from the Last Mini-Batch (Shen et al., CVPR 2022).

Followed: Meta-knowledge-Lab/DLB at 8949a4621072cbd9d0d9d78bf8d9fba0f1814ed0, ``dlb.py``
(``train_one_epoch``).

Under the ``overlap`` batch plan a step trains on the previous step's new samples (freshly
augmented) followed by ``B`` new ones; the teacher (``previous-batch``) is the previous step's
detached logits of the repeated samples. The loss is
``CE over all rows + alpha T^2 KL(softmax(z_prev / T) || softmax(z_rep / T))``, the KL averaged
over the repeated rows (``batchmean``). The repeated rows come first, so ``teacher_logits`` holds
one row per leading row of ``student_logits``; the very first step has no teacher and is plain CE.
See ``docs/methods.md``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .functional import kl_divergence
from .registry import Method, Param, register


def dlb_terms(student_logits: torch.Tensor, targets: torch.Tensor,
              teacher_logits: torch.Tensor | None = None, *, alpha: float = 1.0,
              temperature: float = 3.0) -> dict[str, torch.Tensor]:
    """CE over the whole batch plus ``alpha T^2 KL`` on its first ``len(teacher_logits)`` rows."""
    ce = F.cross_entropy(student_logits, targets)
    n = 0 if teacher_logits is None else teacher_logits.shape[0]
    if n == 0:
        return {"loss": ce, "ce": ce, "kd": torch.zeros_like(ce)}
    kd = kl_divergence(F.softmax(teacher_logits.detach() / temperature, dim=1),
                       F.log_softmax(student_logits[:n] / temperature, dim=1)) * temperature ** 2
    return {"loss": ce + alpha * kd, "ce": ce, "kd": kd}


DLB = register(Method(
    name="dlb", terms=dlb_terms, teacher="previous-batch", batch_plan="overlap",
    params={"alpha": Param(1.0, "weight of the consistency term (project's choice: the plain "
                                "sum CE + KD; dlb.py takes --alpha with no default and its "
                                "experiment name default 'TP3_0.5' (l. 47) suggests 0.5; the "
                                "fair grid runs 0.5 beside it)",
                           valid="[0, inf)", low=0.1, high=5.0, log=True),
            "temperature": Param(3.0, "T (ref: DLB dlb.py@8949a46 l. 47, experiment name "
                                      "default 'TP3_0.5': T 3; --T itself has no default)",
                                 valid="(0, inf)", low=1.0,
                                 high=20.0, log=True)},
    paper="Shen et al., CVPR 2022 (DLB)",
    source="Meta-knowledge-Lab/DLB@8949a46 dlb.py",
    control={"alpha": 0.0},
    control_summary="alpha = 0: CE over the same overlap batches (the plan's repeated half alone)",
    summary="KD from the previous mini-batch's predictions on half of each batch"))

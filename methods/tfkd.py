"""Tf-KD (Yuan et al., "Revisiting Knowledge Distillation via Label Smoothing Regularization",
CVPR 2020): ``tfkd-self`` (a CE-trained copy of the student as teacher) and ``tfkd-reg`` (a
manually designed virtual teacher)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .functional import kd_terms, kl_divergence, smoothed_targets
from .registry import Method, Param, register

#: The Tf-KD official code the defaults below were read from (repository@commit).
TFKD_CODE = "yuanli2333/Teacher-free-Knowledge-Distillation@d000ab3"
#: Options shared by the KD-style methods. ``fidelity`` picks a preset for the options left unset.
FIDELITY = Param("paper", "preset: 'paper' (the equations) or 'code' (the reference code's "
                          "conventions)", choices=("paper", "code"), role="preset")
#: Where the teacher's logits come from (implemented in ``benchmark/teachers.py``; see
#: ``docs/methods.md``, "Teacher sources").
TEACHER_SOURCES = ("pretrained", "online", "previous-epoch", "ema")
TEACHER = Param("pretrained", "teacher source: 'pretrained' (frozen CE-trained copy), 'online' "
                              "(the student's own detached logits), 'previous-epoch' (each "
                              "sample's logits from its previous training forward), 'ema' (an "
                              "exponential moving average of the student's weights)",
                choices=TEACHER_SOURCES, role="teacher")
EMA_DECAY = Param(0.99, "decay of the 'ema' teacher, warmed up as min(decay, 1 - 1/(step + 1)) "
                        "(project's choice: Mean Teacher's ramp-up value as its paper reports it, "
                        "not read here; no official code of a method in this registry sets it)",
                  valid="[0, 1)", role="teacher")
KL_REDUCTION = Param(None, "batchmean (true KL per sample) or elementwise (nn.KLDivLoss default "
                           "of the reference code: divides by N*K)",
                     choices=("batchmean", "elementwise"))
MULTIPLIER = Param(None, "factor on the KL term (reference configs: 1, 50 or 100)",
                   valid="[0, inf)")
ALPHA = Param(0.95, "weight of the KD term (ref: " + TFKD_CODE + " experiments/kd_experiments/"
                    "resnet18_distill/resnet18_self_teacher/params.json: alpha 0.95)",
              valid="[0, 1]", low=0.05, high=0.99)
TEMPERATURE = Param(6.0, "softmax temperature T (ref: " + TFKD_CODE + " experiments/kd_experiments/"
                         "resnet18_distill/resnet18_self_teacher/params.json: temperature 6)",
                    valid="(0, inf)", low=1.0, high=40.0, log=True)


def tfkd_self_terms(student_logits: torch.Tensor, targets: torch.Tensor,
                    teacher_logits: torch.Tensor | None = None, *, alpha: float = 0.95,
                    temperature: float = 6.0, kl_reduction: str = "batchmean",
                    multiplier: float = 1.0) -> dict[str, torch.Tensor]:
    """``(1 - a) CE(z_s, y) + a T^2 m KL(p_T(z_t) || p_T(z_s))`` with the self-teacher's logits."""
    if teacher_logits is None:
        raise ValueError("tfkd-self needs teacher logits")
    return kd_terms(student_logits, targets, teacher_logits, alpha, temperature,
                    kl_reduction, multiplier)


def virtual_teacher(targets: torch.Tensor, num_classes: int, correct_prob: float,
                    temperature: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``softmax(p_d / tau)`` with ``p_d = a`` at ``y`` and ``(1 - a)/(K - 1)`` elsewhere.

    This is the reference code's softening (softmax of *probabilities* over tau). With tau = 20,
    K = 100 and a = 0.99 the true class gets about 0.0105 against 0.0100 for the others: the
    published Tf-KD reg is close to a uniform-label regulariser. Kept as published, not "fixed".
    """
    p_d = smoothed_targets(targets, num_classes, correct_prob, dtype)
    return F.softmax(p_d / temperature, dim=1)


def tfkd_reg_terms(student_logits: torch.Tensor, targets: torch.Tensor,
                   teacher_logits: torch.Tensor | None = None, *, alpha: float = 0.1,
                   temperature: float = 20.0, correct_prob: float = 0.99,
                   kl_reduction: str = "batchmean", multiplier: float = 1.0,
                   scale_student: bool = False) -> dict[str, torch.Tensor]:
    """``(1 - a) CE(z_s, y) + a m KL(t || softmax(z_s))`` with ``t`` the virtual teacher.

    ``scale_student=True`` uses ``softmax(z_s / tau)`` as in the paper's equation; the reference
    code (and the ``code`` preset) leaves the student unscaled (Tf-KD repository issues 3, 19, 24).
    """
    t = virtual_teacher(targets, student_logits.shape[1], correct_prob, temperature,
                        student_logits.dtype)
    scale = temperature if scale_student else 1.0
    ce = F.cross_entropy(student_logits, targets)
    kd = kl_divergence(t, F.log_softmax(student_logits / scale, dim=1), kl_reduction) * multiplier
    return {"loss": (1.0 - alpha) * ce + alpha * kd, "ce": ce, "kd": kd}


KD_PRESETS = {"paper": {"kl_reduction": "batchmean", "multiplier": 1.0},
              "code": {"kl_reduction": "elementwise", "multiplier": 1.0}}

TFKD_SELF = register(Method(
    name="tfkd-self", terms=tfkd_self_terms, teacher="param",
    params={"teacher": TEACHER, "ema_decay": EMA_DECAY, "alpha": ALPHA,
            "temperature": TEMPERATURE, "fidelity": FIDELITY,
            "kl_reduction": KL_REDUCTION, "multiplier": MULTIPLIER},
    presets=KD_PRESETS, paper="Yuan et al., CVPR 2020 (Tf-KD self)",
    summary="KD from a teacher of the chosen source (a CE-trained copy by default)"))

TFKD_REG = register(Method(
    name="tfkd-reg", terms=tfkd_reg_terms, teacher="none",
    params={"alpha": Param(0.1, "weight of the regulariser (ref: " + TFKD_CODE + " experiments/"
                                "base_experiments/base_resnet18/params.json: reg_alpha 0.1)",
                           valid="[0, 1]", low=0.05, high=0.99),
            "temperature": Param(20.0, "tau applied to the virtual teacher (ref: " + TFKD_CODE + " "
                                       "experiments/base_experiments/base_resnet18/params.json: "
                                       "reg_temperature 20)", valid="(0, inf)", low=1.0, high=60.0,
                                 log=True),
            "correct_prob": Param(0.99, "virtual teacher's probability at the label (ref: "
                                        + TFKD_CODE + " my_loss_function.py l. 39: correct_prob = "
                                        "0.99)", valid="(0, 1]"),
            "fidelity": FIDELITY, "kl_reduction": KL_REDUCTION, "multiplier": MULTIPLIER,
            "scale_student": Param(None, "apply tau to the student too (paper's equation)",
                                   choices=(True, False))},
    presets={"paper": {**KD_PRESETS["paper"], "scale_student": True},
             "code": {**KD_PRESETS["code"], "scale_student": False}},
    paper="Yuan et al., CVPR 2020 (Tf-KD reg)",
    summary="KD from a hand-made virtual teacher"))

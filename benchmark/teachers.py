"""Where teacher logits come from. The training loop calls ``teacher(images, student_logits)``
and knows nothing else; the losses never see a model."""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn

from . import models


class PretrainedTeacher:
    """A frozen CE-trained copy of the student's architecture, in eval mode, run under inference
    mode on the student's (augmented) batch."""

    def __init__(self, model: nn.Module):
        self.model = model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def __call__(self, images: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            logits = self.model(images)
        return logits.clone()  # a normal tensor: autograd may save it for the student's backward


class OnlineTeacher:
    """The student's own logits for the same batch, detached: a zero-cost dynamic teacher."""

    def __call__(self, images: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
        return student_logits.detach()


def save_model(model: nn.Module, path: Path) -> None:
    """The weights as a CPU state dict, the format :func:`load_model` reads, written atomically
    (a reader in another process never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, tmp)
    os.replace(tmp, path)


def load_model(path: Path, arch: str, in_channels: int, num_classes: int, image_size: int,
               device: torch.device | str) -> nn.Module:
    """Build ``arch`` and load a state dict saved by the harness (``weights_only=True``)."""
    model = models.build(arch, in_channels, num_classes, image_size)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.to(device)


def make(source: str, model: nn.Module | None = None):
    """The teacher for a source: ``none`` gives None, ``online`` needs nothing, ``pretrained``
    needs the loaded model."""
    if source == "none":
        return None
    if source == "online":
        return OnlineTeacher()
    if source == "pretrained":
        if model is None:
            raise ValueError("a pretrained teacher needs its CE checkpoint")
        return PretrainedTeacher(model)
    raise ValueError(f"unknown teacher source {source!r}; choose one of: none, pretrained, online")

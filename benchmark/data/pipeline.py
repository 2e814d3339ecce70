"""Batched augmentation on the training device: uint8 batches in, normalised floats out."""
from __future__ import annotations

import math

import torch

from benchmark.data.catalog import Augment
from benchmark.data.splits import TensorData


class Pipeline:
    """uint8 batches to normalised float batches on the batch's device, augmentation optional.

    Crop, flip and rotation (nearest, zero fill, as torchvision's ``RandomRotation``) are index
    operations on the uint8 batch; normalisation is one fused multiply-add at the end.
    """

    def __init__(self, data: TensorData, channels_last: bool = False):
        device = data.train_x.device
        c = data.train_x.shape[1]
        self.scale = (1.0 / (255.0 * torch.tensor(data.std, device=device))).view(1, c, 1, 1)
        self.shift = (-torch.tensor(data.mean, device=device) / torch.tensor(
            data.std, device=device)).view(1, c, 1, 1)
        self.augment = data.augment
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.addcmul(self.shift, x.float(), self.scale)
        return out.contiguous(memory_format=self.memory_format)

    def train(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        a = self.augment
        if a.crop_padding or a.flip or a.rotation:
            x = augment(x, a, generator)
        return self.normalize(x)


def augment(x: torch.Tensor, a: Augment, generator: torch.Generator) -> torch.Tensor:
    """Random crop with zero padding, then horizontal flip, then rotation (nearest neighbour,
    zero fill: torchvision's ``RandomCrop(padding)``, ``RandomHorizontalFlip``,
    ``RandomRotation`` defaults), composed into one gather on the uint8 batch.

    Each output pixel follows the three maps backwards to the input pixel it shows: the inverse
    rotation (rounded to the nearest pixel), the flip, the crop offset; a pixel that lands
    outside the rotated or the padded image is 0, exactly as the three steps applied in turn.
    Random draws per batch, in order: crop offsets (y, x), flips, angles.
    """
    n, c, h, w = x.shape
    dev = x.device
    p = a.crop_padding
    if p:
        oy = torch.randint(0, 2 * p + 1, (n, 1, 1), device=dev, generator=generator) - p
        ox = torch.randint(0, 2 * p + 1, (n, 1, 1), device=dev, generator=generator) - p
    if a.flip:
        flip = (torch.rand(n, device=dev, generator=generator) < 0.5).view(n, 1, 1)
    ys = torch.arange(h, device=dev).view(1, h, 1)
    xs = torch.arange(w, device=dev).view(1, 1, w)
    inside = None
    if a.rotation:
        angle = (torch.rand(n, device=dev, generator=generator) * 2 - 1) * math.radians(a.rotation)
        cos, sin = angle.cos().view(n, 1, 1), angle.sin().view(n, 1, 1)
        dx, dy = xs - (w - 1) / 2, ys - (h - 1) / 2
        xs = torch.round(cos * dx - sin * dy + (w - 1) / 2).long()
        ys = torch.round(sin * dx + cos * dy + (h - 1) / 2).long()
        inside = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
    if a.flip:
        xs = torch.where(flip, w - 1 - xs, xs)
    if p:
        xs, ys = xs + ox, ys + oy
        in_crop = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
        inside = in_crop if inside is None else inside & in_crop
    index = (ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)).expand(n, h, w).reshape(n, 1, h * w)
    out = x.reshape(n, c, h * w).gather(2, index.expand(n, c, h * w)).view(n, c, h, w)
    if inside is not None:
        out = out * inside.view(n, 1, h, w).to(out.dtype)
    return out

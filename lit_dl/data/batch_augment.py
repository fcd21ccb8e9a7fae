"""Image augmentation and normalisation of a whole batch with tensor ops, on whatever device it lives.

The standard CIFAR augmentation of He et al. (2016, "Deep Residual Learning for Image Recognition",
Sec. 4.2): pad 4 pixels with zeros, take a random 32x32 crop, flip horizontally with probability 1/2.
Here the crop and the flip of every sample are one gather (advanced indexing with per-sample row and
column indices), so a batch costs a handful of kernel launches instead of Python work per image; the
same code serves the CPU loader and the device-resident path, and no torchvision is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["AugmentParams", "ImageAugment", "ImageBatchTransform", "crop_flip"]

AugmentParams = tuple[Tensor, Tensor, Tensor]
"""Per-sample ``(top, left, flip)``: crop offsets into the padded image (int64) and flip flags (bool)."""


def crop_flip(images: Tensor, top: Tensor, left: Tensor, flip: Tensor, pad: int) -> Tensor:
    """Zero-pad ``images`` ``(B, C, H, W)`` by ``pad`` pixels, crop ``H x W`` at ``(top, left)`` of the
    padded image per sample, then mirror the samples where ``flip`` is true. Same dtype and device.
    """
    b, c, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad)) if pad else images
    device = images.device
    rows = top.view(b, 1) + torch.arange(h, device=device)  # (B, H)
    cols = torch.arange(w, device=device).expand(b, w)
    cols = torch.where(flip.view(b, 1), w - 1 - cols, cols) + left.view(b, 1)  # (B, W)
    batch = torch.arange(b, device=device).view(b, 1, 1, 1)
    chan = torch.arange(c, device=device).view(1, c, 1, 1)
    return padded[batch, chan, rows.view(b, 1, h, 1), cols.view(b, 1, 1, w)]  # (B, C, H, W)


@dataclass(frozen=True)
class ImageAugment:
    """Random crop after zero padding, plus an optional random horizontal flip.

    Args:
        pad: Pixels of zero padding on each side; crop offsets are uniform in ``[0, 2 * pad]``.
        flip: Flip horizontally with probability 1/2 (wrong for digits: a mirrored 2 is no digit).
    """

    pad: int = 4
    flip: bool = True

    def draw(self, n: int, generator: torch.Generator | None = None) -> AugmentParams:
        """Parameters for ``n`` samples from ``generator`` (the global CPU RNG when ``None``)."""
        top = torch.randint(0, 2 * self.pad + 1, (n,), generator=generator)
        left = torch.randint(0, 2 * self.pad + 1, (n,), generator=generator)
        flip = torch.rand(n, generator=generator) < 0.5 if self.flip else torch.zeros(n, dtype=torch.bool)
        return top, left, flip


class ImageBatchTransform:
    """Stored images (``uint8``, ``(B, C, H, W)``) -> augmented, normalised ``float32`` batch.

    ``(x / 255 - mean) / std`` per channel, computed as one multiply-add; augmentation (when given)
    runs on the ``uint8`` images, before the conversion, to move a quarter of the bytes.

    Args:
        mean: Per-channel mean of the [0, 1]-scaled images.
        std: Per-channel standard deviation of the [0, 1]-scaled images.
        augment: Training augmentation, or ``None``.
    """

    def __init__(self, mean: Tensor, std: Tensor, augment: ImageAugment | None = None) -> None:
        self.mean = mean.detach().float().view(-1, 1, 1)
        self.std = std.detach().float().view(-1, 1, 1)
        self.augment = augment
        self.scale = 1.0 / (255.0 * self.std)
        self.shift = -self.mean / self.std

    def to(self, device: torch.device) -> ImageBatchTransform:
        """A copy whose constants live on ``device``."""
        moved = ImageBatchTransform(self.mean.to(device), self.std.to(device), self.augment)
        return moved

    def normalise(self, images: Tensor) -> Tensor:
        """Scale and normalise without augmentation."""
        return torch.addcmul(self.shift, images.float(), self.scale)

    def __call__(self, images: Tensor, params: AugmentParams | None = None) -> Tensor:
        """Augment with ``params`` (drawn from the global RNG when ``None``), then normalise."""
        if self.augment is not None:
            if params is None:
                params = tuple(p.to(images.device) for p in self.augment.draw(images.shape[0]))
            images = crop_flip(images, *params, pad=self.augment.pad)
        return self.normalise(images)

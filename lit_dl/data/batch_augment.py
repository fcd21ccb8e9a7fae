"""Image augmentation and normalisation of a whole batch with tensor ops, on whatever device it lives.

The standard CIFAR augmentation of He et al. (2016, "Deep Residual Learning for Image Recognition",
Sec. 4.2): pad 4 pixels with zeros, take a random 32x32 crop, flip horizontally with probability 1/2.
Here the crop and the flip of every sample are one gather (advanced indexing with per-sample row and
column indices), so a batch costs a handful of kernel launches instead of Python work per image; the
same code serves the CPU loader and the device-resident path, and no torchvision is needed.

The random draws never come from the global RNG: :meth:`ImageAugment.draw_epoch` gives every sample
of a split its crop and flip for one epoch as a function of ``(seed, epoch, sample index)``, and both
data paths (the ``DataLoader``, with or without workers, and the device-resident batches) look the
parameters of a batch up there. Which sample a step reads is a function of ``(seed, epoch, rank,
position)`` (:mod:`lit_dl.data.sampling`), so its augmentation is too, whatever else draws random
numbers (dropout, callbacks) and however the run was interrupted and resumed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from lit_dl.data.sampling import epoch_generator

__all__ = ["AUGMENT_STREAM", "AugmentParams", "ImageAugment", "ImageBatchTransform", "crop_flip"]

AUGMENT_STREAM = 1
"""``stream`` of :func:`lit_dl.data.sampling.epoch_generator` for augmentation (0 is the sample order)."""

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

    def draw(self, n: int, generator: torch.Generator) -> AugmentParams:
        """Parameters for ``n`` samples drawn from ``generator`` (CPU tensors)."""
        top = torch.randint(0, 2 * self.pad + 1, (n,), generator=generator)
        left = torch.randint(0, 2 * self.pad + 1, (n,), generator=generator)
        flip = torch.rand(n, generator=generator) < 0.5 if self.flip else torch.zeros(n, dtype=torch.bool)
        return top, left, flip

    def draw_epoch(self, n: int, seed: int, epoch: int) -> AugmentParams:
        """The parameters of all ``n`` samples of a split in ``epoch``, fixed by ``(seed, epoch)``:
        sample ``i`` gets entry ``i`` whichever rank, worker or data path reads it."""
        return self.draw(n, epoch_generator(seed, epoch, stream=AUGMENT_STREAM))


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
        """Augment with ``params`` (required when augmenting: the rows of
        :meth:`ImageAugment.draw_epoch` for these samples), then normalise."""
        if self.augment is not None:
            if params is None:
                raise ValueError(
                    "an augmenting ImageBatchTransform needs the batch's params (ImageAugment.draw_epoch "
                    "rows of its samples); it never draws from the global RNG"
                )
            images = crop_flip(images, *params, pad=self.augment.pad)
        return self.normalise(images)

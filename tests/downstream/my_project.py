"""Plays a downstream project: a model defined outside lit_dl, selected from YAML by class_path.

It overrides the three documented extension points and nothing else.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_dl.models import ClassificationTask


class FocalClassifier(ClassificationTask):
    """A LayerNorm/GELU network trained with the focal loss (Lin et al., 2017).

    Args:
        in_features: Input width.
        width: Hidden width.
        gamma: Focusing parameter of the focal loss; 0 gives cross-entropy.
        decay_head: Whether the output layer gets weight decay.
        **kwargs: ClassificationTask arguments.
    """

    def __init__(
        self, in_features: int, width: int = 8, gamma: float = 2.0, decay_head: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)

    def build_backbone(self) -> nn.Module:
        hp = self.hparams
        return nn.Sequential(
            nn.Linear(hp.in_features, hp.width),
            nn.LayerNorm(hp.width),
            nn.GELU(),
            nn.Linear(hp.width, self.num_classes),
        )

    def compute_loss(self, logits: Tensor, target: Tensor) -> Tensor:
        log_p = F.log_softmax(logits, dim=-1).gather(1, target[:, None]).squeeze(1)
        return (-((1 - log_p.exp()) ** self.hparams.gamma) * log_p).mean()

    def should_decay(self, module: nn.Module, param_name: str, param: nn.Parameter) -> bool:
        if module is self.backbone[-1] and not self.hparams.decay_head:
            return False
        return super().should_decay(module, param_name, param)


def focal_loss_reference(logits: Tensor, target: Tensor, gamma: float) -> Tensor:
    p = torch.softmax(logits, -1)[torch.arange(len(target)), target]
    return (-((1 - p) ** gamma) * torch.log(p)).mean()

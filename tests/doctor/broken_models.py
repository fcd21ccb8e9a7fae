"""Downstream-style recipes that each carry one classic pitfall, for the doctor to find.

Each overrides only ``build_backbone`` (or ``should_decay``), as a downstream project would.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from lit_dl.models import ClassificationTask


class _Tiny(ClassificationTask):
    """Base of the broken recipes: ``in_features`` inputs, hidden ``width``.

    Args:
        in_features: Input width.
        width: Hidden width.
        **kwargs: ClassificationTask arguments.
    """

    def __init__(self, in_features: int, width: int = 32, **kwargs: Any) -> None:
        super().__init__(**kwargs)


class SoftmaxHeadClassifier(_Tiny):
    """The network ends in a Softmax although the loss is cross-entropy on logits."""

    def build_backbone(self) -> nn.Module:
        hp = self.hparams
        return nn.Sequential(
            nn.Linear(hp.in_features, hp.width),
            nn.ReLU(),
            nn.Linear(hp.width, self.num_classes),
            nn.Softmax(-1),
        )


class BiasBeforeBNClassifier(_Tiny):
    """A Linear with a bias feeds a BatchNorm."""

    def build_backbone(self) -> nn.Module:
        hp = self.hparams
        return nn.Sequential(
            nn.Linear(hp.in_features, hp.width),
            nn.BatchNorm1d(hp.width),
            nn.ReLU(),
            nn.Linear(hp.width, self.num_classes),
        )


class DecayEverythingClassifier(_Tiny):
    """``should_decay`` says yes to every parameter: norms and biases get weight decay."""

    def build_backbone(self) -> nn.Module:
        hp = self.hparams
        return nn.Sequential(
            nn.Linear(hp.in_features, hp.width, bias=False),
            nn.BatchNorm1d(hp.width),
            nn.ReLU(),
            nn.Linear(hp.width, self.num_classes),
        )

    def should_decay(self, module: nn.Module, param_name: str, param: nn.Parameter) -> bool:
        return True


class DropoutBeforeBNClassifier(_Tiny):
    """Dropout feeds a BatchNorm (variance shift)."""

    def build_backbone(self) -> nn.Module:
        hp = self.hparams
        return nn.Sequential(
            nn.Linear(hp.in_features, hp.width),
            nn.ReLU(),
            nn.Dropout(0.3),
            nn.BatchNorm1d(hp.width),
            nn.Linear(hp.width, self.num_classes),
        )


class XavierReLUClassifier(_Tiny):
    """A plain ReLU stack initialised with Xavier (gain 1): the variance halves at every layer."""

    def build_backbone(self) -> nn.Module:
        hp = self.hparams
        layers: list[nn.Module] = []
        width = hp.in_features
        for _ in range(4):
            layers += [nn.Linear(width, hp.width), nn.ReLU()]
            width = hp.width
        layers.append(nn.Linear(width, self.num_classes))
        net = nn.Sequential(*layers)
        for m in net:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        return net


class InplaceClassifier(_Tiny):
    """Modifies in place a tensor that autograd saved for the backward pass."""

    def build_backbone(self) -> nn.Module:
        hp = self.hparams
        return _InplaceNet(hp.in_features, hp.width, self.num_classes)


class _InplaceNet(nn.Module):
    def __init__(self, in_features: int, width: int, num_classes: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(in_features, width)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = self.hidden(x).sigmoid()  # sigmoid saves its output for backward
        h.mul_(2.0)  # ... which this overwrites
        return self.head(h)

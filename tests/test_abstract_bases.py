"""lit_dl's extension bases name the one method a subclass must write, and cannot be built without it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lit_dl.models import ClassificationTask
from lit_dl.nn import SelfInitializing
from lit_dl.optim import WarmupLR


def _optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)


@pytest.mark.parametrize(
    ("base", "method", "build"),
    [
        (ClassificationTask, "build_backbone", lambda cls: cls(num_classes=3)),
        (SelfInitializing, "layer_activations", lambda cls: cls()),
        (WarmupLR, "main_lr", lambda cls: cls(_optimizer(), warmup_steps=2, total_steps=10)),
    ],
)
def test_a_base_without_its_extension_point_cannot_be_built(base, method, build):
    assert base.__abstractmethods__ == frozenset({method})
    with pytest.raises(TypeError, match=rf"abstract class {base.__name__}\b.*\b{method}\b"):
        build(base)
    subclass = type("Incomplete", (base,), {})  # a subclass that forgot it fails the same way
    with pytest.raises(TypeError, match=rf"abstract class Incomplete\b.*\b{method}\b"):
        build(subclass)


def test_every_shipped_subclass_is_complete():
    import lit_dl.models
    import lit_dl.nn
    import lit_dl.optim

    for module, base in (
        (lit_dl.models, ClassificationTask),
        (lit_dl.nn, SelfInitializing),
        (lit_dl.optim, WarmupLR),
    ):
        shipped = [
            v for v in vars(module).values() if isinstance(v, type) and issubclass(v, base) and v is not base
        ]
        assert shipped, base
        assert [cls.__name__ for cls in shipped if cls.__abstractmethods__] == []

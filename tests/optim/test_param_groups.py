import pytest
import torch
from torch import nn

from lit_dl.nn import MLP
from lit_dl.optim import decay_parameters, l1_penalty, parameter_groups


class Zoo(nn.Module):
    """One of each parameter kind, with names that would fool substring rules."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.conv = nn.Conv2d(1, 2, 3)
        self.bias_net = nn.Linear(4, 4)  # "bias" in the module name, but its weight must decay
        self.norm_ln = nn.LayerNorm(4)
        self.gn = nn.GroupNorm(1, 2)
        self.bn = nn.SyncBatchNorm(2)  # what sync_batchnorm swaps in under DDP
        self.rms = nn.RMSNorm(4)
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)


def test_membership_per_parameter_name():
    assert decay_parameters(Zoo()) == {
        "embed.weight": False,
        "conv.weight": True,
        "conv.bias": False,
        "bias_net.weight": True,
        "bias_net.bias": False,
        "norm_ln.weight": False,
        "norm_ln.bias": False,
        "gn.weight": False,
        "gn.bias": False,
        "bn.weight": False,
        "bn.bias": False,
        "rms.weight": False,
    }


def test_mlp_groups_exclude_biases_and_batchnorm():
    model = MLP(8, 3, hidden_sizes=[5], norm="before")
    assert decay_parameters(model) == {
        "features.1.0.weight": True,  # Linear before BN: no bias
        "features.1.1.weight": False,  # BatchNorm gamma
        "features.1.1.bias": False,  # BatchNorm beta
        "head.weight": True,
        "head.bias": False,
    }
    decay, no_decay = parameter_groups(model)
    assert decay["name"] == "decay" and "weight_decay" not in decay
    assert no_decay["name"] == "no_decay" and no_decay["weight_decay"] == 0.0
    assert [p.shape for p in decay["params"]] == [(5, 8), (3, 5)]
    assert [p.shape for p in no_decay["params"]] == [(5,), (5,), (3,)]


def test_tied_parameters_appear_once_and_empty_groups_are_dropped():
    lin = nn.Linear(3, 3, bias=False)
    model = nn.Sequential(lin, lin)
    groups = parameter_groups(model)
    assert [g["name"] for g in groups] == ["decay"]
    assert len(groups[0]["params"]) == 1


def test_optimizer_applies_decay_only_to_decay_group():
    model = MLP(4, 2, hidden_sizes=[3])
    opt = torch.optim.SGD(parameter_groups(model), lr=0.1, weight_decay=0.5)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.5, 0.0]


def test_l1_penalty_value():
    a = torch.tensor([[1.0, -2.0], [0.5, 0.0]])
    b = torch.tensor([-3.0])
    assert l1_penalty([a, b]).item() == pytest.approx(6.5)
    with pytest.raises(ValueError, match="at least one parameter"):
        l1_penalty([])

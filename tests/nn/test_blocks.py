import pytest
import torch
from torch import nn

from lit_dl import ConfigError
from lit_dl.nn import MLP, LinearBlock, ResidualMLPBlock


def layer_types(block):
    return [type(m) for m in block]


@pytest.mark.parametrize(
    ("norm", "types", "has_bias"),
    [
        ("before", [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Dropout], False),
        ("after", [nn.Linear, nn.ReLU, nn.BatchNorm1d, nn.Dropout], True),
        ("none", [nn.Linear, nn.ReLU, nn.Dropout], True),
    ],
)
def test_linear_block_order_and_bias(norm, types, has_bias):
    block = LinearBlock(4, 8, "relu", norm=norm, dropout=0.5)
    assert layer_types(block) == types
    assert (block[0].bias is not None) is has_bias


def test_linear_block_without_dropout_adds_no_layer():
    assert layer_types(LinearBlock(4, 8, "tanh", dropout=0.0)) == [nn.Linear, nn.BatchNorm1d, nn.Tanh]


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_dropout_outside_unit_interval_is_refused(p):
    with pytest.raises(ConfigError, match=rf"dropout must be in \[0, 1\), got {p}"):
        LinearBlock(4, 8, dropout=p)


def test_unknown_norm_position_is_refused():
    with pytest.raises(ConfigError, match="norm must be one of before, after, none, got 'middle'"):
        LinearBlock(4, 8, norm="middle")


def test_batchnorm_in_eval_uses_running_statistics():
    torch.manual_seed(0)
    block = LinearBlock(6, 5, "relu", norm="before")
    block.train()
    for _ in range(20):  # accumulate running statistics
        block(torch.randn(32, 6) * 3 + 1)
    block.eval()
    sample = torch.randn(1, 6)
    alone = block(sample)
    batch = torch.cat([sample, torch.randn(15, 6) * 10])
    # The sample's output does not depend on the rest of the batch...
    # (equal up to float rounding: a different batch size may pick a different matmul kernel)
    assert torch.allclose(block(batch)[:1], alone, rtol=0, atol=1e-6)
    # ...whereas in train mode it does.
    block.train()
    assert not torch.allclose(block(batch)[:1], block(torch.cat([sample, torch.zeros(15, 6)]))[:1])


def test_dropout_is_inactive_in_eval_and_active_in_train():
    torch.manual_seed(0)
    model = MLP(8, 3, hidden_sizes=[64], norm="none", dropout=0.5).eval()
    x = torch.randn(4, 8)
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))


def test_residual_block_identity_and_projection_shortcuts():
    same = ResidualMLPBlock(8, 8)
    assert isinstance(same.shortcut, nn.Identity)
    proj = ResidualMLPBlock(8, 12)
    assert [type(m) for m in proj.shortcut] == [nn.Linear, nn.BatchNorm1d]
    assert proj.shortcut[0].bias is None
    assert proj(torch.randn(5, 8)).shape == (5, 12)
    no_norm = ResidualMLPBlock(8, 12, norm="none")
    assert [type(m) for m in no_norm.shortcut] == [nn.Linear]
    assert no_norm.shortcut[0].bias is not None


def test_residual_block_computes_act_of_branch_plus_shortcut():
    torch.manual_seed(0)
    block = ResidualMLPBlock(6, 6, "relu", norm="none").eval()
    x = torch.randn(3, 6)
    assert torch.allclose(block(x), torch.relu(block.branch(x) + x))


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("norm", ["before", "after", "none"])
def test_mlp_has_no_inplace_autograd_errors(residual, norm):
    torch.manual_seed(0)
    model = MLP(10, 4, hidden_sizes=[16, 16, 8], norm=norm, dropout=0.1, residual=residual)
    with torch.autograd.detect_anomaly():
        loss = nn.functional.cross_entropy(model(torch.randn(8, 10)), torch.randint(0, 4, (8,)))
        loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_mlp_flattens_images_and_validates_sizes():
    assert MLP(64, 10, hidden_sizes=[8])(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(ConfigError, match=r"hidden_sizes must all be >= 1, got \[8, 0\]"):
        MLP(64, 10, hidden_sizes=[8, 0])
    with pytest.raises(ConfigError, match="num_classes must be >= 2, got 1"):
        MLP(64, 1)

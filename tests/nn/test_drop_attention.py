import math

import pytest
import torch
from torch import nn

from lit_dl.errors import ConfigError
from lit_dl.nn import DropAttention, MultiHeadSelfAttention


def _mha_pair(dim=16, heads=4, **kwargs):
    torch.manual_seed(0)
    ours = MultiHeadSelfAttention(dim, heads, **kwargs)
    ref = nn.MultiheadAttention(dim, heads, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(ours.in_proj.weight)
        ref.in_proj_bias.copy_(ours.in_proj.bias)
        ref.out_proj.weight.copy_(ours.out_proj.weight)
        ref.out_proj.bias.copy_(ours.out_proj.bias)
    return ours, ref


@pytest.mark.parametrize("mode", ["column", "element"])
def test_rate_zero_equals_torch_multihead_attention(mode):
    ours, ref = _mha_pair(attn_drop=0.0, drop_mode=mode)
    ours.train(), ref.train()
    x = torch.randn(3, 7, 16)
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[1, 5:] = False
    mask[2, 2:] = False
    out, weights = ours(x, mask, return_weights=True)
    ref_out, ref_weights = ref(x, x, x, key_padding_mask=~mask, average_attn_weights=False)
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(weights, ref_weights, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("mode", "window"), [("column", 1), ("element", 1), ("column", 3), ("element", 2)])
def test_train_mode_rows_sum_to_one_after_dropping(mode, window):
    torch.manual_seed(0)
    attn = torch.rand(4, 2, 9, 9).softmax(dim=-1)
    layer = DropAttention(0.5, mode, window).train()
    dropped = layer(attn)
    assert (dropped == 0).any()
    torch.testing.assert_close(dropped.sum(dim=-1), torch.ones(4, 2, 9))


def test_eval_mode_is_deterministic_and_independent_of_the_rate():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 16)
    outputs = []
    for rate in (0.0, 0.3, 0.9):
        torch.manual_seed(1)  # same weights for every rate
        layer = MultiHeadSelfAttention(16, 4, attn_drop=rate, drop_mode="column").eval()
        outputs += [layer(x), layer(x)]
    for out in outputs[1:]:
        assert torch.equal(out, outputs[0])


@pytest.mark.parametrize(("mode", "window"), [("column", 1), ("element", 1), ("column", 4), ("element", 4)])
@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_observed_drop_fraction_matches_the_rate(mode, window, rate):
    torch.manual_seed(0)
    b, h, t = 50, 4, 32
    attn = torch.full((b, h, t, t), 1.0 / t)
    dropped = DropAttention(rate, mode, window).train()(attn)
    is_dropped = dropped == 0
    # Independent draws: one per key window (column) or per query and key window (element).
    draws = b * h * (t // window) * (1 if mode == "column" else t)
    sigma = math.sqrt(rate * (1 - rate) / draws)
    assert abs(is_dropped.float().mean().item() - rate) < 5 * sigma
    if mode == "column":  # the same keys are dropped for every query
        assert torch.equal(is_dropped, is_dropped[:, :, :1, :].expand_as(is_dropped))
    # Dropped keys come in aligned windows of `window` consecutive keys.
    blocks = is_dropped.view(b, h, t, t // window, window)
    assert torch.equal(blocks, blocks[..., :1].expand_as(blocks))


def test_inverse_rescaling_divides_by_one_minus_rate():
    torch.manual_seed(0)
    attn = torch.rand(2, 2, 5, 5).softmax(dim=-1)
    dropped = DropAttention(0.25, "element", rescale="inverse").train()(attn)
    kept = dropped != 0
    torch.testing.assert_close(dropped[kept], attn[kept] / 0.75)


def test_a_row_with_every_key_dropped_keeps_its_weights_and_has_no_nan():
    attn = torch.rand(1, 1, 8, 4, generator=torch.Generator().manual_seed(0)).softmax(dim=-1)
    layer = DropAttention(0.8, "element").train()
    torch.manual_seed(3)
    keep = layer.keep_mask(attn.shape)
    torch.manual_seed(3)
    dropped = layer(attn)
    full = ~keep.any(dim=-1)  # rows whose every key is dropped
    assert full.any() and (~full).any()
    assert not torch.isnan(dropped).any()
    torch.testing.assert_close(dropped[full], attn[full])
    torch.testing.assert_close(
        dropped[~full], (attn * keep)[~full] / (attn * keep)[~full].sum(-1, keepdim=True)
    )
    torch.testing.assert_close(dropped.sum(dim=-1), torch.ones(1, 1, 8))


def test_padded_keys_never_receive_weight_even_when_dropping():
    torch.manual_seed(0)
    layer = MultiHeadSelfAttention(8, 2, attn_drop=0.5, drop_mode="element").train()
    mask = torch.tensor([[True, True, True, False, False]])
    _, weights = layer(torch.randn(1, 5, 8), mask, return_weights=True)
    assert torch.equal(weights[..., 3:], torch.zeros_like(weights[..., 3:]))
    assert not torch.isnan(weights).any()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rate": 1.0}, r"attention drop rate must be in \[0, 1\), got 1.0"),
        ({"mode": "row"}, r"drop mode must be 'element' or 'column', got 'row'"),
        ({"window": 0}, r"window must be >= 1, got 0"),
        ({"rescale": "none"}, r"rescale must be 'renorm' or 'inverse', got 'none'"),
    ],
)
def test_drop_attention_rejects_bad_options(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        DropAttention(**kwargs)


def test_attention_rejects_width_not_divisible_by_heads():
    with pytest.raises(ConfigError, match=r"dim \(10\) must be a positive multiple of num_heads \(4\)"):
        MultiHeadSelfAttention(10, 4)


def test_drop_mode_default_is_the_same_in_every_layer_and_the_recipe():
    import inspect

    from lit_dl.models import TransformerClassifier
    from lit_dl.nn import TransformerSequenceNet
    from lit_dl.nn.transformer import TransformerBlock

    def default(fn, name):
        return inspect.signature(fn).parameters[name].default

    assert default(DropAttention, "mode") == "column"
    for cls in (
        MultiHeadSelfAttention,
        TransformerBlock,
        TransformerSequenceNet,
        TransformerClassifier,
    ):
        assert default(cls, "drop_mode") == "column", cls.__name__


def test_inverse_rescaling_keeps_the_expectation_and_renorm_does_not():
    torch.manual_seed(0)
    attn = torch.tensor([0.9, 0.1]).expand(40_000, 1, 1, 2)  # (B, heads, queries, keys)
    means = {}
    for rescale in ("inverse", "renorm"):
        drop = DropAttention(0.5, mode="element", rescale=rescale).train()
        means[rescale] = drop(attn).mean(dim=(0, 1, 2))
    torch.testing.assert_close(means["inverse"], torch.tensor([0.9, 0.1]), atol=0.01, rtol=0)
    # renorm: keep both 0.9 | only the first 1.0 | only the second 0.0 | neither (kept as is) 0.9
    torch.testing.assert_close(means["renorm"], torch.tensor([0.7, 0.3]), atol=0.01, rtol=0)

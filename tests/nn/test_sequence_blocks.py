import pytest
import torch

from lit_dl.errors import ConfigError
from lit_dl.nn import MaskedPooling, PositionEncoding, TextCNN, TokenEncoder, TransformerSequenceNet


def test_one_hot_projection_is_the_embedding_table_same_init_outputs_and_gradients():
    torch.manual_seed(0)
    emb = TokenEncoder(10, 5, "embedding", padding_idx=0)
    torch.manual_seed(0)
    hot = TokenEncoder(10, 5, "one_hot", padding_idx=0)
    assert isinstance(hot.embedding, torch.nn.Embedding)
    assert torch.equal(hot.embedding.weight, emb.embedding.weight)  # nn.Embedding's N(0, 1) in both
    ids = torch.tensor([[3, 1, 9, 0, 0], [2, 2, 0, 0, 0]])
    torch.testing.assert_close(hot(ids), emb(ids))
    assert torch.equal(emb(ids)[0, 3], torch.zeros(5))
    (hot(ids) ** 2).sum().backward()
    (emb(ids) ** 2).sum().backward()
    torch.testing.assert_close(hot.embedding.weight.grad, emb.embedding.weight.grad)


def test_padding_gets_no_gradient_in_either_encoding():
    ids = torch.tensor([[3, 0, 0]])
    for enc in (TokenEncoder(6, 4, "embedding"), TokenEncoder(6, 4, "one_hot")):
        enc(ids).sum().backward()
        grad = enc.embedding.weight.grad[0]
        assert torch.equal(grad, torch.zeros(4))


def test_masked_pooling_ignores_padding():
    x = torch.tensor([[[1.0], [3.0], [100.0]], [[-2.0], [-5.0], [-100.0]]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    assert MaskedPooling("mean")(x, mask).flatten().tolist() == [2.0, -2.0]
    assert MaskedPooling("max")(x, mask).flatten().tolist() == [3.0, -2.0]
    assert MaskedPooling("first")(x, mask).flatten().tolist() == [1.0, -2.0]
    empty = torch.zeros(2, 3, dtype=torch.bool)
    assert MaskedPooling("max")(x, empty).flatten().tolist() == [0.0, 0.0]
    assert MaskedPooling("mean")(x, empty).flatten().tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    "factory",
    [
        lambda: TextCNN(8, 3, 4, "one_hot", (6,), pooling="mean"),
        lambda: TextCNN(8, 3, 4, "embedding", (6, 6), pooling="max"),
        lambda: TransformerSequenceNet(8, 3, 12, dim=8, num_heads=2, pooling="mean"),
        lambda: TransformerSequenceNet(8, 3, 12, dim=8, num_heads=2, norm_first=False, pooling="max"),
    ],
    ids=["conv_one_hot_mean", "conv2_embedding_max", "transformer_mean", "transformer_postnorm_max"],
)
def test_output_does_not_depend_on_the_amount_of_padding(factory):
    torch.manual_seed(0)
    model = factory().eval()
    ids = torch.tensor([[3, 5, 7, 2]])
    padded = torch.tensor([[3, 5, 7, 2, 0, 0, 0, 0]])
    torch.testing.assert_close(model(padded), model(ids), rtol=1e-5, atol=1e-6)


def test_sinusoidal_positions_follow_the_formula():
    pos = PositionEncoding("sinusoidal", 10, 4)
    out = pos(torch.zeros(1, 3, 4))[0]
    t = torch.arange(3.0)
    expected = torch.stack([t.sin(), t.cos(), (t / 100).sin(), (t / 100).cos()], dim=1)
    torch.testing.assert_close(out, expected)
    assert not list(pos.parameters())


def test_learned_positions_are_an_embedding_and_longer_input_fails():
    pos = PositionEncoding("learned", 4, 3)
    assert sum(p.numel() for p in pos.parameters()) == 12
    with pytest.raises(ValueError, match="sequence length 5 exceeds the position encoding's max_length 4"):
        pos(torch.zeros(1, 5, 3))


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: TokenEncoder(10, 4, "bag"), r"encoding must be 'embedding' or 'one_hot', got 'bag'"),
        (lambda: TokenEncoder(1, 4), r"vocab_size must be >= 2, got 1"),
        (lambda: TokenEncoder(10, 0), r"dim must be >= 1, got 0"),
        (lambda: TokenEncoder(10, 4, padding_idx=10), r"padding_idx must be in \[0, 10\), got 10"),
        (lambda: MaskedPooling("sum"), r"pooling must be one of mean, max, first, got 'sum'"),
        (
            lambda: PositionEncoding("rotary", 8, 4),
            r"positions must be 'sinusoidal' or 'learned', got 'rotary'",
        ),
        (lambda: PositionEncoding("learned", 0, 4), r"max_length must be >= 1, got 0"),
        (lambda: TextCNN(10, 1), r"num_classes must be >= 2, got 1"),
        (lambda: TextCNN(10, 2, conv_channels=[0]), r"conv_channels must all be >= 1, got \[0\]"),
        (lambda: TextCNN(10, 2, kernel_size=4), r"kernel_size must be an odd integer >= 1, got 4"),
        (lambda: TextCNN(10, 2, hidden_size=-1), r"hidden_size must be >= 0, got -1"),
        (lambda: TextCNN(10, 2, dropout=1.5), r"dropout must be in \[0, 1\), got 1.5"),
        (lambda: TransformerSequenceNet(10, 1), r"num_classes must be >= 2, got 1"),
        (lambda: TransformerSequenceNet(10, 2, depth=0), r"depth must be >= 1, got 0"),
        (lambda: TransformerSequenceNet(10, 2, dropout=-0.1), r"dropout must be in \[0, 1\), got -0.1"),
        (lambda: TransformerSequenceNet(10, 2, mlp_ratio=0), r"mlp_ratio must be > 0, got 0"),
    ],
)
def test_sequence_blocks_reject_bad_options(factory, match):
    with pytest.raises(ConfigError, match=match):
        factory()

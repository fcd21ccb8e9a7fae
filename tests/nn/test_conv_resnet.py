import pytest
import torch
from torch import nn

from lit_dl.errors import ConfigError
from lit_dl.nn import BasicBlock, BottleneckBlock, ConvBlock, ConvNet, ResNet


def test_resnet18_cifar_has_the_standard_parameter_count():
    model = ResNet(in_channels=3, num_classes=10, depth=18, width=64, stem="cifar")
    assert sum(p.numel() for p in model.parameters()) == 11_173_962


def test_resnet50_imagenet_matches_the_standard_parameter_count():
    model = ResNet(in_channels=3, num_classes=1000, depth=50, stem="imagenet")
    assert sum(p.numel() for p in model.parameters()) == 25_557_032


@pytest.mark.parametrize(
    ("norm", "expected"),
    [
        ("before", ["Conv2d", "BatchNorm2d", "ReLU"]),
        ("after", ["Conv2d", "ReLU", "BatchNorm2d"]),
        ("none", ["Conv2d", "ReLU"]),
    ],
)
def test_conv_block_layer_order_and_bias(norm, expected):
    block = ConvBlock(3, 8, norm=norm)
    assert [type(m).__name__ for m in block] == expected
    assert (block[0].bias is None) == (norm == "before")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kernel_size": 2}, r"kernel_size must be an odd integer >= 1, got 2"),
        ({"stride": 0}, r"stride must be >= 1, got 0"),
        ({"norm": "middle"}, r"norm must be one of before, after, none, got 'middle'"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
    ],
)
def test_conv_block_rejects_bad_options(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ConvBlock(3, 8, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"in_channels": 0}, r"in_channels must be >= 1, got 0"),
        ({"num_classes": 1}, r"num_classes must be >= 2, got 1"),
        ({"channels": []}, r"channels must be a non-empty list of integers >= 1, got \[\]"),
        ({"blocks_per_stage": 0}, r"blocks_per_stage must be >= 1, got 0"),
    ],
)
def test_convnet_rejects_bad_options(kwargs, match):
    args = {"in_channels": 1, "num_classes": 3, **kwargs}
    with pytest.raises(ConfigError, match=match):
        ConvNet(**args)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"depth": 101}, r"depth must be one of 18, 34, 50, got 101"),
        ({"stem": "tiny"}, r"stem must be 'cifar' or 'imagenet', got 'tiny'"),
        ({"in_channels": 0}, r"in_channels must be >= 1, got 0"),
        ({"num_classes": 1}, r"num_classes must be >= 2, got 1"),
        ({"width": 0}, r"width must be >= 1, got 0"),
    ],
)
def test_resnet_rejects_bad_options(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ResNet(**kwargs)


def test_post_activation_block_ends_in_a_norm_and_activates_after_the_sum():
    torch.manual_seed(0)
    block = BasicBlock(4, 4, preact=False)
    norm = block.residual_branch_norm()
    assert isinstance(norm, nn.BatchNorm2d) and norm is block.branch[-1]
    nn.init.zeros_(norm.weight)
    x = torch.randn(2, 4, 5, 5)
    # Branch is zero: out = relu(0 + x).
    torch.testing.assert_close(block(x), torch.relu(x))


def test_pre_activation_block_has_no_activation_after_the_sum():
    torch.manual_seed(0)
    block = BasicBlock(4, 4, preact=True)
    assert block.residual_branch_norm() is None
    assert isinstance(block.branch[-1], nn.Conv2d)
    nn.init.zeros_(block.last_conv().weight)
    x = torch.randn(2, 4, 5, 5)
    # Branch is zero: the identity shortcut carries x unchanged, negative values included.
    torch.testing.assert_close(block(x), x)
    assert (block(x) < 0).any()


@pytest.mark.parametrize("preact", [False, True], ids=["post", "pre"])
def test_zero_init_residual_makes_every_block_start_as_its_shortcut(preact):
    torch.manual_seed(0)
    model = ResNet(in_channels=3, num_classes=5, depth=18, width=8, preact=preact, zero_init_residual=True)
    model.eval()
    for blk in model.residual_blocks():
        norm = blk.residual_branch_norm()
        if preact:
            assert norm is None and torch.count_nonzero(blk.last_conv().weight) == 0
        else:
            assert torch.count_nonzero(norm.weight) == 0
        x = torch.randn(2, blk.branch[0].in_channels, 6, 6)
        expected = blk.shortcut(blk.pre(x) if preact else x) if blk.projects else x
        torch.testing.assert_close(blk(x), blk.act(expected))


def test_bottleneck_block_expands_channels_and_strides_on_the_3x3_conv():
    block = BottleneckBlock(16, 8, stride=2)
    convs = [m for m in block.branch if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(1, 1), (3, 3), (1, 1)]
    assert [c.stride for c in convs] == [(1, 1), (2, 2), (1, 1)]
    assert block(torch.randn(2, 16, 8, 8)).shape == (2, 32, 4, 4)


def test_preact_resnet_adds_a_final_norm_and_a_bare_conv_stem():
    post = ResNet(depth=18, width=8, preact=False)
    pre = ResNet(depth=18, width=8, preact=True)
    assert [type(m).__name__ for m in post.stem] == ["Conv2d", "BatchNorm2d", "ReLU"]
    assert [type(m).__name__ for m in pre.stem] == ["Conv2d"]
    assert isinstance(post.final, nn.Identity)
    assert [type(m).__name__ for m in pre.final] == ["BatchNorm2d", "ReLU"]


@pytest.mark.parametrize("depth", [18, 50])
def test_preact_resnet_with_imagenet_stem_normalises_the_stem_output_once(depth):
    # The stem ends in BN → act → max-pool; the first block reads that output as it is (its branch and
    # its projection shortcut), as the 'no_preact' block of He et al.'s preresnet.lua.
    model = ResNet(in_channels=3, num_classes=3, depth=depth, width=4, stem="imagenet", preact=True).eval()
    first = model.stages[0][0]
    assert isinstance(first.pre, nn.Identity)
    assert all(not isinstance(b.pre, nn.Identity) for b in model.residual_blocks()[1:])
    seen = {}
    model.stem.register_forward_hook(lambda m, args, out: seen.setdefault("stem", out))
    first.branch[0].register_forward_pre_hook(lambda m, args: seen.setdefault("branch", args[0]))
    if first.projects:
        first.shortcut.register_forward_pre_hook(lambda m, args: seen.setdefault("shortcut", args[0]))
    model(torch.randn(2, 3, 32, 32))
    assert torch.equal(seen["branch"], seen["stem"])
    assert first.projects == (depth == 50)
    if first.projects:
        assert torch.equal(seen["shortcut"], seen["stem"])
    norms = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    # stem + (pre + inner) per block (+ one more inner per bottleneck) - the first block's pre + final
    blocks = len(model.residual_blocks())
    assert norms == 1 + blocks * (2 if depth == 18 else 3) - 1 + 1


def test_preact_resnet_with_cifar_stem_pre_activates_the_bare_stem_conv():
    model = ResNet(in_channels=3, num_classes=3, depth=18, width=4, stem="cifar", preact=True)
    assert [type(m).__name__ for m in model.stages[0][0].pre] == ["BatchNorm2d", "ReLU"]

"""Every backbone: (batch, num_classes) logits for a non-default num_classes; gradients reach all params."""

import pytest
import torch

from lit_dl.nn import ConvNet, ResNet, TextCNN, TransformerSequenceNet

NUM_CLASSES = 7

BACKBONES = {
    "convnet": (lambda: ConvNet(1, NUM_CLASSES, channels=(4, 8)), (3, 1, 8, 8)),
    "convnet_norm_after": (lambda: ConvNet(1, NUM_CLASSES, channels=(4,), norm="after"), (3, 1, 8, 8)),
    "resnet18_cifar": (lambda: ResNet(3, NUM_CLASSES, 18, width=4), (3, 3, 16, 16)),
    "resnet18_cifar_preact": (lambda: ResNet(3, NUM_CLASSES, 18, width=4, preact=True), (3, 3, 16, 16)),
    "resnet34_imagenet": (lambda: ResNet(3, NUM_CLASSES, 34, width=4, stem="imagenet"), (3, 3, 32, 32)),
    "resnet50_cifar": (lambda: ResNet(1, NUM_CLASSES, 50, width=4), (3, 1, 16, 16)),
    "resnet50_imagenet_preact": (
        lambda: ResNet(3, NUM_CLASSES, 50, width=4, stem="imagenet", preact=True),
        (3, 3, 32, 32),
    ),
}


SEQUENCE_BACKBONES = {
    "seq_embedding_conv": lambda: TextCNN(11, NUM_CLASSES, embed_dim=6, conv_channels=(8,)),
    "seq_one_hot_bag_mean": lambda: TextCNN(11, NUM_CLASSES, 6, "one_hot", (), pooling="mean", hidden_size=0),
    "seq_two_convs_first": lambda: TextCNN(11, NUM_CLASSES, 6, conv_channels=(8, 8), pooling="first"),
    "transformer_prenorm": lambda: TransformerSequenceNet(11, NUM_CLASSES, 16, dim=8, num_heads=2),
    "transformer_postnorm_learned_max": lambda: TransformerSequenceNet(
        11, NUM_CLASSES, 16, dim=8, num_heads=2, norm_first=False, positions="learned", pooling="max"
    ),
    "transformer_one_hot_element": lambda: TransformerSequenceNet(
        11, NUM_CLASSES, 16, dim=8, num_heads=2, encoding="one_hot", drop_mode="element", drop_window=2
    ),
}


def _token_ids(shape):
    ids = torch.randint(1, 11, shape)
    ids[1, 4:] = 0  # one padded sequence
    return ids


for _name, _factory in SEQUENCE_BACKBONES.items():
    BACKBONES[_name] = (_factory, (3, 9))
INPUTS = {name: (_token_ids if name in SEQUENCE_BACKBONES else torch.randn) for name in BACKBONES}


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_backbone_logits_shape_and_gradients_reach_every_parameter(name):
    torch.manual_seed(0)
    factory, shape = BACKBONES[name]
    model = factory()
    model.train()
    x = INPUTS[name](*shape) if name not in SEQUENCE_BACKBONES else _token_ids(shape)
    logits = model(x)
    assert logits.shape == (shape[0], NUM_CLASSES)
    # A loss that weighs every logit differently, so no gradient cancels by symmetry.
    (logits * torch.randn_like(logits)).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert missing == []

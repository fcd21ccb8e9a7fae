"""The image and sequence recipes: YAML configs run through the CLI, backbone choice, setup checks."""

from pathlib import Path

import lightning as L
import pytest
import torch

from lit_dl.cli import LitDLCLI, main
from lit_dl.data import SyntheticSequenceDataModule
from lit_dl.errors import ConfigError
from lit_dl.models import (
    ConvNetClassifier,
    ImageClassifier,
    ResNetClassifier,
    SequenceClassifier,
    TransformerClassifier,
)
from lit_dl.nn import ConvNet, ResNet, TextCNN, TransformerSequenceNet

pytestmark = pytest.mark.filterwarnings(
    r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
# Offline configs of this recipe family, with overrides that keep a run to a few tiny batches.
OFFLINE = {
    "digits_cnn.yaml": ["--model.init_args.channels", "[4, 8]"],
    "seq_embedding.yaml": ["--data.init_args.num_train", "160"],
    "seq_transformer.yaml": ["--data.init_args.num_train", "160", "--model.init_args.dim", "8"],
}
for _args in OFFLINE.values():
    if "--data.init_args.num_train" in _args:
        _args += ["--data.init_args.num_val", "16", "--data.init_args.num_test", "16"]


@pytest.mark.parametrize("name", sorted(OFFLINE))
def test_offline_config_fits_and_tests_from_the_cli(tmp_path, name, capsys):
    args = ["fit", "--config", str(CONFIGS / name), "--trainer.default_root_dir", str(tmp_path)]
    args += [
        "--trainer.max_epochs",
        "1",
        "--trainer.limit_train_batches",
        "2",
        "--trainer.limit_val_batches",
        "1",
    ]
    args += ["--trainer.limit_test_batches", "1", "--trainer.enable_progress_bar", "false", *OFFLINE[name]]
    main(args)
    run = tmp_path / "lightning_logs" / "version_0"
    assert (run / "config.yaml").is_file()
    # the best epoch, and last.ckpt to resume from
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch=0-step=2.ckpt", "last.ckpt"]
    assert "test/acc" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["cifar10_resnet18.yaml", *sorted(OFFLINE)])
def test_config_parses_into_the_documented_recipe(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(CONFIGS / name), "--print_config"])
    assert exit_info.value.code == 0
    assert "class_path: lit_dl.models." in capsys.readouterr().out


def test_cifar_config_is_the_standard_recipe(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--config", str(CONFIGS / "cifar10_resnet18.yaml"), "--print_config"])
    out = capsys.readouterr().out
    for line in ("nesterov: true", "weight_decay: 0.0005", "WarmupCosineLR", "augment: true", "depth: 18"):
        assert line in out


@pytest.mark.parametrize(
    ("kwargs", "backbone"),
    [
        ({"arch": "convnet", "channels": [4]}, ConvNet),
        ({"arch": "resnet", "width": 4, "in_channels": 3}, ResNet),
    ],
)
def test_image_classifier_builds_the_chosen_backbone(kwargs, backbone):
    model = ImageClassifier(num_classes=4, **kwargs)
    assert type(model.backbone) is backbone
    assert model(torch.randn(2, kwargs.get("in_channels", 1), 8, 8)).shape == (2, 4)


def test_image_classifier_rejects_unknown_arch():
    with pytest.raises(ConfigError, match=r"arch must be 'convnet' or 'resnet', got 'vit'"):
        ImageClassifier(num_classes=3, arch="vit")


@pytest.mark.parametrize(
    ("cls", "kwargs", "backbone"),
    [
        (ConvNetClassifier, {"channels": [4], "kernel_size": 5, "dropout": 0.5, "norm": "none"}, ConvNet),
        (ResNetClassifier, {"width": 4, "preact": True, "stem": "imagenet"}, ResNet),
    ],
    ids=["convnet", "resnet"],
)
def test_each_image_recipe_builds_its_backbone_with_the_options_given(cls, kwargs, backbone):
    model = cls(num_classes=4, in_channels=3, **kwargs)
    net = model.backbone
    assert type(net) is backbone
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 4)
    if cls is ConvNetClassifier:
        assert any(isinstance(m, torch.nn.Dropout) and m.p == 0.5 for m in net.modules())
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
        assert {m.kernel_size for m in net.modules() if isinstance(m, torch.nn.Conv2d)} == {(5, 5)}
    else:
        assert net.stem[0].kernel_size == (7, 7) and net.stages[0][1].preact


@pytest.mark.parametrize(
    ("cls", "foreign"),
    [
        (ResNetClassifier, ("channels", "blocks_per_stage", "kernel_size", "norm", "dropout")),
        (ConvNetClassifier, ("depth", "width", "stem", "preact", "zero_init_residual")),
    ],
    ids=["resnet", "convnet"],
)
def test_each_image_recipe_has_only_the_options_of_its_architecture(cls, foreign):
    import inspect

    own = set(inspect.signature(cls.__init__).parameters)
    assert not own & set(foreign)


def test_image_classifier_refuses_every_option_its_arch_ignores():
    with pytest.raises(
        ConfigError,
        match=r"^ImageClassifier with arch='resnet' ignores kernel_size=5, norm='none', dropout=0.5: drop them, "
        r"or use lit_dl.models.ResNetClassifier, which takes only the options of that architecture$",
    ):
        ImageClassifier(num_classes=3, arch="resnet", dropout=0.5, norm="none", kernel_size=5)
    with pytest.raises(
        ConfigError, match=r"arch='convnet' ignores depth=50, preact=True: .*ConvNetClassifier"
    ):
        ImageClassifier(num_classes=3, arch="convnet", depth=50, preact=True)


OLD_RESNET_RUN_CONFIG = """\
model:
  class_path: lit_dl.models.ImageClassifier
  init_args:
    arch: resnet
    in_channels: 1
    activation: relu
    channels: [32, 64, 128]
    blocks_per_stage: 2
    kernel_size: 3
    norm: before
    dropout: 0.0
    depth: 18
    width: 4
    stem: cifar
    preact: false
    zero_init_residual: false
    num_classes: 10
data:
  class_path: lit_dl.data.DigitsDataModule
  init_args:
    as_images: true
"""


def test_an_old_run_folders_image_classifier_config_with_every_default_still_loads(tmp_path, capsys):
    # A run folder's config.yaml repeats the defaults of both architectures: they are not refused.
    (tmp_path / "config.yaml").write_text(OLD_RESNET_RUN_CONFIG)
    cli = LitDLCLI(args=["--config", str(tmp_path / "config.yaml")], run=False)
    assert type(cli.model.backbone) is ResNet
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(tmp_path / "config.yaml"), "--model.init_args.dropout", "0.5"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "lit-dl: error: ImageClassifier with arch='resnet' ignores dropout=0.5" in err
    assert "Traceback" not in err


def test_resnet_norms_and_biases_are_left_out_of_weight_decay():
    model = ImageClassifier(num_classes=10, arch="resnet", in_channels=3, width=4)
    decay = model.decay_parameter_names()
    assert decay["backbone.stem.0.weight"] and decay["backbone.head.weight"]
    assert not decay["backbone.head.bias"]
    assert not decay["backbone.stem.1.weight"] and not decay["backbone.stem.1.bias"]


@pytest.mark.parametrize(
    ("cls", "backbone"), [(SequenceClassifier, TextCNN), (TransformerClassifier, TransformerSequenceNet)]
)
def test_sequence_recipes_build_their_backbone(cls, backbone):
    model = cls(num_classes=3, vocab_size=12)
    assert type(model.backbone) is backbone
    assert model(torch.randint(0, 12, (2, 9))).shape == (2, 3)


@pytest.mark.parametrize("cls", [SequenceClassifier, TransformerClassifier])
def test_sequence_recipe_rejects_data_with_a_larger_vocabulary(tmp_path, cls):
    model = cls(num_classes=2, vocab_size=8)
    data = SyntheticSequenceDataModule(vocab_size=16, num_train=8, num_val=4, num_test=4)
    trainer = L.Trainer(default_root_dir=tmp_path, max_steps=1, logger=False, enable_progress_bar=False)
    with pytest.raises(ConfigError, match=r"model vocab_size=8 is smaller than the 16 token ids of the data"):
        trainer.fit(model, datamodule=data)


def test_sequence_recipe_rejects_another_padding_id(tmp_path):
    model = SequenceClassifier(num_classes=2, vocab_size=16, padding_idx=3)
    data = SyntheticSequenceDataModule(vocab_size=16, num_train=8, num_val=4, num_test=4)
    trainer = L.Trainer(default_root_dir=tmp_path, max_steps=1, logger=False, enable_progress_bar=False)
    with pytest.raises(ConfigError, match=r"model padding_idx=3 differs from the data's padding id 0"):
        trainer.fit(model, datamodule=data)

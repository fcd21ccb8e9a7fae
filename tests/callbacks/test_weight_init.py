from __future__ import annotations

import copy
import logging
import math
import pickle

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from cb_helpers import LIGHTNING_PYTREE_WARNING, tiny_data, tiny_model, tiny_trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn

from lit_dl.callbacks import SCHEMES, WeightInit
from lit_dl.callbacks.weight_init import _format_table
from lit_dl.errors import ConfigError
from lit_dl.nn import (
    MLP,
    ConvNet,
    MultiHeadSelfAttention,
    ResidualMLPBlock,
    ResNet,
    SelfInitializing,
    TextCNN,
    TransformerSequenceNet,
    activation_names,
)
from lit_dl.nn.init_marks import mark_initialized
from lit_dl.nn.resnet_blocks import BasicBlock, BottleneckBlock
from lit_dl.nn.transformer import TransformerBlock

pytestmark = LIGHTNING_PYTREE_WARNING

TANH_GAIN = 5.0 / 3.0


def linear_layers(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def test_tanh_mlp_weight_std_matches_xavier() -> None:
    model = MLP(64, 10, hidden_sizes=[256, 256, 128], activation="tanh", norm="none")
    WeightInit().apply(model, seed=0)
    layers = linear_layers(model)
    assert len(layers) == 4
    for i, layer in enumerate(layers):
        fan_out, fan_in = layer.weight.shape
        gain = 1.0 if i == len(layers) - 1 else TANH_GAIN  # the head feeds nothing: gain 1
        expected = gain * math.sqrt(2.0 / (fan_in + fan_out))
        assert layer.weight.std().item() == pytest.approx(expected, rel=0.10)
        assert torch.count_nonzero(layer.bias) == 0


def test_relu_mlp_weight_std_matches_he() -> None:
    model = MLP(64, 10, hidden_sizes=[256, 256, 128], activation="relu", norm="before")
    WeightInit().apply(model, seed=0)
    *hidden, head = linear_layers(model)
    for layer in hidden:
        fan_in = layer.weight.shape[1]
        assert layer.weight.std().item() == pytest.approx(math.sqrt(2.0 / fan_in), rel=0.10)
    assert head.weight.std().item() == pytest.approx(math.sqrt(2.0 / sum(head.weight.shape)), rel=0.10)


def test_leaky_relu_gain_uses_the_blocks_negative_slope() -> None:
    model = MLP(64, 10, [256], activation="leaky_relu", activation_kwargs={"negative_slope": 0.2})
    records = WeightInit().apply(model, seed=0)
    gain = math.sqrt(2.0 / (1 + 0.2**2))
    assert records[0].gain == pytest.approx(gain)
    assert model.features[1][0].weight.std().item() == pytest.approx(gain / 8.0, rel=0.10)


AUTO_SCHEME = {"sigmoid": "xavier_uniform", "tanh": "xavier_uniform", "identity": "xavier_uniform"}


@pytest.mark.parametrize("activation", activation_names())
def test_auto_scheme_and_gain_for_every_registered_activation(activation: str) -> None:
    model = MLP(16, 3, [8, 8], activation=activation, norm="before")
    records = WeightInit().plan(model)
    assert [r.layer for r in records] == ["features.1.0", "features.2.0", "head"]
    act_class = type(model.features[1][2]).__name__
    expected_act = "none" if activation == "identity" else act_class
    expected_scheme = AUTO_SCHEME.get(activation, "kaiming_normal")
    for rec in records[:2]:
        assert (rec.activation, rec.scheme) == (expected_act, expected_scheme)
    assert (records[2].activation, records[2].scheme, records[2].gain) == ("none", "xavier_uniform", 1.0)
    expected_gain = {"tanh": TANH_GAIN, "sigmoid": 1.0, "identity": 1.0, "leaky_relu": math.sqrt(2 / 1.0001)}
    assert records[0].gain == pytest.approx(expected_gain.get(activation, math.sqrt(2.0)))


def test_residual_block_layers_feed_the_activation_after_the_sum_and_zero_init() -> None:
    model = MLP(16, 3, [16, 32], activation="tanh", norm="before", residual=True)
    # Break the norms so that resetting them to (1, 0) is visible.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            nn.init.constant_(m.weight, 3.0)
            nn.init.constant_(m.bias, 2.0)
    records = {r.layer: r.activation for r in WeightInit(zero_init_residual=True).apply(model, seed=1)}
    assert records == {
        "features.1.branch.0": "Tanh",
        "features.1.branch.3": "Tanh",  # last Linear of the branch: sum, then block.act
        "features.2.branch.0": "Tanh",
        "features.2.branch.3": "Tanh",
        "features.2.shortcut.0": "Tanh",  # projection shortcut feeds the sum too
        "head": "none",
    }
    branch_norms = set()
    for block in (model.features[1], model.features[2]):
        assert block.residual_branch_norm() is block.branch[-1]
        assert torch.count_nonzero(block.residual_branch_norm().weight) == 0
        branch_norms.add(block.residual_branch_norm())
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            assert torch.count_nonzero(m.bias) == 0
            if m not in branch_norms:
                assert torch.equal(m.weight, torch.ones_like(m.weight))


def test_zero_init_residual_zeroes_the_last_linear_of_a_block_without_norms() -> None:
    block = ResidualMLPBlock(8, 8, norm="none")
    assert block.residual_branch_norm() is None
    assert block.zero_init_weight() is block.branch[-1].weight
    WeightInit(zero_init_residual=True).apply(block, seed=0)
    assert torch.count_nonzero(block.branch[-1].weight) == 0
    x = torch.randn(4, 8)
    assert torch.equal(block(x), torch.relu(x))  # the block starts as act(shortcut(x))


def test_plain_sequential_activation_inferred_from_what_follows() -> None:
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.BatchNorm2d(4),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Conv1d(4, 4, 1),  # followed by another layer: linear
        nn.Conv3d(4, 4, 1),
        nn.Sequential(nn.Dropout(0.1), nn.LeakyReLU(0.1)),
        nn.Flatten(),
        nn.Sequential(nn.Linear(4, 4)),  # last in its Sequential: feeds what follows the Sequential
        nn.Tanh(),
        nn.Linear(4, 2),
    )
    records = WeightInit().plan(model)
    assert [(r.layer, r.activation, r.scheme) for r in records] == [
        ("0", "ReLU", "kaiming_normal"),
        ("4", "none", "xavier_uniform"),
        ("5", "LeakyReLU", "kaiming_normal"),
        ("8.0", "Tanh", "xavier_uniform"),
        ("10", "none", "xavier_uniform"),
    ]
    assert records[0].shape == (4, 1, 3, 3)
    assert records[2].gain == pytest.approx(math.sqrt(2 / 1.01))


def test_conv_weight_std_uses_the_receptive_field_fan() -> None:
    conv = nn.Conv2d(16, 64, 3)
    WeightInit(scheme="kaiming_normal").apply(nn.Sequential(conv, nn.ReLU()), seed=0)
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2.0 / (16 * 9)), rel=0.10)


@pytest.mark.parametrize("scheme", [s for s in SCHEMES if s != "auto"])
def test_forced_schemes_are_deterministic_and_recorded(scheme: str) -> None:
    def build() -> nn.Module:
        return MLP(32, 4, [64], activation="tanh", norm="none")

    a, b, c = build(), build(), build()
    records = WeightInit(scheme=scheme).apply(a, seed=5)
    WeightInit(scheme=scheme).apply(b, seed=5)
    WeightInit(scheme=scheme).apply(c, seed=6)
    assert {r.scheme for r in records} == {scheme}
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.head.weight, c.head.weight)


def test_forced_scheme_statistics() -> None:
    model = MLP(256, 64, [128], activation="tanh", norm="none")
    WeightInit(scheme="orthogonal").apply(model, seed=0)
    w = model.features[1][0].weight  # (128, 256): orthonormal rows scaled by the tanh gain
    assert torch.allclose(w @ w.T, TANH_GAIN**2 * torch.eye(128), atol=1e-4)
    WeightInit(scheme="kaiming_uniform", mode="fan_out").apply(model, seed=0)
    assert model.features[1][0].weight.std().item() == pytest.approx(TANH_GAIN / math.sqrt(128), rel=0.10)


def test_init_leaves_the_global_rng_alone() -> None:
    a, b = MLP(8, 2, [8]), MLP(8, 2, [8])
    state = torch.random.get_rng_state()
    WeightInit(scheme="torch_default").apply(a, seed=0)
    WeightInit().apply(b, seed=0)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_unknown_scheme_fails_at_construction_with_the_valid_names() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown weight init scheme 'he'; valid names are: auto, xavier_uniform"
    ):
        WeightInit(scheme="he")  # type: ignore[arg-type]


def test_bad_mode_fails_at_construction() -> None:
    with pytest.raises(ConfigError, match=r"mode must be 'fan_in' or 'fan_out', got 'fan_avg'"):
        WeightInit(mode="fan_avg")  # type: ignore[arg-type]


def test_fit_initialises_in_setup_with_the_given_seed_and_logs_the_table(tmp_path, caplog) -> None:
    model = tiny_model(activation="tanh")
    expected = tiny_model(activation="tanh")
    WeightInit().apply(expected, seed=7)
    trainer = tiny_trainer(tmp_path, [WeightInit(seed=7)], max_epochs=0)
    with caplog.at_level(logging.INFO):
        trainer.fit(model, datamodule=tiny_data())
    for (name, p), q in zip(model.state_dict().items(), expected.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    table = "\n".join(r.getMessage() for r in caplog.records if "WeightInit" in r.getMessage())
    assert "backbone.features.1.0  8x16   xavier_uniform  Tanh" in table
    assert "backbone.head" in table


def test_seed_defaults_to_the_run_seed(tmp_path) -> None:
    L.seed_everything(11)
    model = tiny_model()
    tiny_trainer(tmp_path, [WeightInit()], max_epochs=0).fit(model, datamodule=tiny_data())
    expected = tiny_model()
    WeightInit().apply(expected, seed=11)
    assert torch.equal(model.backbone.head.weight, expected.backbone.head.weight)


def test_resumed_run_keeps_the_checkpoint_weights_bit_identical(tmp_path) -> None:
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    first = tiny_model()
    tiny_trainer(tmp_path, [WeightInit(seed=0), ckpt], max_epochs=2, enable_checkpointing=True).fit(
        first, datamodule=tiny_data()
    )
    saved = torch.load(ckpt.last_model_path, weights_only=False)["state_dict"]
    resumed = tiny_model()
    assert not torch.equal(resumed.backbone.head.weight, saved["backbone.head.weight"])
    trainer = tiny_trainer(tmp_path, [WeightInit(seed=0)], max_epochs=2)
    # weights_only=False: the hparams of a Python-built task hold the optimizer class.
    trainer.fit(resumed, datamodule=tiny_data(), ckpt_path=ckpt.last_model_path, weights_only=False)
    state = resumed.state_dict()
    assert state.keys() == saved.keys()
    for name, value in saved.items():
        assert torch.equal(state[name], value), name


def test_test_stage_and_second_fit_keep_trained_weights(tmp_path) -> None:
    model = tiny_model()
    callback = WeightInit(seed=0)
    trainer = tiny_trainer(tmp_path, [callback])
    trainer.fit(model, datamodule=tiny_data())
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    trainer.test(model, datamodule=tiny_data(), verbose=False)
    tiny_trainer(tmp_path, [callback], max_epochs=0).fit(model, datamodule=tiny_data())
    for name, value in model.state_dict().items():
        assert torch.equal(value, trained[name]), name


class DesyncRanks(L.Callback):
    """Gives every rank its own global RNG, as a run without seed_everything would have."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        torch.manual_seed(1000 + trainer.global_rank)


class SaveWeightsAtSetup(L.Callback):
    """Saves each rank's weights right after the callbacks before it ran their setup."""

    def __init__(self, folder) -> None:
        self.folder = folder

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        state = {k: v.clone() for k, v in pl_module.state_dict().items()}
        torch.save(state, self.folder / f"rank{trainer.global_rank}.pt")

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # ddp_spawn leaves the gloo group alive; a spawned process that exits with gloo's threads
        # still running can abort ("terminate called without an active exception"). Close it first.
        if torch.distributed.is_initialized():
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()


def test_every_rank_gets_the_same_weights_before_the_ddp_broadcast(tmp_path) -> None:
    callbacks = [DesyncRanks(), WeightInit(), SaveWeightsAtSetup(tmp_path)]
    trainer = tiny_trainer(tmp_path, callbacks, max_epochs=0, devices=2, strategy="ddp_spawn", logger=False)
    trainer.fit(tiny_model(), datamodule=tiny_data())
    rank0 = torch.load(tmp_path / "rank0.pt")
    rank1 = torch.load(tmp_path / "rank1.pt")
    assert rank0.keys() == rank1.keys()
    for name, value in rank0.items():
        assert torch.equal(value, rank1[name]), name
    # The seed came from rank 0's RNG: the weights are those of seed 1000.
    expected = tiny_model()
    WeightInit().apply(expected, seed=1000)
    assert torch.equal(rank0["backbone.head.weight"], expected.backbone.head.weight)


def test_callback_pickles_for_spawned_processes_and_forgets_which_models_it_initialised() -> None:
    callback = WeightInit(scheme="orthogonal", seed=3)
    model = tiny_model()
    callback._done.add(model)
    clone = pickle.loads(pickle.dumps(callback))
    assert (clone.scheme, clone.seed, len(clone._done)) == ("orthogonal", 3, 0)


@pytest.mark.parametrize("preact", [False, True], ids=["post", "pre"])
def test_zero_init_residual_makes_resnet_blocks_start_as_their_shortcut(preact: bool) -> None:
    torch.manual_seed(0)
    blocks = nn.Sequential(BasicBlock(4, 4, 1, preact), BasicBlock(4, 8, 2, preact))
    for block in blocks:  # non-zero BN statistics so that a zero branch shows in the output
        block.branch[1].running_var.fill_(2.0)
    WeightInit(zero_init_residual=True).apply(blocks, seed=0)
    blocks.eval()
    for block in blocks:
        # post-activation: the branch's last BN weight; pre-activation: its last conv (no norm after it)
        zeroed = block.branch[-1].weight
        assert block.zero_init_weight() is zeroed
        assert torch.count_nonzero(zeroed) == 0
        x = torch.randn(2, block.branch[0].in_channels, 6, 6)
        skip = block.shortcut(block.pre(x) if preact else x) if block.projects else x
        torch.testing.assert_close(block(x), block.act(skip))


@pytest.mark.parametrize("preact", [False, True], ids=["post", "pre"])
def test_weight_init_gives_a_resnet_its_own_init_and_keeps_the_zeroed_branches_it_was_built_with(
    preact: bool,
) -> None:
    model = ResNet(in_channels=1, num_classes=3, depth=18, width=8, preact=preact, zero_init_residual=True)
    expected = copy.deepcopy(model)
    callback = WeightInit(zero_init_residual=False)
    assert callback.skipped(model) == {}  # nothing loaded: nothing to leave alone
    records = callback.apply(model, seed=0)
    expected.init_weights(generator=torch.Generator().manual_seed(0))
    for (name, value), other in zip(model.state_dict().items(), expected.state_dict().values(), strict=True):
        assert torch.equal(value, other), name
    # He normal in fan-out mode for every conv (torchvision's recipe), Xavier (gain 1) for the head.
    convs = {(r.scheme, r.activation, r.mode, r.gain) for r in records if len(r.shape) == 4}
    assert convs == {("kaiming_normal", "ReLU", "fan_out", math.sqrt(2.0))}
    assert (records[-1].layer, records[-1].scheme, records[-1].gain) == ("head", "xavier_uniform", 1.0)
    for block in model.residual_blocks():
        assert torch.count_nonzero(block.zero_init_weight()) == 0


def test_marked_submodule_and_parameters_it_shares_are_left_alone_and_logged(tmp_path, caplog) -> None:
    model = tiny_model()
    first = model.backbone.features[1][0]  # the first Linear
    mark_initialized(first, "checkpoint init.ckpt")
    # A module outside the marked one that shares its weight (tied weights) must not touch it either.
    model.tied = nn.Linear(16, 8, bias=False)
    model.tied.weight = first.weight
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = tiny_trainer(tmp_path, [WeightInit(seed=3)], max_epochs=0)
    with caplog.at_level(logging.INFO):
        trainer.fit(model, datamodule=tiny_data())
    assert torch.equal(first.weight, before["backbone.features.1.0.weight"])
    assert torch.equal(first.bias, before["backbone.features.1.0.bias"])
    assert not torch.equal(model.backbone.head.weight, before["backbone.head.weight"])
    messages = [r.getMessage() for r in caplog.records]
    assert (
        "WeightInit: left alone, already initialised: backbone.features.1.0 (set by checkpoint init.ckpt)"
        in messages
    )


def test_torch_default_draws_from_the_cpu_generator_alone(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("torch_default must not reseed the global (CUDA) generators")

    monkeypatch.setattr(torch, "manual_seed", refuse)
    monkeypatch.setattr(torch.cuda, "manual_seed_all", refuse)
    monkeypatch.setattr(torch.cuda, "manual_seed", refuse)
    first, second = tiny_model(), tiny_model()
    state = torch.get_rng_state()
    WeightInit(scheme="torch_default").apply(first, seed=5)
    WeightInit(scheme="torch_default").apply(second, seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    for (name, p), q in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    # PyTorch's default init of a Linear: weights and biases within ±1/sqrt(fan_in).
    head = first.backbone.head
    bound = 1 / math.sqrt(head.in_features)
    assert head.bias.abs().max() <= bound and head.bias.abs().max() > 0


def test_text_cnn_convs_feed_their_own_relu_and_get_he_init() -> None:
    from lit_dl.nn import TextCNN

    model = TextCNN(vocab_size=8, num_classes=2, embed_dim=4, conv_channels=[32, 64], hidden_size=8)
    acts = [block[1] for block in model.convs]
    assert acts[0] is not acts[1]
    plan = {r.layer: (r.scheme, r.activation) for r in WeightInit().plan(model)}
    assert plan["convs.0.0"] == ("kaiming_normal", "ReLU")
    assert plan["convs.1.0"] == ("kaiming_normal", "ReLU")


class GeluBlock(nn.Module):
    """A custom block that applies its activation functionally: invisible in the module tree."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.fc(x))


def gelu_net() -> nn.Sequential:
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), GeluBlock(8), nn.Linear(8, 3))


def test_a_layer_whose_activation_is_applied_in_forward_keeps_pytorchs_default_and_the_table_says_so() -> (
    None
):
    torch.manual_seed(0)
    net = gelu_net()
    torch.manual_seed(0)
    default = gelu_net()
    callback = WeightInit(seed=1)
    records = callback.apply(net, seed=1)
    assert torch.equal(net[2].fc.weight, default[2].fc.weight)
    assert torch.equal(net[2].fc.bias, default[2].fc.bias)
    assert [(r.layer, r.scheme, r.activation, r.gain) for r in records] == [
        ("0", "kaiming_normal", "ReLU", math.sqrt(2.0)),
        ("2.fc", "default", "unknown", None),
        ("3", "xavier_uniform", "none", 1.0),
    ]
    assert not torch.equal(net[0].weight, default[0].weight)
    table = _format_table(records).splitlines()
    assert table[3].split() == ["2.fc", "8x8", "default", "unknown", "-"]


def test_a_forced_scheme_with_a_gain_needs_no_activation_and_initialises_an_unknown_layer() -> None:
    net = gelu_net()
    records = WeightInit(scheme="xavier_normal", gain=1.0).apply(net, seed=0)
    assert (records[1].layer, records[1].scheme, records[1].activation, records[1].gain) == (
        "2.fc",
        "xavier_normal",
        "unknown",
        1.0,
    )
    expected = torch.empty(8, 8)
    generator = torch.Generator().manual_seed(0)
    nn.init.kaiming_normal_(torch.empty(8, 4), generator=generator)  # layer 0 draws first
    nn.init.xavier_normal_(expected, gain=1.0, generator=generator)
    assert torch.equal(net[2].fc.weight, expected)
    # Without a gain, a forced scheme would need the activation: the layer keeps its weights.
    assert WeightInit(scheme="xavier_normal").plan(net)[1].scheme == "default"


def test_gain_overrides_the_activations_gain_so_xavier_with_gain_one_can_be_chosen_on_relu() -> None:
    model = MLP(256, 10, [256, 256], activation="relu", norm="none")
    records = WeightInit(scheme="xavier_normal", gain=1.0).apply(model, seed=0)
    assert {(r.scheme, r.activation, r.gain) for r in records[:2]} == {("xavier_normal", "ReLU", 1.0)}
    w = model.features[1][0].weight
    assert w.std().item() == pytest.approx(math.sqrt(2.0 / 512), rel=0.05)
    # Without gain, a forced scheme keeps ReLU's sqrt(2): on a square layer exactly He's std.
    assert WeightInit(scheme="xavier_normal").plan(model)[1].gain == pytest.approx(math.sqrt(2.0))


@pytest.mark.parametrize(("gain", "match"), [(0.0, "gain must be > 0, got 0.0"), (-1.0, "got -1.0")])
def test_a_gain_that_is_not_positive_fails_at_construction(gain: float, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        WeightInit(gain=gain)


class Holder(L.LightningModule):
    """A LightningModule holding one network, as a task holds its backbone."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.backbone = net


BACKBONES = {
    "mlp": lambda: MLP(6, 3, [8, 8], activation="tanh", norm="before"),
    "mlp_residual": lambda: MLP(6, 3, [8, 8], norm="none", residual=True),
    "mlp_residual_bn": lambda: MLP(6, 3, [8, 16], activation="leaky_relu", residual=True),
    "convnet": lambda: ConvNet(1, 3, [4, 8], blocks_per_stage=1, norm="after"),
    "resnet18_cifar": lambda: ResNet(1, 3, 18, width=4),
    "resnet18_imagenet_preact": lambda: ResNet(1, 3, 18, width=4, stem="imagenet", preact=True),
    "resnet50_cifar_preact": lambda: ResNet(1, 3, 50, width=2, preact=True, zero_init_residual=True),
    "text_cnn": lambda: TextCNN(10, 3, embed_dim=4, conv_channels=[6, 6], hidden_size=5, dropout=0.1),
    "transformer_pre_norm": lambda: TransformerSequenceNet(10, 3, max_length=8, dim=8, num_heads=2),
    "transformer_post_norm": lambda: TransformerSequenceNet(
        10, 3, max_length=8, dim=8, num_heads=2, norm_first=False, positions="learned"
    ),
    # Blocks initialise themselves too (inside a foreign network as well: see the tests above).
    "basic_block_post": lambda: BasicBlock(4, 8, 2),
    "bottleneck_block_preact": lambda: BottleneckBlock(8, 2, 2, preact=True),
    "residual_mlp_block": lambda: ResidualMLPBlock(6, 8, activation="tanh"),
    "transformer_layer": lambda: TransformerBlock(8, 2, norm_first=False),
    "attention": lambda: MultiHeadSelfAttention(8, 2),
}


def test_every_self_initializing_class_of_lit_dl_nn_is_in_the_backbone_table() -> None:
    import lit_dl.nn

    classes = [getattr(lit_dl.nn, name) for name in lit_dl.nn.__all__]
    # ResidualBlock is the base of BasicBlock and BottleneckBlock, which are built here.
    wanted = {c for c in classes if isinstance(c, type) and issubclass(c, SelfInitializing)}
    wanted -= {SelfInitializing, lit_dl.nn.ResidualBlock}
    built = set()
    for build in BACKBONES.values():
        built.update(type(m) for m in build().modules() if isinstance(m, SelfInitializing))
    assert wanted <= built, wanted - built


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_weight_init_gives_exactly_the_backbones_own_init_weights(backbone: str, scheme: str) -> None:
    torch.manual_seed(0)
    task = Holder(BACKBONES[backbone]())
    own = copy.deepcopy(task.backbone)
    for p in task.parameters():  # start from weights neither init would give
        p.data.normal_()
    own.load_state_dict(task.backbone.state_dict())
    records = WeightInit(scheme=scheme).apply(task, seed=4)
    own_records = own.init_weights(scheme=scheme, generator=torch.Generator().manual_seed(4))
    assert [r.layer for r in records] == [f"backbone.{r.layer}" for r in own_records]
    assert len(records) == sum(isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)) for m in own.modules())
    for (name, value), other in zip(
        task.backbone.state_dict().items(), own.state_dict().values(), strict=True
    ):
        assert torch.equal(value, other), name


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_weight_init_passes_gain_mode_and_zero_init_residual_to_the_backbone(backbone: str) -> None:
    torch.manual_seed(0)
    task = Holder(BACKBONES[backbone]())
    own = copy.deepcopy(task.backbone)
    WeightInit(scheme="kaiming_uniform", mode="fan_out", gain=0.5, zero_init_residual=True).apply(
        task, seed=2
    )
    own.init_weights("kaiming_uniform", "fan_out", 0.5, True, torch.Generator().manual_seed(2))
    for (name, value), other in zip(
        task.backbone.state_dict().items(), own.state_dict().values(), strict=True
    ):
        assert torch.equal(value, other), name
    zeroed = list(own.residual_zero_weights())
    assert (len(zeroed) > 0) == (backbone not in ("mlp", "convnet", "text_cnn", "attention"))
    assert all(torch.count_nonzero(w) == 0 for w in zeroed)

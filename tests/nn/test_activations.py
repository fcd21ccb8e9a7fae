from types import SimpleNamespace

import pytest
import torch
from torch import nn

from lit_dl import ConfigError
from lit_dl.nn import ACTIVATIONS, activation_names, make_activation, register_activation


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_registered_activation_builds_and_keeps_shape(name):
    act = make_activation(name)
    x = torch.randn(4, 5, requires_grad=True)
    version = x._version
    y = act(x)
    assert isinstance(act, nn.Module)
    assert y.shape == x.shape
    assert x._version == version  # the input was not modified in place


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("relu", nn.ReLU),
        ("leaky_relu", nn.LeakyReLU),
        ("sigmoid", nn.Sigmoid),
        ("tanh", nn.Tanh),
        ("gelu", nn.GELU),
        ("silu", nn.SiLU),
        ("identity", nn.Identity),
    ],
)
def test_names_map_to_torch_modules(name, expected):
    assert type(make_activation(name)) is expected


def test_leaky_relu_negative_slope_is_configurable():
    act = make_activation("leaky_relu", negative_slope=0.2)
    assert act.negative_slope == 0.2
    assert act(torch.tensor([-1.0])).item() == pytest.approx(-0.2)


def test_unknown_name_lists_valid_names():
    with pytest.raises(
        ConfigError, match=r"unknown activation 'swishy'; valid names are: elu, gelu, identity"
    ):
        make_activation("swishy")


def test_unknown_option_names_the_activation():
    with pytest.raises(ConfigError, match=r"activation 'relu' does not take options \['slope'\]"):
        make_activation("relu", slope=0.1)


def test_register_activation_adds_a_name_and_refuses_duplicates():
    register_activation("mish_test", nn.Mish)
    try:
        assert "mish_test" in activation_names()
        assert isinstance(make_activation("mish_test"), nn.Mish)
        with pytest.raises(ConfigError, match="'mish_test' is already registered"):
            register_activation("mish_test", nn.Mish)
    finally:
        del ACTIVATIONS["mish_test"]


def test_a_registered_activation_is_seen_by_weight_init_and_the_monitors():
    from lit_dl.callbacks import DeadReLUMonitor, WeightInit
    from lit_dl.nn import MLP, layers

    class Rectifier(nn.Module):  # a project's own activation, unknown to lit_dl before registration
        def forward(self, x):
            return x.clamp_min(0.0)

    register_activation("rectifier_test", Rectifier, init="he", nonlinearity="relu", can_die=True)
    try:
        model = MLP(4, 3, [8], activation="rectifier_test", norm="none")
        first = WeightInit().plan(model)[0]
        assert (first.scheme, first.activation) == ("kaiming_normal", "Rectifier")
        assert layers.is_activation(model.features[1][1]) and layers.can_die(model.features[1][1])
        monitor = DeadReLUMonitor()
        trainer = SimpleNamespace(sanity_checking=False, current_epoch=0)
        monitor.on_validation_epoch_start(trainer, model)
        assert len(monitor._handles) == 1
        monitor._remove_hooks()
    finally:
        del ACTIVATIONS["rectifier_test"]
        del layers._ACTIVATION_KINDS[Rectifier]


def test_register_activation_checks_the_init_family():
    with pytest.raises(ConfigError, match=r"init must be one of he, xavier, lecun, got 'glorot'"):
        register_activation("bad_init_test", nn.Hardswish, init="glorot")
    assert "bad_init_test" not in ACTIVATIONS


def test_register_activation_checks_the_nonlinearity_against_torchs_gains():
    from lit_dl.nn.layers import GAIN_NONLINEARITIES

    for name in GAIN_NONLINEARITIES:  # each one torch has a gain for
        assert nn.init.calculate_gain(name) > 0
    with pytest.raises(ValueError):
        nn.init.calculate_gain("gelu")
    with pytest.raises(
        ConfigError,
        match=r"nonlinearity must be one of linear, sigmoid, tanh, relu, leaky_relu, selu "
        r"\(torch.nn.init.calculate_gain's\), got 'gelu'",
    ):
        register_activation("bad_gain_test", nn.Hardswish, nonlinearity="gelu")
    assert "bad_gain_test" not in ACTIVATIONS


def test_a_subclass_of_a_known_activation_registered_with_its_own_kind_is_honoured():
    from lit_dl.callbacks import WeightInit
    from lit_dl.nn import MLP, layers

    class LinearGainReLU(nn.ReLU):  # a ReLU that a project wants initialised as Xavier with gain 1
        pass

    class PlainReLU(nn.ReLU):  # registered without options: a ReLU, as its base
        pass

    register_activation("linear_gain_relu_test", LinearGainReLU, init="xavier", nonlinearity="linear")
    register_activation("plain_relu_test", PlainReLU)
    try:
        first = WeightInit().plan(MLP(4, 3, [8], activation="linear_gain_relu_test", norm="none"))[0]
        assert (first.scheme, first.activation, first.gain) == ("xavier_uniform", "LinearGainReLU", 1.0)
        assert layers.can_die(LinearGainReLU())  # what was not given comes from nn.ReLU
        plain = WeightInit().plan(MLP(4, 3, [8], activation="plain_relu_test", norm="none"))[0]
        assert (plain.scheme, plain.gain) == ("kaiming_normal", pytest.approx(2**0.5))
    finally:
        for name, cls in (("linear_gain_relu_test", LinearGainReLU), ("plain_relu_test", PlainReLU)):
            del ACTIVATIONS[name]
            del layers._ACTIVATION_KINDS[cls]


def test_registering_a_builtin_activation_with_another_kind_is_refused():
    with pytest.raises(
        ConfigError, match=r"ReLU is a built-in activation \(he init, 'relu' gain\); register a subclass"
    ):
        register_activation("relu_as_xavier_test", nn.ReLU, init="xavier")
    assert "relu_as_xavier_test" not in ACTIVATIONS

"""The translation layer: which exceptions are bad input (one line) and which keep their traceback."""

from __future__ import annotations

import pytest
from lightning.fabric.utilities.exceptions import MisconfigurationException

from lit_dl.cli.error_messages import summarize_parse_error, to_config_error, trainer_error
from lit_dl.errors import ConfigError


def _raised(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as err:
            raise outer from err
    except BaseException as err:
        return err


@pytest.mark.parametrize(
    ("err", "message"),
    [
        (
            _raised(RuntimeError("wrapped"), ConfigError("dropout must be in [0, 1), got 2")),
            "dropout must be in [0, 1), got 2",
        ),
        (
            MisconfigurationException("`Trainer(devices=0)`\n is not valid"),
            "`Trainer(devices=0)` is not valid",
        ),
        (
            RuntimeError(
                "Early stopping conditioned on metric `val/accc` which is not available. Pass in ..."
            ),
            "Early stopping conditioned on metric `val/accc` which is not available. Pass in ...",
        ),
        (
            FileNotFoundError(2, "No such file or directory", "/data/train.csv"),
            "No such file or directory: '/data/train.csv'",
        ),
    ],
    ids=["config-error-in-chain", "misconfiguration", "early-stopping-monitor", "missing-file"],
)
def test_bad_input_becomes_one_config_error(err, message):
    assert str(to_config_error(err)) == message


@pytest.mark.parametrize(
    "err",
    [
        RuntimeError("mat1 and mat2 shapes cannot be multiplied"),
        ValueError("bug"),
        KeyError("x"),
        OSError("no file"),
    ],
    ids=["shape-error", "value-error", "key-error", "oserror-without-file"],
)
def test_other_exceptions_keep_their_traceback(err):
    assert to_config_error(err) is None


def test_trainer_errors_name_the_option_and_value():
    err = TypeError("`devices` selected with `CPUAccelerator` should be an int > 0.")
    assert str(trainer_error(err, {"devices": -2})) == (
        "trainer.devices=-2: `devices` selected with `CPUAccelerator` should be an int > 0."
    )


def test_parse_error_keeps_the_typed_value_and_the_full_key():
    report = (
        'Parser key "model":\n  Does not validate against any of the Union subtypes\n  Errors:\n'
        "    - Parser key \"dropout\":\n        Expected a <class 'float'>. Got value: lots\n"
        "    - Expected a <class 'NoneType'>\n  Given value type: <class 'jsonargparse._util.NestedArg'>\n"
        "  Given value: NestedArg(key='dropout', val='lots')"
    )
    assert summarize_parse_error(report) == "model.dropout: got 'lots'; expected float or null"

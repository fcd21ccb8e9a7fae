"""The translation layer: which exceptions are bad input (one line) and which keep their traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from lightning.fabric.utilities.exceptions import MisconfigurationException

from lit_dl.cli.error_messages import summarize_parse_error, to_config_error, trainer_error
from lit_dl.errors import ConfigError
from tests.conftest import HANG_TIMEOUT, REPO


def _raised(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as err:
            raise outer from err
    except BaseException as err:
        return err


def _raised_while_handling(outer: BaseException, inner: BaseException) -> BaseException:
    """``outer`` raised inside ``except`` of ``inner``, without ``from``: ``inner`` is its context only."""
    try:
        try:
            raise inner
        except BaseException:
            raise outer  # noqa: B904
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
        _raised_while_handling(
            KeyError("train"), FileNotFoundError(2, "No such file or directory", "class_weights_cache.json")
        ),
        _raised_while_handling(KeyError("x"), ConfigError("dropout must be in [0, 1), got 2")),
    ],
    ids=[
        "shape-error",
        "value-error",
        "key-error",
        "oserror-without-file",
        "key-error-while-handling-a-missing-file",
        "key-error-while-handling-a-config-error",
    ],
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


def test_a_bug_in_a_downstream_cache_miss_branch_keeps_its_traceback_and_exits_1(tiny_config, tmp_path):
    # The model's setup raises KeyError inside `except FileNotFoundError:`: a bug, not a missing input
    config = yaml.safe_load(tiny_config.read_text())
    config["model"] = {
        "class_path": "tests.downstream.cached_class_weights.CachedClassWeights",
        "init_args": {"num_classes": 3, "in_features": 16},
    }
    path = tmp_path / "cached.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if k != "LIT_DL_TRACEBACK"}
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run(
        [sys.executable, "-m", "lit_dl", "fit", "--config", str(path), f"--trainer.default_root_dir={tmp_path}"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=HANG_TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback (most recent call last):" in result.stderr
    assert "During handling of the above exception, another exception occurred:" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1] == "KeyError: 'train'"
    assert "lit-dl: error:" not in result.stderr

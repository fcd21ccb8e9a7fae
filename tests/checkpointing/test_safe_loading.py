"""Safe loading: a checkpoint carrying a pickle payload is refused with one line and nothing runs, for
``lit-dl fit/test/predict --ckpt_path``, ``init_from`` and ``load_from_checkpoint``."""

from __future__ import annotations

import pathlib
import re

import lightning as L
import pytest
import torch

from lit_dl.checkpointing import SafeLoading
from lit_dl.cli import main
from lit_dl.errors import CorruptCheckpointError, UnsafeCheckpointError
from lit_dl.models import MLPClassifier
from tests.conftest import quiet_trainer


class _CreatesAFile:
    """Unpickling this (with ``weights_only=False``) creates ``path``: a stand-in for arbitrary code."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))


@pytest.fixture
def malicious_checkpoint(tmp_path) -> tuple[pathlib.Path, pathlib.Path]:
    marker = tmp_path / "payload_ran"
    model = MLPClassifier(num_classes=3, in_features=16, hidden_sizes=[16])
    path = tmp_path / "malicious.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": {"x": _CreatesAFile(marker)}}, path)
    torch.load(path, weights_only=False)  # the payload is live: an unsafe load runs it
    assert marker.exists()
    marker.unlink()
    return path, marker


ONE_LINE = r"checkpoint '.*malicious\.ckpt' holds a pickled Python object \(\S+\) that safe loading"


@pytest.mark.parametrize("subcommand", ["fit", "test", "predict"])
def test_cli_refuses_a_pickle_payload_with_one_line(
    tmp_path, tiny_config, malicious_checkpoint, capsys, subcommand
):
    path, marker = malicious_checkpoint
    root = tmp_path / "runs"
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                subcommand,
                "--config",
                str(tiny_config),
                "--trainer.default_root_dir",
                str(root),
                "--ckpt_path",
                str(path),
            ]
        )
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(errors) == 1, errors
    assert re.match(f"lit-dl: error: {ONE_LINE}", errors[0]), errors[0]
    assert not marker.exists()
    assert not (root / "lightning_logs").exists()  # no run folder left behind


def test_init_from_refuses_a_pickle_payload(malicious_checkpoint) -> None:
    path, marker = malicious_checkpoint
    with pytest.raises(UnsafeCheckpointError, match=ONE_LINE):
        MLPClassifier(num_classes=3, in_features=16, hidden_sizes=[16], init_from=str(path))
    assert not marker.exists()


def test_load_from_checkpoint_refuses_a_pickle_payload(malicious_checkpoint) -> None:
    path, marker = malicious_checkpoint
    with pytest.raises(UnsafeCheckpointError, match=ONE_LINE):
        MLPClassifier.load_from_checkpoint(path)
    assert not marker.exists()


class _OwnModule(SafeLoading, L.LightningModule):
    """A downstream LightningModule that is no lit_dl recipe, with the mixin listed first."""

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(width, 2)


def test_safe_loading_mixin_on_a_plain_lightning_module(tmp_path, malicious_checkpoint) -> None:
    path, marker = malicious_checkpoint
    with pytest.raises(UnsafeCheckpointError, match=ONE_LINE):
        _OwnModule.load_from_checkpoint(path)
    assert not marker.exists()
    model = _OwnModule(width=5)
    trainer = quiet_trainer(tmp_path, max_epochs=0)
    trainer.strategy.connect(model)
    good = tmp_path / "good.ckpt"
    trainer.save_checkpoint(good)
    loaded = _OwnModule.load_from_checkpoint(good)
    assert type(loaded) is _OwnModule and loaded.hparams.width == 5 and loaded.training
    assert torch.equal(loaded.layer.weight, model.layer.weight)
    # the rest is Lightning's: its own arguments still work, a map_location among them
    assert (
        _OwnModule.load_from_checkpoint(good, map_location="cpu", strict=True).layer.weight.device.type
        == "cpu"
    )
    # and a damaged file is refused by its checksums before torch reads it
    damaged = tmp_path / "damaged.ckpt"
    data = bytearray(good.read_bytes())
    at = data.index(b"PK\x03\x04", 1) - 64  # inside the first member's data
    data[at] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError):
        _OwnModule.load_from_checkpoint(damaged)

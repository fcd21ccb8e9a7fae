"""`lit-dl` destroys a distributed run's process group when its command succeeds, not after an error.

A process that exits with a Gloo group alive can abort at interpreter shutdown (SIGABRT) and leave
its peers waiting; the two-node `torchrun` test in tests/distributed runs the whole path.
"""

import pytest
import torch.distributed as dist

from lit_dl import cli
from lit_dl.errors import ConfigError


@pytest.fixture
def process_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


def test_a_successful_command_destroys_the_process_group(process_group, monkeypatch):
    monkeypatch.setattr(cli, "_dispatch", lambda args: None)
    assert dist.is_initialized()
    cli.main(["fit"])
    assert not dist.is_initialized()


def test_a_failed_command_leaves_the_process_group_to_the_exit(process_group, monkeypatch, capsys):
    def bad_input(args):
        raise ConfigError("trainer.max_epochs must be >= 1, got 0")

    monkeypatch.setattr(cli, "_dispatch", bad_input)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["fit"])
    assert exit_info.value.code == 2
    assert "lit-dl: error: trainer.max_epochs must be >= 1, got 0" in capsys.readouterr().err
    assert dist.is_initialized()  # other ranks may still be inside a collective

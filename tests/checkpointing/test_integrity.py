"""A checkpoint's content is checked against the checksums inside it, and weights that are not finite
are not evaluated: one line, exit 2, for every command that loads a checkpoint."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.demos.boring_classes import BoringModel

from lit_dl.checkpointing.atomic_io import AtomicCheckpointIO
from lit_dl.checkpointing.integrity import verify_checksums
from lit_dl.checkpointing.loading import load_checkpoint
from lit_dl.cli import main
from lit_dl.errors import CorruptCheckpointError
from lit_dl.models import MLPClassifier


def tensor_records(path: Path) -> list[tuple[str, int, int]]:
    """``(name, offset of its first byte, size)`` of every tensor storage in the torch file ``path``."""
    records = []
    data = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if "/data/" in info.filename and info.file_size:
                name_length, extra_length = struct.unpack(
                    "<HH", data[info.header_offset + 26 : info.header_offset + 30]
                )
                records.append(
                    (info.filename, info.header_offset + 30 + name_length + extra_length, info.file_size)
                )
    return records


def flipped(path: Path, offset: int, bit: int, out: Path) -> Path:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    out.write_bytes(bytes(data))
    return out


@pytest.fixture
def fitted(tmp_path, tiny_config) -> Path:
    """The checkpoint of a tiny ``lit-dl fit`` (written by the CLI)."""
    main(["fit", "--config", str(tiny_config), "--trainer.default_root_dir", str(tmp_path / "runs"),
          "--test_after_fit", "false"])  # fmt: skip
    (path,) = (tmp_path / "runs" / "lightning_logs" / "version_0" / "checkpoints").glob("*.ckpt")
    return path


def test_a_bit_flipped_anywhere_in_the_tensor_data_is_refused(fitted, tmp_path):
    records = tensor_records(fitted)
    assert len(records) >= 6  # weights, biases, the optimizer's moments, the RNG states
    verify_checksums(fitted)  # the file as written passes
    for _name, start, size in records:
        for offset, bit in ((start, 0), (start + size // 2, 3), (start + size - 1, 7)):
            bad = flipped(fitted, offset, bit, tmp_path / "bad.ckpt")
            with pytest.raises(CorruptCheckpointError, match=rf"^checkpoint '{bad}' is corrupt: its record "):
                verify_checksums(bad)
            with pytest.raises(CorruptCheckpointError):
                load_checkpoint(bad)
            with pytest.raises(CorruptCheckpointError):
                AtomicCheckpointIO().load_checkpoint(bad)
            with pytest.raises(CorruptCheckpointError):
                MLPClassifier.load_from_checkpoint(bad)
    # torch alone loads such a file without a word: an exponent bit makes a weight ~1e38 larger
    start = next(start for name, start, size in records if size >= 4)
    bad = flipped(fitted, start + 3, 6, tmp_path / "bad.ckpt")
    assert any(
        not torch.equal(a, b)
        for a, b in zip(
            torch.load(bad, weights_only=True)["state_dict"].values(),
            torch.load(fitted, weights_only=True)["state_dict"].values(),
            strict=True,
        )
    )


@pytest.mark.parametrize("command", ["test", "validate", "predict", "fit"])
def test_a_command_given_a_corrupt_checkpoint_exits_2_with_one_line_and_leaves_no_run(
    fitted, tmp_path, tiny_config, capsys, command
):
    name, start, size = tensor_records(fitted)[0]
    bad = flipped(fitted, start + size // 2, 5, tmp_path / "bad.ckpt")
    root = tmp_path / "runs"
    before = sorted(p.name for p in (root / "lightning_logs").iterdir())
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                command,
                "--config",
                str(tiny_config),
                "--trainer.default_root_dir",
                str(root),
                "--ckpt_path",
                str(bad),
            ]
        )
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        f"lit-dl: error: checkpoint '{bad}' is corrupt: its record {name.split('/', 1)[1]!r} does not match the "
        "CRC-32 written with it (a flipped bit or a damaged copy); use another checkpoint or copy this one again "
        "from its source"
    )
    assert not any(line.startswith("Traceback") for line in err)
    assert sorted(p.name for p in (root / "lightning_logs").iterdir()) == before


def test_files_without_checksums_load_as_before(tmp_path):
    from torch.utils.serialization import config

    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.ones(3)}, legacy, _use_new_zipfile_serialization=False)
    unchecked = tmp_path / "no_crc.pt"
    with config.patch({"save.compute_crc32": False}):
        torch.save({"w": torch.ones(3)}, unchecked)
    assert all(info.CRC == 0 for info in zipfile.ZipFile(unchecked).infolist())
    for path in (legacy, unchecked):
        verify_checksums(path)
        assert torch.equal(AtomicCheckpointIO().load_checkpoint(path)["w"], torch.ones(3))


def test_a_plain_lightning_checkpoint_loads_and_is_checked_too(tmp_path):
    trainer = L.Trainer(
        default_root_dir=tmp_path, max_steps=1, limit_val_batches=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(BoringModel())
    path = tmp_path / "plain.ckpt"
    trainer.save_checkpoint(path)  # Lightning's own TorchCheckpointIO: no lit_dl involved
    assert load_checkpoint(path)["global_step"] == 1
    resumed = L.Trainer(
        default_root_dir=tmp_path, max_steps=2, limit_val_batches=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, plugins=[AtomicCheckpointIO()],
    )  # fmt: skip
    resumed.fit(BoringModel(), ckpt_path=path)
    assert resumed.global_step == 2
    _name, start, _size = tensor_records(path)[0]
    with pytest.raises(CorruptCheckpointError):
        AtomicCheckpointIO().load_checkpoint(flipped(path, start, 1, tmp_path / "bad.ckpt"))


@pytest.mark.parametrize("command", ["test", "validate", "predict", "export"])
def test_weights_that_are_not_finite_are_not_evaluated(fitted, tmp_path, tiny_config, capsys, command):
    checkpoint = torch.load(fitted, weights_only=True)
    name = next(iter(checkpoint["state_dict"]))
    checkpoint["state_dict"][name][0] = float("nan")
    bad = tmp_path / "diverged.ckpt"
    torch.save(checkpoint, bad)
    root = tmp_path / "runs"
    before = sorted(p.name for p in (root / "lightning_logs").iterdir())
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                command,
                "--config",
                str(tiny_config),
                "--trainer.default_root_dir",
                str(root),
                "--ckpt_path",
                str(bad),
            ]
        )
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"lit-dl: error: checkpoint '{bad}' holds weights that are not finite (NaN or inf in {name}): the run "
        "diverged before it was written; use an earlier checkpoint of the run"
    )
    assert sorted(p.name for p in (root / "lightning_logs").iterdir()) == before
    assert not (tmp_path / "export").exists()

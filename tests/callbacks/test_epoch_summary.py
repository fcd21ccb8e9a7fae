"""EpochSummary: the run folder's epochs.csv, a row per epoch with the logged values and each group's
LR, kept whole across a resume, composed at epoch ends only."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from lit_dl.callbacks import EpochSummary
from lit_dl.cli import main
from lit_dl.data import SyntheticClassificationDataModule
from lit_dl.models import MLPClassifier
from tests.conftest import CONFIGS, read_scalars

QUICK = [
    "--trainer.limit_train_batches=3",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--test_after_fit=false",
]
COLUMNS = [
    "epoch", "step", "wall_time", "elapsed", "train/loss", "val/acc", "val/f1", "val/loss",
    "lr-AdamW/decay", "lr-AdamW/no_decay",
]  # fmt: skip


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def fit(root: Path, *extra: str) -> None:
    main(
        [
            "fit",
            "--config",
            str(CONFIGS / "digits_mlp.yaml"),
            f"--trainer.default_root_dir={root}",
            *QUICK,
            *extra,
        ]
    )


def test_the_default_recipe_writes_a_row_per_epoch_with_the_logged_values_and_lrs(tmp_path):
    fit(tmp_path, "--trainer.max_epochs=3")
    run = tmp_path / "lightning_logs" / "version_0"
    columns, rows = read_rows(run / "epochs.csv")
    assert columns == COLUMNS
    assert [(r["epoch"], r["step"]) for r in rows] == [("0", "3"), ("1", "6"), ("2", "9")]
    logged = read_scalars(run)
    for name in ("val/acc", "val/loss", "val/f1"):
        assert [float(r[name]) for r in rows] == [value for _, value in logged[name]]  # float32, exactly
    # The cosine schedule of the recipe, stepped per epoch over 3 epochs from lr 0.003: the LR each epoch used.
    for name in ("lr-AdamW/decay", "lr-AdamW/no_decay"):
        assert [float(r[name]) for r in rows] == pytest.approx([0.003, 0.00225, 0.00075], rel=1e-12)
    assert all(float(r["train/loss"]) > 0 for r in rows)
    elapsed = [float(r["elapsed"]) for r in rows]
    assert elapsed == sorted(elapsed) and elapsed[0] > 0


@pytest.mark.filterwarnings("ignore:WarmupCosineLR total_steps=2 is shorter than the run")
def test_a_resumed_run_holds_the_whole_run_in_its_new_folder(tmp_path):
    fit(tmp_path, "--trainer.max_epochs=2")
    fit(tmp_path, "--trainer.max_epochs=4", "--ckpt_path=last")
    _, first = read_rows(tmp_path / "lightning_logs" / "version_0" / "epochs.csv")
    columns, resumed = read_rows(tmp_path / "lightning_logs" / "version_1" / "epochs.csv")
    assert columns == COLUMNS
    assert resumed[:2] == first  # the first run's rows, as written
    assert [r["epoch"] for r in resumed] == ["0", "1", "2", "3"]
    elapsed = [float(r["elapsed"]) for r in resumed]
    assert elapsed == sorted(elapsed)  # the resumed run counts on from the first run's time


def _trainer(root: Path, summary: EpochSummary, **kwargs) -> L.Trainer:
    return L.Trainer(
        default_root_dir=root, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_train_batches=2, limit_val_batches=1, log_every_n_steps=1,
        callbacks=[summary], **kwargs,
    )  # fmt: skip


def _model() -> MLPClassifier:
    torch.manual_seed(0)
    return MLPClassifier(num_classes=3, in_features=16, hidden_sizes=[8])


def _data() -> SyntheticClassificationDataModule:
    return SyntheticClassificationDataModule(num_classes=3, num_features=16, num_train=64, batch_size=16)


def test_columns_that_appear_later_join_the_header_and_a_fresh_run_appends(tmp_path):
    # Validation every second epoch: the first row has no val/* values; the header gains them.
    _trainer(tmp_path, EpochSummary(), max_epochs=2, check_val_every_n_epoch=2, num_sanity_val_steps=0).fit(
        _model(), datamodule=_data()
    )
    columns, rows = read_rows(tmp_path / "epochs.csv")
    assert columns == [  # the new columns after the first row's
        "epoch", "step", "wall_time", "elapsed", "train/loss", "lr-AdamW/decay", "lr-AdamW/no_decay",
        "val/acc", "val/f1", "val/loss",
    ]  # fmt: skip
    assert [r["val/acc"] == "" for r in rows] == [True, False]
    # A second fit into the same folder, not resumed: its rows follow, the earlier ones are kept.
    _trainer(tmp_path, EpochSummary(filename="epochs.csv"), max_epochs=1).fit(_model(), datamodule=_data())
    columns_after, rows_after = read_rows(tmp_path / "epochs.csv")
    assert columns_after == columns and rows_after[:2] == rows
    assert [r["epoch"] for r in rows_after] == ["0", "1", "0"]


PER_STEP_HOOKS = (
    "on_train_batch_start", "on_train_batch_end", "on_before_backward", "on_after_backward",
    "on_before_optimizer_step", "on_before_zero_grad", "on_validation_batch_start", "on_validation_batch_end",
)  # fmt: skip


def test_nothing_runs_per_step():
    assert [h for h in PER_STEP_HOOKS if getattr(EpochSummary, h) is not getattr(Callback, h)] == []


def test_a_filename_with_folders_is_refused():
    with pytest.raises(ValueError, match=r"filename must be a file name without folders, got 'logs/e.csv'"):
        EpochSummary(filename="logs/e.csv")


def test_the_checkpoint_holds_the_rows_as_one_csv_text_and_reads_the_former_dicts_too():
    summary = EpochSummary()
    summary.columns = ["epoch", "step", "val/acc"]
    summary.rows = [{"epoch": "0", "step": "3", "val/acc": "0.5"}, {"epoch": "1", "step": "6"}]
    state = summary.state_dict()
    assert state == {
        "columns": ["epoch", "step", "val/acc"],
        "csv": "epoch,step,val/acc\r\n0,3,0.5\r\n1,6,\r\n",
    }
    restored = EpochSummary()
    restored.load_state_dict(state)
    assert restored.columns == summary.columns
    assert restored.rows == [
        {"epoch": "0", "step": "3", "val/acc": "0.5"},
        {"epoch": "1", "step": "6", "val/acc": ""},
    ]
    former = EpochSummary()
    former.load_state_dict({"columns": ["epoch"], "rows": [{"epoch": "0"}]})  # lit_dl before the text
    assert (former.columns, former.rows) == (["epoch"], [{"epoch": "0"}])

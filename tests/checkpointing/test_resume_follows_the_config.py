"""``fit --ckpt_path`` with a changed config: the checkpoint says where the run is, the config says what
trains. Each change shows in the optimizer groups of the checkpoints, in the logged LR and weight decay,
in one console line, and in the run folder's config.yaml; an unchanged config stays bit-identical."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
import yaml

from lit_dl.cli import main
from lit_dl.optim import WarmupCosineLR, WarmupStepLR
from tests.checkpointing.test_exact_resume import assert_same_training_state
from tests.conftest import REPO, read_scalars

RECIPE = REPO / "configs" / "digits_mlp.yaml"
# The default recipe, 4 batches an epoch, every optimizer step's LR logged; its 4-epoch run is stopped
# after 2 epochs (as a preempted run, max_epochs unchanged) and resumed with each change.
ARGS = [
    "fit", "--config", str(RECIPE), "--trainer.max_epochs=4", "--trainer.limit_train_batches=4",
    "--trainer.limit_val_batches=1", "--trainer.log_every_n_steps=1", "--trainer.deterministic=true",
    "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", "--test_after_fit=false",
]  # fmt: skip
STOP = {"class_path": "tests.probe_callbacks.StopAfterEpoch", "init_args": {"epoch": 1}}
LR_TAG, WD_TAG = "lr-AdamW/decay", "lr-AdamW/decay-weight_decay"
OPTIMIZER = "--model.init_args.optimizer.init_args."
SCHEDULE = "--model.init_args.lr_scheduler.init_args."


@pytest.fixture(scope="module")
def stopped(tmp_path_factory) -> Path:
    """``last.ckpt`` of the default recipe stopped after 2 of its 4 epochs (8 optimizer steps)."""
    root = tmp_path_factory.mktemp("stopped")
    main([*ARGS, "--trainer.default_root_dir", str(root), f"--trainer.callbacks+={yaml.safe_dump(STOP)}"])
    ckpt = root / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["global_step"] == 8
    return ckpt


def planned_lrs(schedule: type, arguments: dict, lr: float, length: int) -> list[float]:
    """The LR after each of the ``length`` scheduler steps of a run planned with this schedule from its start."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = schedule(optimizer, **arguments)
    scheduler.fit_to_run(length, unit="steps")
    lrs = []
    for _ in range(length + 1):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


COSINE = (WarmupCosineLR, {"warmup_steps": 0})
# (extra arguments, the console's resume lines, what trains: lr, weight decay, schedule, epochs, interval)
CASES = {
    "longer_run": (
        ["--trainer.max_epochs=6"],
        [
            "resume: run length 4 -> 6 epochs, WarmupCosineLR refitted to 6 epochs",
            "resume: WarmupCosineLR at epoch 2 of 6: lr 0.0015 -> 0.00225",
        ],
        (0.003, 0.01, COSINE, 6, "epoch"),
    ),
    "new_lr": (
        [f"{OPTIMIZER}lr=0.0003"],
        [
            "resume: lr 0.003 -> 0.0003 (from the config)",
            "resume: WarmupCosineLR at epoch 2 of 4: lr 0.0015 -> 0.00015",
        ],
        (0.0003, 0.01, COSINE, 4, "epoch"),
    ),
    "new_weight_decay": (
        [f"{OPTIMIZER}weight_decay=0.5"],
        ["resume: weight_decay 0.01 -> 0.5 (from the config)"],
        (0.003, 0.5, COSINE, 4, "epoch"),
    ),
    "another_scheduler": (
        ["--config", str(REPO / "configs" / "lr_scheduler" / "step.yaml")],
        [
            "resume: lr_scheduler WarmupCosineLR -> WarmupStepLR (from the config)",
            "resume: WarmupStepLR at epoch 2 of 4: lr 0.0015 -> 0.0003",
        ],
        (0.003, 0.01, (WarmupStepLR, {"decay_at": [0.5, 0.75], "gamma": 0.1}), 4, "epoch"),
    ),
    "new_min_lr": (
        [f"{SCHEDULE}min_lr=0.0001"],
        [
            "resume: WarmupCosineLR min_lr 0 -> 0.0001 (from the config)",
            "resume: WarmupCosineLR at epoch 2 of 4: lr 0.0015 -> 0.00155",
        ],
        (0.003, 0.01, (WarmupCosineLR, {"warmup_steps": 0, "min_lr": 0.0001}), 4, "epoch"),
    ),
    "step_interval": (
        ["--model.init_args.scheduler_interval=step"],
        [
            "resume: WarmupCosineLR refitted to 16 optimizer steps (the run's length with this config)",
            "resume: scheduler_interval epoch -> step (from the config)",
        ],
        (0.003, 0.01, COSINE, 4, "step"),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_resumed_run_trains_with_the_configs_values_and_names_each_change(stopped, tmp_path, caplog, case):
    extra, lines, (lr, weight_decay, (schedule, arguments), epochs, interval) = CASES[case]
    per_step = 4 if interval == "epoch" else 1  # optimizer steps per scheduler step
    length = 4 * epochs // per_step
    root = tmp_path / "resumed"
    with caplog.at_level(logging.INFO):
        main([*ARGS, "--trainer.default_root_dir", str(root), f"--ckpt_path={stopped}", *extra])
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("resume:")] == lines

    run = root / "lightning_logs" / "version_0"
    before = torch.load(stopped, weights_only=True)
    after = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert after["global_step"] == 4 * epochs
    weights = before["state_dict"]["backbone.head.weight"], after["state_dict"]["backbone.head.weight"]
    assert not torch.equal(*weights)  # the resumed epochs trained
    # what trained, step by step: each optimizer step at the planned LR of its epoch (or step)
    planned = planned_lrs(schedule, arguments, lr, length)
    logged = read_scalars(run)
    assert [step for step, _ in logged[LR_TAG]] == list(range(8, 4 * epochs))
    assert [value for _, value in logged[LR_TAG]] == pytest.approx(
        [planned[step // per_step] for step in range(8, 4 * epochs)], rel=1e-6
    )
    assert [value for _, value in logged[WD_TAG]] == pytest.approx([weight_decay] * (4 * epochs - 8))
    # the checkpoints carry the config's values, and so does config.yaml
    decay, no_decay = after["optimizer_states"][0]["param_groups"]
    assert (decay["name"], decay["initial_lr"], decay["weight_decay"]) == ("decay", lr, weight_decay)
    assert (no_decay["initial_lr"], no_decay["weight_decay"]) == (lr, 0.0)
    assert decay["lr"] == pytest.approx(planned[length], abs=1e-12)
    (state,) = after["lr_schedulers"]
    assert (state["last_epoch"], state["total_steps"]) == (length, length)
    assert {key: state[key] for key in arguments if key != "decay_at"} == {
        key: value for key, value in arguments.items() if key != "decay_at"
    }
    assert after["lit_dl_run"]["schedulers"][0]["class"] == f"{schedule.__module__}.{schedule.__name__}"
    config = yaml.safe_load((run / "config.yaml").read_text())
    model = config["model"]["init_args"]
    assert model["optimizer"]["init_args"]["lr"] == lr
    assert model["optimizer"]["init_args"]["weight_decay"] == weight_decay
    assert model["lr_scheduler"]["class_path"] == f"lit_dl.optim.{schedule.__name__}"
    assert {k: v for k, v in model["lr_scheduler"]["init_args"].items() if k in arguments} == arguments
    assert (config["trainer"]["max_epochs"], model["scheduler_interval"]) == (epochs, interval)


def test_a_resume_with_the_same_config_prints_nothing_and_matches_the_uninterrupted_run(
    stopped, tmp_path, caplog
) -> None:
    with caplog.at_level(logging.INFO):
        main([*ARGS, "--trainer.default_root_dir", str(tmp_path / "resumed"), f"--ckpt_path={stopped}"])
    assert not [r for r in caplog.records if r.getMessage().startswith("resume:")]
    main([*ARGS, "--trainer.default_root_dir", str(tmp_path / "whole")])

    def last(root: str) -> dict:
        return torch.load(
            tmp_path / root / "lightning_logs/version_0/checkpoints/last.ckpt", weights_only=True
        )

    assert_same_training_state(last("resumed"), last("whole"))


def mid_epoch_checkpoint(tmp_path: Path) -> tuple[Path, Path]:
    """The default recipe with a checkpoint every 2 steps, and its checkpoint written after 2 of the 4
    batches of epoch 1 (step 6)."""
    config = yaml.safe_load(RECIPE.read_text())
    bundle = yaml.safe_load((RECIPE.parent / config["trainer"]["callbacks"]).read_text())
    (checkpoint,) = [c for c in bundle if c["class_path"] == "lit_dl.callbacks.AtomicCheckpoint"]
    checkpoint["init_args"] = {"every_n_train_steps": 2, "save_top_k": -1, "filename": "{step}"}
    config["trainer"]["callbacks"] = bundle
    path = tmp_path / "every_2_steps.yaml"
    path.write_text(yaml.safe_dump(config))
    root = tmp_path / "mid"
    main([*ARGS, "--config", str(path), "--trainer.max_epochs=2", "--trainer.default_root_dir", str(root)])
    return path, root / "lightning_logs" / "version_0" / "checkpoints" / "step=6.ckpt"


def test_a_mid_epoch_resume_with_another_batch_size_is_a_one_line_error(tmp_path, capsys) -> None:
    config, ckpt = mid_epoch_checkpoint(tmp_path)
    root = tmp_path / "resumed"
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(
            [*ARGS, "--config", str(config), "--trainer.max_epochs=2", "--trainer.default_root_dir", str(root),
             f"--ckpt_path={ckpt}", "--data.init_args.batch_size=32"]
        )  # fmt: skip
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (
        f"lit-dl: error: checkpoint {str(ckpt)!r} was written mid-epoch (after 2 of the 4 batches of epoch 1), "
        "and the config changes its batch size 64 -> 32: the rest of that epoch cannot follow the order it "
        "started in. Resume from a checkpoint written at an epoch end (the epoch's best or last checkpoint), "
        "or finish the epoch with the checkpoint's values and change them then"
    )
    assert not (root / "lightning_logs" / "version_0").exists()  # nothing written


def test_a_resumed_schedule_shorter_than_the_run_warns_once_naming_both_lengths(
    stopped, tmp_path, caplog
) -> None:
    with caplog.at_level(logging.INFO), pytest.warns(UserWarning) as caught:
        main(
            [
                *ARGS,
                "--trainer.default_root_dir",
                str(tmp_path),
                f"--ckpt_path={stopped}",
                f"{SCHEDULE}total_steps=3",
            ]
        )
    assert [str(w.message) for w in caught if "shorter than the run" in str(w.message)] == [
        "WarmupCosineLR total_steps=3 is shorter than the run (4 epochs): the LR stays at its final value for the "
        "last 1 epochs; leave total_steps unset (null) to follow the run, or give it the run's length"
    ]
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("resume:")] == [
        "resume: WarmupCosineLR total_steps 4 -> 3 (from the config)",
        "resume: WarmupCosineLR at epoch 2 of 3: lr 0.0015 -> 0.00075",
    ]

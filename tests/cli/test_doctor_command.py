"""`lit-dl doctor` as a command: fit's arguments, JSON output, exit status, nothing written."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from lit_dl.cli import LitDLCLI, main
from lit_dl.cli import doctor as command
from tests.conftest import HANG_TIMEOUT, REPO
from tests.doctor.helpers import BROKEN, by_check, run_doctor


def test_json_report_lists_every_check_with_status_and_fix(tiny_config, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "runs"
    code, report = run_doctor(capsys, "--config", str(tiny_config), f"--trainer.default_root_dir={root}")
    assert code == 0 and report["exit_status"] == 0
    checks = by_check(report)
    assert set(checks) >= {
        "num_classes",
        "softmax_head",
        "bias_before_norm",
        "decay_on_norms",
        "saturating_stack",
        "init_vs_activation",
        "dropout_before_batchnorm",
        "lr_vs_batch",
        "schedule_vs_run",
        "adam_coupled_decay",
        "anomaly",
        "init_loss",
        "dead_relu",
        "gradient_ratio",
        "input_bound",
        "host_syncs",
        "overfit_batch",
    }
    assert all(set(f) == {"check", "status", "found", "fix", "data"} for f in report["findings"])
    assert checks["host_syncs"]["status"] == "skip"
    assert report["counts"]["error"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]  # no run folder, nothing in the CWD


def test_fit_arguments_are_accepted_and_overrides_apply(tiny_config, capsys):
    # --test_after_fit is a fit option: accepted; an override reaches the model like in fit.
    code, report = run_doctor(
        capsys, "--config", str(tiny_config), "--test_after_fit=false", "--model.init_args.num_classes=5"
    )
    finding = by_check(report)["num_classes"]
    assert (finding["status"], finding["fix"]) == ("warn", "--model.init_args.num_classes 3")
    assert code == 0


def test_table_output_and_exit_status_one_on_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["doctor", "--config", str(BROKEN / "softmax_head.yaml"), "--overfit-steps", "5"])
    assert exit_info.value.code == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["check", "status", "found", "/", "fix"]
    assert any(line.startswith("softmax_head") and " error " in line for line in lines)
    assert "fix: remove the final (Log)Softmax" in out
    assert re.fullmatch(r"\d+ ok, \d+ warn, [1-9]\d* error, \d+ skip", lines[-1])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model.init_args.dropout=2"], "lit-dl: error: dropout must be in [0, 1), got 2.0"),
        (["--format=xml"], "format"),
        (["--overfit-steps=0"], "overfit"),
    ],
    ids=["bad-model-value", "bad-format", "bad-steps"],
)
def test_bad_arguments_exit_2_like_fit(tiny_config, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["doctor", "--config", str(tiny_config), *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_console_script_exit_status_and_json(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}  # tiny model: one thread
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lit_dl",
            "doctor",
            "--config",
            str(BROKEN / "cosine_short.yaml"),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=HANG_TIMEOUT,
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert by_check(report)["schedule_vs_run"]["status"] == "error"
    assert list(tmp_path.iterdir()) == []


def test_lr_find_reports_the_suggestion_and_leaves_no_file(tiny_config, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = yaml.safe_load(tiny_config.read_text())
    config["data"]["init_args"]["num_train"] = 480  # 30 batches for the LR range test
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    # the range test sweeps the LR up to 1: an LR of 10 lies past its loss minimum whatever the curve
    _, report = run_doctor(
        capsys,
        "--config",
        str(path),
        "--lr-find",
        "--overfit-steps=5",
        "--model.init_args.optimizer.init_args.lr=10",
    )
    finding = by_check(report)["lr_find"]
    assert finding["status"] == "warn" and "past the minimum" in finding["found"], finding
    assert finding["data"]["configured"] == 10 and 0 < finding["data"]["lr_min_loss"] <= 1
    lr = float(finding["fix"].split()[1])
    assert lr == pytest.approx(finding["data"]["lr_min_loss"] / 10, rel=1e-2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]


def test_multi_process_recipe_is_checked_in_one_process_for_its_world(tiny_config, capsys):
    # 96 samples / batch 16 = 6 batches; 2 processes: 3 steps each per epoch, global batch 32
    _, report = run_doctor(
        capsys,
        "--config",
        str(tiny_config),
        "--trainer.devices=2",
        "--trainer.strategy=ddp",
        "--model.init_args.base_batch_size=320",
        "--model.init_args.scheduler_interval=step",
        "--model.init_args.lr_scheduler=torch.optim.lr_scheduler.OneCycleLR",
        "--model.init_args.lr_scheduler.init_args.max_lr=0.01",
        "--model.init_args.lr_scheduler.init_args.total_steps=6",
        "--overfit-steps=5",
    )
    checks = by_check(report)
    assert checks["processes"]["status"] == "ok" and "run of 2" in checks["processes"]["found"]
    assert checks["lr_vs_batch"]["data"]["global_batch"] == 32
    assert checks["schedule_vs_run"]["status"] == "ok", checks["schedule_vs_run"]
    assert checks["schedule_vs_run"]["data"]["run_length"] == 6


@pytest.mark.parametrize(
    ("devices", "accelerator", "expected"),
    [
        (2, "cpu", 2),
        ("2", "cpu", 2),
        ([0, 1, 2], "gpu", 3),
        ("0,1", "gpu", 2),
        ("auto", "cpu", 1),
        (-1, "cpu", 1),
        (1, "auto", 1),
    ],
)
def test_processes_a_trainer_would_start(devices, accelerator, expected):
    from lit_dl.cli.doctor import _processes

    assert _processes(devices, accelerator) == expected


def test_a_setup_error_is_reported_as_a_finding(tiny_config, capsys):
    # the data have 3 classes: fit would stop in setup; the doctor reports why, exit 1
    code, report = run_doctor(capsys, "--config", str(tiny_config), "--model.init_args.num_classes=2")
    (finding,) = report["findings"]
    assert (finding["check"], finding["status"]) == ("setup", "error")
    assert "model num_classes=2 is smaller than the 3 classes in the data" in finding["found"]
    assert code == 1


def _fit(tiny_config, root, *args: str) -> Path:
    """A one-epoch `lit-dl fit` of the tiny recipe under ``root``: its checkpoint, also kept as last.ckpt."""
    cli = LitDLCLI(
        args=[
            "fit",
            "--config",
            str(tiny_config),
            f"--trainer.default_root_dir={root}",
            "--trainer.max_epochs=1",
            "--test_after_fit=false",
            *args,
        ]
    )
    best = Path(cli.trainer.checkpoint_callback.best_model_path)
    shutil.copy(best, best.parent / "last.ckpt")  # what ModelCheckpoint(save_last=True) keeps
    return best


def _checked_weights(monkeypatch) -> list[dict[str, torch.Tensor]]:
    """The task's weights each time the doctor's static checks start (filled as the doctor runs)."""
    seen: list[dict[str, torch.Tensor]] = []
    real = command.run_static_checks

    def spy(ctx):
        seen.append({k: v.detach().clone() for k, v in ctx.task.state_dict().items()})
        return real(ctx)

    monkeypatch.setattr(command, "run_static_checks", spy)
    return seen


def test_ckpt_path_checks_the_checkpoints_weights(tiny_config, capsys, tmp_path, monkeypatch):
    root = tmp_path / "runs"
    ckpt = _fit(tiny_config, root)
    last = ckpt.parent / "last.ckpt"
    seen = _checked_weights(monkeypatch)
    code, report = run_doctor(
        capsys, "--config", str(tiny_config), f"--ckpt_path={ckpt}", "--overfit-steps=5"
    )
    assert code == 0 and report["counts"]["error"] == 0, report
    checkpoint = by_check(report)["checkpoint"]
    assert (checkpoint["status"], checkpoint["found"]) == (
        "ok",
        f"checked with the weights of {ckpt}, as fit resumes from it (the config's schedule from the "
        "restored epoch 1)",
    )
    init_loss = by_check(report)["init_loss"]  # trained weights: a loss far from ln(C) is no init pitfall
    assert init_loss["status"] == "skip"
    assert init_loss["found"].startswith("the weights come from a checkpoint, not an initialisation (loss ")
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    (checked,) = seen
    assert checked.keys() == state.keys()
    assert all(torch.equal(checked[k], state[k]) for k in state)
    # --ckpt_path last: the newest last.ckpt of the earlier runs under the same root, as in fit
    code, report = run_doctor(
        capsys,
        "--config",
        str(tiny_config),
        f"--trainer.default_root_dir={root}",
        "--ckpt_path=last",
        "--overfit-steps=5",
    )
    assert code == 0
    assert by_check(report)["checkpoint"]["found"].startswith(f"checked with the weights of {last},")
    assert sorted(p.name for p in (root / "lightning_logs").iterdir()) == ["version_0"]  # no new run folder


def test_ckpt_path_checks_the_schedule_from_the_step_fit_continues_it_at(tiny_config, capsys, tmp_path):
    cosine = "--model.init_args.lr_scheduler=lit_dl.optim.WarmupCosineLR"
    ckpt = _fit(tiny_config, tmp_path / "runs", cosine)  # one epoch
    args = ["--config", str(tiny_config), cosine, f"--ckpt_path={ckpt}", "--overfit-steps=5"]
    # extended to 4 epochs: the config's cosine over 4 epochs, continued at epoch 1 (fit's resume rule)
    code, report = run_doctor(capsys, *args, "--trainer.max_epochs=4")
    assert code == 0
    schedule = by_check(report)["schedule_vs_run"]
    assert (schedule["status"], schedule["found"]) == (
        "ok",
        "WarmupCosineLR spans the run (4 epochs; the LR reaches its final 0 at 4); resumed at epoch 1 with lr 0.00854",
    )
    assert (schedule["data"]["resume_at"], schedule["data"]["run_length"]) == (1, 4)
    # the run it was written in is over: a resume trains nothing
    code, report = run_doctor(capsys, *args, "--trainer.max_epochs=1")
    schedule = by_check(report)["schedule_vs_run"]
    assert (schedule["status"], schedule["found"]) == (
        "warn",
        "the checkpoint is at epoch 1 of the run's 1: a resumed fit has nothing left to train",
    )


def test_ckpt_of_another_model_needs_model_from_ckpt_like_fit(tiny_config, capsys, tmp_path, monkeypatch):
    ckpt = _fit(tiny_config, tmp_path / "runs", "--model.init_args.hidden_sizes=[8]")
    with pytest.raises(SystemExit) as exit_info:
        main(["doctor", "--config", str(tiny_config), f"--ckpt_path={ckpt}"])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"lit-dl: error: checkpoint {str(ckpt)!r} was trained with a different model: ")
    assert "model.init_args.hidden_sizes=[8] in the checkpoint, [16] in the config" in line
    seen = _checked_weights(monkeypatch)
    code, _ = run_doctor(
        capsys,
        "--config",
        str(tiny_config),
        f"--ckpt_path={ckpt}",
        "--model_from_ckpt=true",
        "--overfit-steps=5",
    )
    assert code == 0
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    assert all(torch.equal(seen[0][k], state[k]) for k in state) and seen[0].keys() == state.keys()


@pytest.mark.parametrize(
    ("ckpt_path", "message"),
    [
        ("missing.ckpt", "lit-dl: error: checkpoint 'missing.ckpt' does not exist"),
        ("last", "lit-dl: error: --ckpt_path last: no last.ckpt under "),
    ],
    ids=["missing-file", "no-last"],
)
def test_bad_ckpt_path_exits_2_with_one_line_like_fit(tiny_config, capsys, tmp_path, ckpt_path, message):
    args = [
        "--config",
        str(tiny_config),
        f"--trainer.default_root_dir={tmp_path}",
        f"--ckpt_path={ckpt_path}",
    ]
    for subcommand in ("doctor", "fit"):
        with pytest.raises(SystemExit) as exit_info:
            main([subcommand, *args])
        assert exit_info.value.code == 2
        (line,) = capsys.readouterr().err.splitlines()
        assert line.startswith(message), (subcommand, line)
    assert list(tmp_path.iterdir()) == [tiny_config]

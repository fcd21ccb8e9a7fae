"""`lit-dl sweep`: trials are ordinary runs that their config.yaml reproduces, pruning stops a bad
region, results are a table and plots, and bad sweep files stop with one line and leave nothing."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch
import yaml

from lit_dl.cli import LitDLCLI, main
from lit_dl.sweep import TRIAL_FILE
from tests.conftest import CONFIGS

DIGITS = str(CONFIGS / "digits_mlp.yaml")
LR_WD = str(CONFIGS / "sweeps/lr_wd.yaml")
# The default recipe with a narrow MLP and a few batches per epoch: a trial takes about a second.
FAST = [
    "--trainer.max_epochs",
    "2",
    "--trainer.limit_train_batches",
    "3",
    "--model.init_args.hidden_sizes",
    "[32]",
]


def _study(sweep_dir: Path) -> optuna.Study:
    return optuna.load_study(study_name="lr_wd", storage=f"sqlite:///{sweep_dir / 'study.db'}")


@pytest.fixture(scope="module")
def six_trials(tmp_path_factory):
    """A 6-trial TPE sweep of the shipped LR x weight decay space on the default recipe."""
    sweep_dir = tmp_path_factory.mktemp("sweep") / "lr_wd"
    argv = ["sweep", "--config", DIGITS, "--sweep", LR_WD, "--n_trials", "6", "--seed", "0"]
    main([*argv, "--sweep_dir", str(sweep_dir), *FAST])
    return sweep_dir


def test_a_six_trial_sweep_finishes_with_one_run_folder_per_trial(six_trials, capsys):
    study = _study(six_trials)
    trials = study.get_trials()
    assert [t.number for t in trials] == list(range(6))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert study.user_attrs["metric"] == "val/acc" and study.direction.name == "MAXIMIZE"  # the monitor
    for t in trials:
        run = six_trials / t.user_attrs["run_folder"]
        assert run == six_trials / f"trial_{t.number:04d}/lightning_logs/version_0"
        record = yaml.safe_load((run / TRIAL_FILE).read_text())
        assert record["state"] == "complete" and record["best"] == t.value == max(record["values"])
        assert len(record["values"]) == 2  # one value per validation (2 epochs)
        assert set(t.params) == {
            "model.init_args.optimizer.init_args.lr",
            "model.init_args.optimizer.init_args.weight_decay",
        }
        config = yaml.safe_load((run / "config.yaml").read_text())
        optimizer = config["model"]["init_args"]["optimizer"]["init_args"]
        assert optimizer["lr"] == t.params["model.init_args.optimizer.init_args.lr"]
        assert optimizer["weight_decay"] == t.params["model.init_args.optimizer.init_args.weight_decay"]
        assert (run / "checkpoints/last.ckpt").is_file() and list(run.glob("events.out.tfevents.*"))


def test_each_trials_config_reruns_to_the_same_metric_and_weights(six_trials):
    study = _study(six_trials)
    for t in study.get_trials():
        run = six_trials / t.user_attrs["run_folder"]
        cli = LitDLCLI(args=["fit", "--config", str(run / "config.yaml")])
        assert float(cli.trainer.checkpoint_callback.best_model_score) == t.value
        if t.number == study.best_trial.number:
            rerun = Path(cli.trainer.log_dir)
            assert rerun == run.parent / "version_1"
            original = torch.load(run / "checkpoints/last.ckpt", weights_only=True)["state_dict"]
            again = torch.load(rerun / "checkpoints/last.ckpt", weights_only=True)["state_dict"]
            assert original.keys() == again.keys()
            assert all(torch.equal(original[k], again[k]) for k in original)


def test_show_prints_the_table_the_best_config_and_draws_the_plots(six_trials, capsys):
    for name in ("optimization_history.png", "param_importances.png", "contour.png"):
        (six_trials / name).unlink()
    main(["sweep", "--show", str(six_trials)])
    out = capsys.readouterr().out.splitlines()
    study = _study(six_trials)
    assert out[0].split() == ["trial", "state", "best", "val/acc", "lr", "weight_decay", "run", "folder"]
    for t, line in zip(study.get_trials(), out[1:7], strict=True):
        lr = t.params["model.init_args.optimizer.init_args.lr"]
        wd = t.params["model.init_args.optimizer.init_args.weight_decay"]
        assert line.split() == [
            str(t.number),
            "COMPLETE",
            f"{t.value:.4f}",
            f"{lr:.4g}",
            f"{wd:.4g}",
            t.user_attrs["run_folder"],
        ]
    assert out[7] == "6 complete"
    best = six_trials / study.best_trial.user_attrs["run_folder"] / "config.yaml"
    assert out[8].startswith(f"best trial {study.best_trial.number}: {best}")
    for name in ("optimization_history.png", "param_importances.png", "contour.png"):
        assert (six_trials / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pruning_stops_trials_in_a_clearly_bad_region(tmp_path):
    # LR 1e-7 leaves the MLP at chance: the median pruner stops those trials at their first validation
    sweep = tmp_path / "bad_region.yaml"
    sweep.write_text(
        yaml.safe_dump(
            {
                "sampler": "random",
                "pruner": {"median": {"n_startup_trials": 2}},
                "params": {"model.init_args.optimizer.init_args.lr": [1.0e-2, 1.0e-7]},
            }
        )
    )
    # seed 0 draws 1e-7, 1e-2, 1e-7, 1e-7: the last two start after two complete trials (the startup)
    argv = ["sweep", "--config", DIGITS, "--sweep", str(sweep), "--n_trials", "4", "--seed", "0"]
    main([*argv, "--sweep_dir", str(tmp_path / "s"), *FAST])
    study = optuna.load_study(study_name="bad_region", storage=f"sqlite:///{tmp_path / 's/study.db'}")
    pruned = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.PRUNED]
    assert [t.number for t in pruned] == [2, 3], [(t.params, t.state) for t in study.get_trials()]
    assert len(study.get_trials()) == 4
    for t in pruned:
        assert t.params["model.init_args.optimizer.init_args.lr"] == 1.0e-7
        record = yaml.safe_load((tmp_path / "s" / t.user_attrs["run_folder"] / TRIAL_FILE).read_text())
        assert (
            record["state"] == "pruned" and record["pruned_after_validations"] == len(record["values"]) == 1
        )


_LR = "model.init_args.optimizer.init_args.lr"
BAD_SWEEPS = [
    (
        "unknown_key",
        {"params": {"model.init_args.no_such_option": [1, 2]}},
        "parameter 'model.init_args.no_such_option' = 1:",
    ),
    (
        "empty_range",
        {"params": {_LR: {"float": [0.1, 0.001]}}},
        f"parameter '{_LR}': empty range [0.1, 0.001]; give [low, high] with low < high",
    ),
    (
        "log_range_through_0",
        {"params": {_LR: {"float": [0.0, 0.1], "log": True}}},
        f"parameter '{_LR}': log range [0.0, 0.1] reaches 0 or below; a log scale needs low > 0",
    ),
    (
        "metric_never_logged",
        {"metric": "val/nope", "direction": "maximize", "params": {_LR: [0.01]}},
        "the sweep's metric 'val/nope' is never logged; logged metrics: val/acc, val/f1, val/loss",
    ),
    (
        "metric_without_direction",
        {"metric": "val/loss", "params": {_LR: [0.01]}},
        "metric 'val/loss' needs 'direction: maximize' or 'direction: minimize'",
    ),
    (
        "unknown_top_level_key",
        {"sampeler": "tpe", "params": {_LR: [0.01]}},
        "unknown key 'sampeler'; allowed: params, metric, direction, sampler, pruner, n_trials, seed",
    ),
    (
        "unknown_sampler",
        {"sampler": "cmaes", "params": {_LR: [0.01]}},
        "sampler must be one of tpe, random, grid (or {name: {arguments}}), got 'cmaes'",
    ),
    (
        "unknown_pruner",
        {"pruner": "hyperband", "params": {_LR: [0.01]}},
        "pruner must be one of median, none (or {name: {arguments}}), got 'hyperband'",
    ),
    (
        "bad_sampler_argument",
        {"sampler": {"tpe": {"n_startup": 3}}, "params": {_LR: [0.01]}},
        "sampler 'tpe': TPESampler.__init__() got an unexpected keyword argument 'n_startup'",
    ),
    ("no_params", {"metric": "val/acc"}, "'params' must map config keys to ranges or choices"),
    ("no_choices", {"params": {_LR: []}}, f"parameter '{_LR}': no choices; give at least one"),
    (
        "unknown_range_option",
        {"params": {_LR: {"float": [0.001, 0.1], "lg": True}}},
        f"parameter '{_LR}': unknown option 'lg'; a float range takes log, step, grid",
    ),
    (
        "int_range_of_floats",
        {"params": {"data.init_args.batch_size": {"int": [16, 64.5]}}},
        "parameter 'data.init_args.batch_size': int needs [low, high] (int numbers), got [16, 64.5]",
    ),
    (
        "grid_without_points",
        {"sampler": "grid", "params": {_LR: {"float": [0.001, 0.1]}}},
        f"parameter '{_LR}': the grid sampler needs the points of a float range: add 'grid: N' or 'step'",
    ),
    (
        "missing_config_choice",
        {"params": {"optimizer": ["no_such_optimizer.yaml"]}},
        "parameter 'optimizer': config file 'no_such_optimizer.yaml' does not exist",
    ),
    (
        "unknown_shipped_config",
        {"params": {"optimizer": ["lit_dl://optimizer/nope.yaml"]}},
        "parameter 'optimizer' = 'lit_dl://optimizer/nope.yaml': no shipped config 'lit_dl://optimizer/nope.yaml'",
    ),
    (
        "value_of_the_wrong_type",
        {"params": {"model.init_args.dropout": ["high"]}},
        "parameter 'model.init_args.dropout' = 'high':",
    ),
    ("not_a_mapping", ["params"], "must hold a mapping with 'params:', got list"),
]


@pytest.mark.parametrize(("content", "message"), [c[1:] for c in BAD_SWEEPS], ids=[c[0] for c in BAD_SWEEPS])
def test_a_bad_sweep_file_exits_2_with_one_line_and_leaves_nothing(tmp_path, capsys, content, message):
    sweep = tmp_path / "bad.yaml"
    sweep.write_text(yaml.safe_dump(content))
    sweep_dir = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", "--config", DIGITS, "--sweep", str(sweep), "--sweep_dir", str(sweep_dir), *FAST])
    assert exit_info.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lit-dl: error:")]
    assert len(err) == 1
    assert err[0].startswith(
        f"lit-dl: error: sweep file {str(sweep)!r}: " if "never logged" not in message else "lit-dl: error: "
    )
    assert message in err[0]
    assert not sweep_dir.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--n_trials", "0"], "lit-dl sweep: --n_trials must be 1 or more, got 0"),
        ([], "lit-dl sweep needs --sweep <sweep file> (or --show <sweep folder>)"),
        (["--sweep", "nope.yaml"], "sweep file 'nope.yaml' does not exist"),
        (["--show", "not_a_sweep"], "'not_a_sweep' is not a sweep folder (no sweep.yaml)"),
        (
            ["--sweep", LR_WD, "--storage", "nosuchdb://x"],
            "--storage 'nosuchdb://x' is not a database URL Optuna can open",
        ),
    ],
    ids=["zero_trials", "no_sweep", "missing_sweep_file", "show_not_a_sweep", "bad_storage_url"],
)
def test_bad_sweep_arguments_exit_2_with_one_line(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", *argv, "--config", DIGITS, *FAST])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("sweep", sorted((CONFIGS / "sweeps").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_sweep_checks_against_the_default_recipe(sweep):
    from lit_dl.cli.sweep import sweep_recipe
    from lit_dl.sweep import Sweep, load_sweep

    spec = load_sweep(sweep)
    checked = Sweep(spec, ["--config", DIGITS], Path("unused"), sweep_recipe())  # parses every choice and end
    assert (checked.metric, checked.direction) == ("val/acc", "maximize")
    assert spec.sampler == "tpe" and spec.pruner == "median"
    grid = load_sweep(sweep, {"sampler": "grid"})
    assert (
        Sweep(grid, ["--config", DIGITS], Path("unused"), sweep_recipe()).n_trials
        == {
            "lr_wd.yaml": 5 * 4,
            "optimizer_lr.yaml": 5 * 5,
        }[sweep.name]
    )

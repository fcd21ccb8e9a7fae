"""The LR-schedule plot matches a real fit step for step; the optimizer comparison is reproducible."""

from pathlib import Path

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lit_dl.cli import main
from tests.conftest import load_script

pytestmark = pytest.mark.filterwarnings(
    r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
)

ROOT = Path(__file__).resolve().parents[2]
DIGITS = str(ROOT / "configs/digits_mlp.yaml")
WARMUP_CONFIGS = sorted((ROOT / "configs/lr_scheduler").glob("warmup_*.yaml"))


def test_both_warmup_configs_exist():
    assert [p.name for p in WARMUP_CONFIGS] == ["warmup_cosine.yaml", "warmup_step.yaml"]


def test_plotted_warmup_cosine_equals_the_logged_lrs_of_a_real_fit(tmp_path):
    plot_lr_schedule = load_script("plot_lr_schedule")
    config = ROOT / "configs/lr_scheduler/warmup_cosine.yaml"
    # 4 epochs of 19 steps, the first 8 of them (a tenth) warmup; the LR logged at every step. A narrower
    # MLP only makes the fit faster: the schedule does not depend on it.
    args = ["--config", DIGITS, "--config", str(config), "--trainer.max_epochs", "4"]
    args += ["--trainer.log_every_n_steps", "1", "--trainer.enable_progress_bar", "false"]
    args += ["--model.init_args.hidden_sizes", "[16]"]
    curves, per_epoch = plot_lr_schedule.schedule_curves(args)
    assert per_epoch == 19

    main(["fit", *args, "--test_after_fit", "false", "--trainer.default_root_dir", str(tmp_path)])
    events = EventAccumulator(str(tmp_path / "lightning_logs/version_0"), size_guidance={"scalars": 0})
    events.Reload()
    names = ["lr-AdamW/decay", "lr-AdamW/no_decay", "lr-AdamW/decay-momentum", "lr-AdamW/no_decay-momentum"]
    assert sorted(curves) == sorted(names)
    for name in names:
        logged = {e.step: e.value for e in events.Scalars(name)}
        assert sorted(logged) == list(range(76))
        assert [logged[s] for s in range(76)] == pytest.approx(curves[name], rel=1e-6)
    lrs = curves["lr-AdamW/decay"]
    assert lrs[0] == pytest.approx(0.003 * 0.1)  # warmup_start_factor x the configured LR
    assert max(lrs) == pytest.approx(0.003)

    plot_lr_schedule.plot(curves, per_epoch, tmp_path / "lr.png", config.stem)
    assert (tmp_path / "lr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plotted_warmup_step_follows_the_epochs():
    config = ROOT / "configs/lr_scheduler/warmup_step.yaml"
    args = ["--config", DIGITS, "--config", str(config), "--config", str(ROOT / "configs/optimizer/sgd.yaml")]
    curves, per_epoch = load_script("plot_lr_schedule").schedule_curves(args)
    assert per_epoch == 19 and sorted(curves) == [
        "lr-SGD/decay",
        "lr-SGD/decay-momentum",
        "lr-SGD/no_decay",
        "lr-SGD/no_decay-momentum",
    ]
    # Per epoch: warmup 0.1 -> 1 over 3 epochs, then x0.1 at half (13.5 -> from the 14th) and at three
    # quarters (20.25 -> from the 21st) of the 27 epochs after it.
    factors = [0.1, 0.4, 0.7] + [1.0] * 14 + [0.1] * 7 + [0.01] * 6
    expected = [0.1 * f for f in factors for _ in range(19)]
    assert curves["lr-SGD/decay"] == pytest.approx(expected, rel=1e-12)
    assert curves["lr-SGD/no_decay"] == pytest.approx(expected, rel=1e-12)
    assert curves["lr-SGD/decay-momentum"] == [0.0] * 570


def test_warmup_longer_than_the_run_exits_2_without_a_run_folder(tmp_path, capsys):
    args = ["fit", "--config", DIGITS, "--config", str(ROOT / "configs/lr_scheduler/warmup_cosine.yaml")]
    args += ["--trainer.max_epochs", "2", "--trainer.default_root_dir", str(tmp_path)]
    # a fixed count (the shipped config's warmup is a fraction of the run, which always fits)
    fixed = tmp_path / "fixed_warmup.yaml"
    fixed.write_text(
        "model:\n  init_args:\n    lr_scheduler:\n      init_args: {warmup_fraction: null, warmup_steps: 57}\n"
    )
    args += ["--config", str(fixed)]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert "warmup_steps=57 is longer than the run: the run has 38 optimizer steps" in capsys.readouterr().err
    assert not (tmp_path / "lightning_logs").exists()


def test_optimizer_paths_are_seeded_and_reach_the_quadratic_minimum(tmp_path):
    compare = load_script("compare_optimizers")
    names = ["SGD", "Momentum", "Nesterov", "AdaGrad", "AdaDelta", "RMSProp", "Adam"]
    for surface in compare.SURFACES.values():
        assert list(surface[-1]) == names
    fn, start, _, steps, _, _, optimizers = compare.SURFACES["quadratic"]
    cls, kwargs = optimizers["SGD"]
    exact = compare.trajectory(fn, start, cls, kwargs, steps, noise=0.0, seed=0)
    assert exact.shape == (steps + 1, 2)
    assert torch.equal(exact[0], torch.tensor(start, dtype=exact.dtype))
    assert float(torch.linalg.vector_norm(exact[-1])) < 1e-2
    noisy = [compare.trajectory(fn, start, cls, kwargs, steps, noise=0.5, seed=s) for s in (1, 1, 2)]
    assert torch.equal(noisy[0], noisy[1])
    assert not torch.equal(noisy[0], noisy[2])

    results = compare.plot_surface("rosenbrock", tmp_path, noise=0.0, seed=0)
    assert [r[0] for r in results] == names
    assert (tmp_path / "optimizer_paths_rosenbrock.png").is_file()
    adam = dict((r[0], r[1]) for r in results)["Adam"]
    assert adam < 1e-3  # Adam follows the valley to (1, 1) with the settings in SURFACES


# A few batches of a narrow MLP: the script tests check the sweep plumbing, not the optimizers.
TINY = ["--trainer.limit_train_batches", "2", "--model.init_args.hidden_sizes", "[16]"]


def test_surface_lrs_are_tuned_per_optimizer_and_path_ends_are_marked(tmp_path):
    compare = load_script("compare_optimizers")
    lrs = compare.tune_surface("quadratic", budget=3, noise=0.0, seed=0)
    grid = [1e-5, 1e-5**0.5 * 1e2**0.5, 1e2]  # 3 log-spaced values of SURFACE_LRS
    assert list(lrs) == list(compare.SURFACES["quadratic"][-1])
    assert all(min(abs(lr - g) / g for g in grid) < 1e-9 for lr in lrs.values())
    fn, start, _, steps, _, _, optimizers = compare.SURFACES["quadratic"]
    for label, lr in lrs.items():  # the chosen LR ends lowest of the three
        cls, kwargs = optimizers[label]
        finals = {g: compare.final_value(fn, start, cls, {**kwargs, "lr": g}, steps, 0.0, 0) for g in grid}
        assert finals[min(grid, key=lambda g: abs(g - lr))] == min(finals.values())
    results = compare.plot_surface("quadratic", tmp_path, noise=0.0, seed=0, lrs=lrs)
    assert [r[0] for r in results] == list(lrs)
    assert (tmp_path / "optimizer_paths_quadratic.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_recipe_comparison_tunes_the_lr_then_runs_the_seeds(tmp_path):
    compare = load_script("compare_optimizers")
    sgd = ROOT / "configs/optimizer/sgd.yaml"
    result = compare.tune_recipe(DIGITS, sgd, budget=2, seeds=[1, 2], max_epochs=1, root=tmp_path, extra=TINY)
    assert [lr for lr, _ in result["search"]] == pytest.approx([1e-4, 3.0], rel=1e-12)
    finite = [(lr, v) for lr, v in result["search"] if v == v]
    assert result["lr"] == max(finite, key=lambda p: p[1])[0]
    assert len(result["seeds"]) == 2
    table = compare.plot_digits({"sgd": result}, tmp_path, 2, [1, 2], DIGITS)
    assert table.splitlines()[2].startswith(f"| sgd | {result['lr']:.3g} | ")
    assert (tmp_path / "optimizers_digits.png").is_file()


def test_lr_batch_sweep_marks_a_diverged_cell_instead_of_aborting(tmp_path):
    sweep = load_script("lr_batch_sweep")
    optimizer = str(ROOT / "configs/optimizer/momentum.yaml")
    cells = sweep.run_sweep(
        DIGITS, optimizer, [32], [0.03, 1.0e30], 32, 1, [0], tmp_path / "s", TINY, sweep.DEFAULT_CALLBACKS
    )
    # the default recipe's weight average is left out (its lag would be measured, not the LR rule)
    configs = sorted((tmp_path / "s").rglob("config.yaml"))
    assert len(configs) == 4
    for config in configs:
        classes = [c["class_path"] for c in yaml.safe_load(config.read_text())["trainer"]["callbacks"]]
        assert "lit_dl.callbacks.AtomicCheckpoint" in classes
        assert not any("WeightAveraging" in c for c in classes), classes
    assert sorted(cells) == [
        (32, 0.03, "linear"),
        (32, 0.03, "none"),
        (32, 1.0e30, "linear"),
        (32, 1.0e30, "none"),
    ]
    assert all(len(v) == 1 for v in cells.values())
    assert sweep.cell_text(cells[(32, 1.0e30, "none")]) == "diverged (1/1)"
    good = cells[(32, 0.03, "none")][0]
    assert good == good and sweep.cell_text([good]) == f"{good:.3f}"
    assert cells[(32, 0.03, "linear")] == cells[(32, 0.03, "none")]  # batch == base: the same run
    table = sweep.table(cells, [32], [0.03, 1.0e30])
    assert "diverged (1/1) / diverged (1/1)" in table
    sweep.plot(cells, [32], [0.03, 1.0e30], 32, 1, [0], optimizer, tmp_path / "lr_batch_sweep.png")
    assert (tmp_path / "lr_batch_sweep.png").is_file()

"""Each deliberately broken recipe in tests/doctor/broken/ makes `lit-dl doctor` report its pitfall."""

from __future__ import annotations

import pytest

from tests.doctor.helpers import BROKEN, by_check, run_doctor

# recipe file -> (check, status, words of what was found, words of the fix)
CASES = {
    "softmax_head": ("softmax_head", "error", "ends in Softmax", "remove the final (Log)Softmax"),
    "bias_before_bn": ("bias_before_norm", "warn", "cancels the bias", "bias=False"),
    "decay_on_norms": ("decay_on_norms", "warn", "weight decay reaches", "should_decay returns True"),
    "deep_sigmoid": (
        "saturating_stack",
        "warn",
        "saturating activations in a row",
        "--model.init_args.norm before",
    ),
    "xavier_relu": (
        "init_vs_activation",
        "warn",
        "the signal variance changes",
        "--config configs/callbacks/weight_init.yaml",
    ),
    "xavier_relu_weight_init": (
        "init_vs_activation",
        "warn",
        "xavier_uniform -> ReLU",
        "use WeightInit scheme auto",
    ),
    "dropout_before_bn": (
        "dropout_before_batchnorm",
        "warn",
        "variance shift",
        "move the dropout after the last BatchNorm",
    ),
    "cosine_short": (
        "schedule_vs_run",
        "error",
        "climbs back",
        "--model.init_args.lr_scheduler.init_args.T_max 4",
    ),
    "lr_batch": ("lr_vs_batch", "warn", "10x too high", "--model.init_args.lr_scaling linear"),
    "adam_l2": ("adam_coupled_decay", "warn", "AdamW was probably meant", "configs/optimizer/adamw.yaml"),
    "inplace": ("anomaly", "error", "inplace", "replace the in-place op"),
    "num_classes": ("num_classes", "warn", "never a target", "--model.init_args.num_classes 3"),
}


@pytest.mark.parametrize("recipe", sorted(CASES))
def test_broken_recipe_is_diagnosed(recipe, capsys):
    check, status, found, fix = CASES[recipe]
    code, report = run_doctor(capsys, "--config", str(BROKEN / f"{recipe}.yaml"), "--overfit-steps", "10")
    finding = by_check(report)[check]
    assert finding["status"] == status, finding
    assert found in finding["found"], finding
    assert fix in finding["fix"], finding
    assert code == (1 if report["counts"]["error"] else 0)


def test_every_broken_recipe_has_a_case():
    assert sorted(p.stem for p in BROKEN.glob("*.yaml")) == sorted(CASES)

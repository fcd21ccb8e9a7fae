"""Each deliberately broken recipe in tests/doctor/broken/ makes `lit-dl doctor` report its pitfall."""

from __future__ import annotations

import pytest

from tests.doctor.helpers import BROKEN, by_check, run_doctor

# recipe file -> (check, status, words the finding or its fix must contain)
CASES = {
    "softmax_head": ("softmax_head", "error", "Softmax"),
    "bias_before_bn": ("bias_before_norm", "warn", "bias=False"),
    "decay_on_norms": ("decay_on_norms", "warn", "should_decay"),
    "deep_sigmoid": ("saturating_stack", "warn", "--model.init_args.norm before"),
    "xavier_relu": ("init_vs_activation", "warn", "configs/callbacks/weight_init.yaml"),
    "xavier_relu_weight_init": ("init_vs_activation", "warn", "xavier_uniform -> ReLU"),
    "dropout_before_bn": ("dropout_before_batchnorm", "warn", "variance shift"),
    "cosine_short": ("schedule_vs_run", "error", "--model.init_args.lr_scheduler.init_args.T_max 4"),
    "lr_batch": ("lr_vs_batch", "warn", "10x too high"),
    "adam_l2": ("adam_coupled_decay", "warn", "AdamW"),
    "inplace": ("anomaly", "error", "inplace"),
    "num_classes": ("num_classes", "warn", "--model.init_args.num_classes 3"),
}


@pytest.mark.parametrize("recipe", sorted(CASES))
def test_broken_recipe_is_diagnosed(recipe, capsys):
    check, status, words = CASES[recipe]
    code, report = run_doctor(capsys, "--config", str(BROKEN / f"{recipe}.yaml"), "--overfit-steps", "10")
    finding = by_check(report)[check]
    assert finding["status"] == status, finding
    assert words in finding["found"] + " " + finding["fix"]
    assert code == (1 if report["counts"]["error"] else 0)


def test_every_broken_recipe_has_a_case():
    assert sorted(p.stem for p in BROKEN.glob("*.yaml")) == sorted(CASES)

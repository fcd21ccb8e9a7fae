"""scripts/init_signal.py: He et al.'s comparison of Xavier (gain 1) and He init on a deep ReLU MLP."""

from __future__ import annotations

import math

from tests.conftest import load_script


def test_xavier_with_gain_one_shrinks_the_relu_signal_by_one_over_sqrt2_per_layer_and_he_keeps_it(capsys):
    script = load_script("init_signal")
    xavier = script.per_layer_ratio(
        script.preactivation_stds("xavier_normal", 1.0, depth=20, width=256, batch=256)
    )
    he = script.per_layer_ratio(
        script.preactivation_stds("kaiming_normal", None, depth=20, width=256, batch=256)
    )
    # Theory: 1/sqrt(2) = 0.707 and 1; a fixed seed, sampling error of a few percent.
    assert abs(xavier - 1 / math.sqrt(2)) < 0.03
    assert abs(he - 1.0) < 0.04
    script.main(["--depth", "4", "--width", "32", "--batch", "64"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "4-layer ReLU MLP, width 32, 64 standard-normal inputs"
    assert [line.split()[0] for line in lines[2:]] == ["xavier_normal,", "he"]

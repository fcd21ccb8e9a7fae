"""scripts/sklearn_anchor.py: scikit-learn's MLPClassifier(256, 256) on the default recipe's digits split."""

from __future__ import annotations

from tests.conftest import load_script


def test_the_anchor_fits_the_recipes_training_split_and_scores_its_360_test_digits(capsys):
    load_script("sklearn_anchor").main(["--seeds", "3"])  # the seed that converges soonest (~5 s)
    # the value docs/recipes.md shows for seed 3 (seeds 0-4: 352, 349, 349, 350, 350 of 360)
    assert capsys.readouterr().out.splitlines() == ["seed 3: test/acc 0.9722 (350/360)"]

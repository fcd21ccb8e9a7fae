"""The scikit-learn anchor of the default recipe: ``MLPClassifier(256, 256)`` on the same digits split.

The default recipe (``configs/digits_mlp.yaml``) should score at least what scikit-learn's own MLP
of the same widths scores on the same data: the training split of ``DigitsDataModule`` (seed 0,
standardised as the recipe sees it) to fit, its 360-digit test split to score. scikit-learn's
defaults otherwise (Adam, lr 1e-3, L2 1e-4, batch 200, no early stopping); ``random_state`` is the seed.
docs/recipes.md holds the table this prints.

    python scripts/sklearn_anchor.py                 # seeds 0-4
    python scripts/sklearn_anchor.py --seeds 0 --max-iter 20
"""

from __future__ import annotations

import argparse
import warnings

from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from lit_dl.data import DigitsDataModule


def anchor(seed: int, max_iter: int) -> tuple[int, int]:
    """``(correct, total)`` of ``MLPClassifier(256, 256, random_state=seed)`` on the recipe's test split."""
    data = DigitsDataModule()  # the recipe's split: val_fraction 0.1, test_fraction 0.2, seed 0
    data.setup("fit")
    x, y = (t.numpy() for t in data.train_set.tensors)
    x_test, y_test = (t.numpy() for t in data.test_set.tensors)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # only with a small --max-iter
        model = MLPClassifier((256, 256), random_state=seed, max_iter=max_iter).fit(x, y)
    return int((model.predict(x_test) == y_test).sum()), len(y_test)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--max-iter", type=int, default=500, help="epochs at most (scikit-learn's max_iter)")
    args = parser.parse_args(argv)
    for seed in args.seeds:
        correct, total = anchor(seed, args.max_iter)
        print(f"seed {seed}: test/acc {correct / total:.4f} ({correct}/{total})")


if __name__ == "__main__":
    main()

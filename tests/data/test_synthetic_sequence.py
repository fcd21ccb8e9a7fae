import pytest
import torch

from lit_dl.data import SyntheticSequenceDataModule
from lit_dl.data.synthetic_sequence import _occurs
from lit_dl.errors import ConfigError


def test_labels_say_which_pattern_occurs_and_data_repeat_with_the_seed():
    kwargs = {"vocab_size": 6, "min_length": 5, "max_length": 12, "num_patterns": 2, "num_train": 120}
    dm = SyntheticSequenceDataModule(**kwargs, num_val=10, num_test=10, seed=3)
    dm.setup()
    ids, labels = dm.train_set.tensors
    assert ids.shape == (120, 12) and dm.num_classes == 3 and len(dm.patterns) == 2
    assert set(labels.tolist()) == {0, 1, 2}
    for seq, label in zip(ids.tolist(), labels.tolist(), strict=True):
        tokens = [t for t in seq if t != 0]
        assert 5 <= len(tokens) <= 12 and all(1 <= t < 6 for t in tokens)
        assert seq[len(tokens) :] == [0] * (12 - len(tokens))  # right-padded
        present = [c + 1 for c, p in enumerate(dm.patterns) if _occurs(tokens, p)]
        assert present == ([label] if label else [])
    again = SyntheticSequenceDataModule(**kwargs, num_val=10, num_test=10, seed=3)
    again.setup()
    assert torch.equal(again.train_set.tensors[0], ids)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"vocab_size": 2}, r"vocab_size must be >= 3 \(padding and two tokens\), got 2"),
        ({"pattern_length": 0}, r"pattern_length must be >= 1, got 0"),
        ({"min_length": 40}, r"need pattern_length <= min_length <= max_length, got 3, 40, 32"),
        (
            {"num_patterns": 0},
            r"num_patterns must be in \[1, 1687\] for vocab_size=16 and pattern_length=3, got 0",
        ),
        ({"num_test": 0}, r"num_test must be >= 1, got 0"),
    ],
)
def test_synthetic_sequence_rejects_bad_options(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        SyntheticSequenceDataModule(**kwargs)

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from lit_dl import ConfigError
from lit_dl.data import DigitsDataModule


@pytest.fixture(scope="module")
def digits():
    dm = DigitsDataModule(batch_size=64)
    dm.setup("fit")
    return dm


def test_split_sizes_and_stratification(digits):
    sizes = [len(s) for s in (digits.train_set, digits.val_set, digits.test_set)]
    assert sum(sizes) == 1797
    assert sizes == [1257, 180, 360]
    for split in (digits.train_set, digits.val_set, digits.test_set):
        counts = torch.bincount(split.tensors[1], minlength=10).float()
        share = counts / counts.sum()
        assert (share - 0.1).abs().max() < 0.02  # every class about 10% in every split
    assert digits.num_classes == 10


def test_standardisation_uses_training_statistics_only(digits):
    x_train = digits.train_set.tensors[0]
    mean, std = x_train.mean(0), x_train.std(0, unbiased=False)
    varying = std > 0
    assert torch.allclose(mean, torch.zeros(64), atol=1e-5)
    assert torch.allclose(std[varying], torch.ones(int(varying.sum())), atol=1e-4)
    # the held-out splits are transformed with the training statistics, so they are not exactly standard
    assert not torch.allclose(digits.test_set.tensors[0].mean(0), torch.zeros(64), atol=1e-3)


def test_split_is_fixed_by_seed_and_disjoint():
    a, b, c = DigitsDataModule(seed=0), DigitsDataModule(seed=0), DigitsDataModule(seed=1)
    for dm in (a, b, c):
        dm.setup("fit")
    assert torch.equal(a.test_set.tensors[0], b.test_set.tensors[0])
    assert not torch.equal(a.test_set.tensors[1], c.test_set.tensors[1])
    raw = load_digits().data.astype(np.float32)
    assert len({row.tobytes() for row in raw}) > 1700  # (a few digits are exact duplicates)


def test_batches_come_whole_from_memory(digits):
    x, y = next(iter(digits.train_dataloader()))
    assert x.shape == (64, 64) and x.dtype == torch.float32
    assert y.shape == (64,) and y.dtype == torch.int64
    loader = digits.train_dataloader()
    assert len(loader) == 1257 // 64  # drop_last: a batch of one would break BatchNorm
    assert len(digits.val_dataloader()) == 3


def test_as_images_shape():
    dm = DigitsDataModule(as_images=True)
    dm.setup("fit")
    assert dm.train_set.tensors[0].shape[1:] == (1, 8, 8)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be >= 1, got 0"),
        ({"eval_batch_size": -2}, "eval_batch_size must be >= 1, got -2"),
        ({"val_fraction": 0.0}, r"val_fraction must be in \(0, 1\), got 0.0"),
        ({"test_fraction": 1.2}, r"test_fraction must be in \(0, 1\), got 1.2"),
        ({"val_fraction": 0.6, "test_fraction": 0.4}, "leave 0 of 1797 samples for training"),
    ],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        DigitsDataModule(**kwargs)


@pytest.mark.parametrize(
    ("val_fraction", "test_fraction"),
    [(0.0056, 0.2), (0.1, 0.0056)],
    ids=["val-just-enough", "test-just-enough"],
)
def test_the_smallest_fractions_the_message_allows_split(val_fraction, test_fraction):
    """A stratified split needs one sample per class in each split: the bound the message gives works."""
    dm = DigitsDataModule(val_fraction=val_fraction, test_fraction=test_fraction)
    dm.setup()
    assert len(dm.val_set) >= 10 and len(dm.test_set) >= 10

import pytest
import torch

from lit_dl import ConfigError
from lit_dl.data import SyntheticClassificationDataModule, TensorBatchDataset


def test_same_seed_same_data_and_sizes():
    a = SyntheticClassificationDataModule(num_classes=4, num_features=5, num_train=40, num_val=8, num_test=9)
    b = SyntheticClassificationDataModule(num_classes=4, num_features=5, num_train=40, num_val=8, num_test=9)
    a.setup("fit"), b.setup("fit")
    assert torch.equal(a.train_set.tensors[0], b.train_set.tensors[0])
    assert [len(s) for s in (a.train_set, a.val_set, a.test_set)] == [40, 8, 9]
    assert a.train_set.tensors[0].shape == (40, 5)
    assert int(a.train_set.tensors[1].max()) < 4


def test_getitems_matches_getitem():
    ds = TensorBatchDataset(torch.arange(10.0).reshape(5, 2), torch.arange(5))
    xs, ys = ds.__getitems__([3, 1])
    assert torch.equal(xs, torch.stack([ds[3][0], ds[1][0]]))
    assert ys.tolist() == [3, 1]
    with pytest.raises(ValueError, match="same first dimension"):
        TensorBatchDataset(torch.zeros(3), torch.zeros(4))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 1}, "num_classes must be >= 2, got 1"),
        ({"num_features": 0}, "num_features must be >= 1, got 0"),
        ({"num_train": 2}, r"num_train must be >= num_classes \(3\), got 2"),
        ({"num_test": 0}, "num_test must be >= 1, got 0"),
        ({"batch_size": 0}, "batch_size must be >= 1, got 0"),
    ],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SyntheticClassificationDataModule(**kwargs)

from __future__ import annotations

import pytest
import torch

from lit_dl.callbacks import batch_size


@pytest.mark.parametrize(
    ("batch", "expected"),
    [
        (torch.zeros(5, 3), 5),
        ((torch.zeros(7, 1, 8, 8), torch.zeros(7, dtype=torch.long)), 7),
        ([torch.zeros(4, 2)], 4),
        ({"x": torch.zeros(3, 2), "y": torch.zeros(3)}, 3),
        (("ids", torch.zeros(6, 2)), 6),  # the first tensor, past other values
        (torch.tensor(1.0), 1),
    ],
    ids=["tensor", "inputs-targets", "list", "mapping", "skips-non-tensors", "scalar"],
)
def test_batch_size_is_the_first_tensors_length(batch, expected):
    assert batch_size(batch) == expected


def test_batch_without_a_tensor_is_a_type_error_naming_its_type():
    with pytest.raises(TypeError, match=r"batch_size: no tensor in a batch of type list"):
        batch_size(["a", 1])

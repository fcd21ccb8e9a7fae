import pytest
import torch

from lit_dl.nn import OneHot, one_hot


def test_one_hot_values_and_shape():
    out = one_hot(torch.tensor([[0, 2], [1, 1]]), 3)
    assert out.dtype == torch.float32
    assert out.shape == (2, 2, 3)
    assert out.tolist() == [[[1, 0, 0], [0, 0, 1]], [[0, 1, 0], [0, 1, 0]]]


@pytest.mark.parametrize("bad", [-1, 3, 7])
def test_out_of_range_ids_raise_a_clear_error(bad):
    with pytest.raises(ValueError, match=r"one_hot ids must lie in \[0, 3\), got values in"):
        one_hot(torch.tensor([0, bad]), 3)


def test_float_ids_are_refused():
    with pytest.raises(ValueError, match=r"expects an integer tensor of ids, got dtype torch\.float32"):
        one_hot(torch.tensor([0.0, 1.0]), 3)


def test_module_form_matches_function_and_validates_num_classes():
    ids = torch.tensor([2, 0])
    assert torch.equal(OneHot(4)(ids), one_hot(ids, 4))
    with pytest.raises(ValueError, match="num_classes must be >= 1, got 0"):
        OneHot(0)


def test_ids_off_the_cpu_are_checked_on_the_device_without_a_host_read(monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "_assert_async", lambda cond, msg: calls.append((cond.device.type, msg)))

    def no_host_read(self, *args):
        raise AssertionError("host synchronisation")

    for name in ("__bool__", "item", "__int__", "cpu", "tolist"):
        monkeypatch.setattr(torch.Tensor, name, no_host_read)
    out = one_hot(torch.zeros(2, 4, dtype=torch.long, device="meta"), 3)  # an accelerator stand-in
    assert out.shape == (2, 4, 3) and calls == [("meta", "one_hot ids must lie in [0, 3)")]

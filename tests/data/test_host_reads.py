"""HostCopy: device values read on the host without a synchronisation."""

from __future__ import annotations

import pytest
import torch

from lit_dl.data.host_reads import HostCopy


def test_a_cpu_copy_is_ready_at_once_and_holds_the_values():
    values = torch.tensor([1.5, float("nan")], requires_grad=True) * 2
    copy = HostCopy(values)
    assert copy.ready()
    got = copy.get()
    assert got.device.type == "cpu" and not got.requires_grad
    assert got[0].item() == 3.0 and bool(got[1].isnan())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_copy_starts_and_polls_without_a_host_sync():
    values = torch.randn(64, 64, device="cuda").sum(dim=1)
    torch.cuda.synchronize()
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")  # any synchronising call raises
    try:
        copy = HostCopy(values)
        copy.ready()
    finally:
        torch.cuda.set_sync_debug_mode(previous)
    assert torch.equal(copy.get(), values.cpu())
    assert copy.ready()

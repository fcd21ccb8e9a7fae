"""BackgroundCheckpointIO: a point-in-time copy of the state, written in order in one thread."""

from __future__ import annotations

from collections import OrderedDict, namedtuple

import torch
from lightning.fabric.utilities.data import AttributeDict

from lit_dl.checkpointing.background_io import BackgroundCheckpointIO, _snapshot


def test_the_snapshot_copies_every_tensor_and_keeps_the_containers():
    Pair = namedtuple("Pair", "a b")
    weight = torch.ones(3)
    state = {
        "state_dict": OrderedDict(w=weight),
        "hyper_parameters": AttributeDict(lr=0.1),
        "rng": (torch.zeros(2), [torch.ones(1), 5]),
        "pair": Pair(torch.ones(1), "x"),
        "epoch": 3,
    }
    copied = _snapshot(state)
    weight.add_(1)  # training goes on
    assert torch.equal(copied["state_dict"]["w"], torch.ones(3))
    assert type(copied["state_dict"]) is OrderedDict and type(copied["hyper_parameters"]) is AttributeDict
    assert isinstance(copied["pair"], Pair) and copied["pair"].b == "x"
    assert copied["rng"][1][1] == 5 and copied["epoch"] == 3
    assert copied["rng"][0] is not state["rng"][0]


class Recorder:
    """A stand-in inner I/O that records what reached it, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        self.calls.append(("save", path, checkpoint["w"].clone()))

    def remove_checkpoint(self, path):
        self.calls.append(("remove", path))

    def load_checkpoint(self, path, map_location=None, weights_only=None):
        return {"loaded": path, "calls_before": len(self.calls)}

    def teardown(self):
        self.calls.append(("teardown",))


def test_queued_operations_run_in_order_and_other_calls_wait_for_them():
    inner = Recorder()
    io = BackgroundCheckpointIO(inner)
    w = torch.zeros(1)
    with io.in_background():
        io.save_checkpoint({"w": w}, "a.ckpt")
        w.add_(1)
        io.submit(inner.calls.append, ("rename", "a.ckpt"))
        io.remove_checkpoint("old.ckpt")
    io.save_checkpoint({"w": w}, "sync.ckpt")  # outside the block: waits for the queue, then runs here
    assert [c[:2] for c in inner.calls] == [
        ("save", "a.ckpt"),
        ("rename", "a.ckpt"),
        ("remove", "old.ckpt"),
        ("save", "sync.ckpt"),
    ]
    assert inner.calls[0][2].item() == 0.0 and inner.calls[3][2].item() == 1.0
    assert io.load_checkpoint("a.ckpt")["calls_before"] == 4
    io.teardown()
    assert inner.calls[-1] == ("teardown",)

"""ExactResume's RNG capture: every generator a step draws from comes back bit for bit, through a
weights-only checkpoint file."""

from __future__ import annotations

import random

import numpy as np
import torch

from lit_dl.checkpointing.exact_resume import capture_rng_state, restore_rng_state


def draws() -> tuple:
    return torch.rand(4), np.random.rand(4), [random.random() for _ in range(4)]


def assert_same_draws(a: tuple, b: tuple) -> None:
    assert torch.equal(a[0], b[0])
    assert np.array_equal(a[1], b[1])
    assert a[2] == b[2]


def test_rng_state_round_trips_through_a_weights_only_file(tmp_path) -> None:
    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    draws()
    torch.save(capture_rng_state(), tmp_path / "rng.pt")
    expected = draws()
    draws()  # move every generator on
    restore_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert_same_draws(draws(), expected)


def test_python_rng_state_is_one_tensor_and_the_older_list_form_still_restores() -> None:
    state = capture_rng_state()
    assert isinstance(state["python"]["state"], torch.Tensor)
    assert state["python"]["state"].shape == (625,)
    expected = draws()
    state["python"]["state"] = state["python"]["state"].tolist()  # checkpoints written before
    restore_rng_state(state)
    assert_same_draws(draws(), expected)

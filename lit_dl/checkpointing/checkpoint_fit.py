"""Does a checkpoint's content fit the model and optimizer that the config builds?

Lightning restores a checkpoint into the module the config built (``load_state_dict``) and, on a
resumed ``fit``, into the optimizer the config built (``Optimizer.load_state_dict``). A checkpoint
that does not fit fails there with torch's multi-line ``Error(s) in loading state_dict`` or "loaded
state dict has a different number of parameter groups". :func:`check_state_dict_fits` and
:func:`check_optimizer_state_fits` find the same problems before anything is restored and name them in
one line (:class:`~lit_dl.errors.ConfigError`); :meth:`lit_dl.models.ClassificationTask.on_load_checkpoint`
calls them. (The state of another optimizer class is no such problem: the resume rule,
:mod:`lit_dl.models.resume_rule`, starts it afresh and says so.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
from lightning.pytorch.strategies import Strategy
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor, nn
from torch.optim import Optimizer

from lit_dl.checkpointing.loading import check_resumable
from lit_dl.errors import ConfigError

__all__ = [
    "check_optimizer_state_fits",
    "check_restore_fits",
    "check_state_dict_fits",
    "state_dict_differences",
]


def _listed(keys: list[str], limit: int = 4) -> str:
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def _shape(tensor: Tensor) -> list[int]:
    return list(tensor.shape)


def state_dict_differences(
    state: Mapping[str, Any], own: Mapping[str, Tensor], strict: bool = True
) -> list[str]:
    """What keeps ``state`` from loading into a module whose ``state_dict()`` is ``own``, as
    ``load_state_dict(state, strict)`` would refuse it: missing and unexpected keys (``strict``),
    tensors of another shape, entries that are not tensors. Empty when it loads."""
    missing = [k for k in own if k not in state] if strict else []
    unexpected = [k for k in state if k not in own and not k.endswith("_extra_state")] if strict else []
    common = [k for k in state if k in own and isinstance(own[k], Tensor)]
    not_tensors = [k for k in common if not isinstance(state[k], Tensor)]
    shapes = [
        f"{k} has shape {_shape(state[k])} in the checkpoint, {_shape(own[k])} in the model"
        for k in common
        if k not in not_tensors and state[k].shape != own[k].shape
    ]
    problems = []
    if missing:
        count = f" ({len(missing)} of its {len(own)} entries)" if len(missing) > 1 else ""
        problems.append(f"it has no {_listed(missing)}, which the model needs{count}")
    if unexpected:
        problems.append(f"it has {_listed(unexpected)}, which the model does not")
    problems += [f"{k} is a {type(state[k]).__name__}, not a tensor" for k in not_tensors[:3]]
    problems += shapes[:3] + ([f"{len(shapes) - 3} more shapes differ"] if len(shapes) > 3 else [])
    return problems


def check_state_dict_fits(checkpoint: Mapping[str, Any], module: nn.Module, path: str | None) -> None:
    """Refuse a checkpoint whose ``state_dict`` does not load into ``module`` (keys and shapes, as
    ``load_state_dict`` with the module's ``strict_loading`` checks them).

    Raises:
        ConfigError: naming the checkpoint, the module's class and what differs.
    """
    state = checkpoint.get("state_dict")
    if not isinstance(state, Mapping):
        return  # Lightning's own loading names a checkpoint without a state_dict
    problems = state_dict_differences(state, module.state_dict(), getattr(module, "strict_loading", True))
    if problems:
        name = "the checkpoint" if path is None else f"checkpoint {str(path)!r}"
        raise ConfigError(
            f"{name} does not fit the config's {type(module).__name__}: {'; '.join(problems)}. Give the "
            "config it was trained with (its run's config.yaml)"
        )


def check_optimizer_state_fits(saved: Mapping[str, Any], optimizer: Optimizer, path: str | None) -> None:
    """Refuse to resume ``optimizer`` (as the config builds it) from ``saved`` (the checkpoint's
    ``optimizer_states[i]``) when torch's ``load_state_dict`` would refuse it: another number of
    parameter groups, or of parameters in a group (the model's parameter groups changed).

    The state of another optimizer class is not refused here: the resume rule
    (:mod:`lit_dl.models.resume_rule`) starts it afresh and prints the change.

    Raises:
        ConfigError: naming the checkpoint, both group layouts and the ways out.
    """
    name = "the checkpoint" if path is None else f"checkpoint {str(path)!r}"
    way_out = (
        f"; resume with the config it was trained with (its run's config.yaml), or start a new run from "
        f"its weights with --model.init_args.init_from={path}"
        if path is not None
        else ""
    )
    groups = saved.get("param_groups")
    if not isinstance(groups, list) or not all(isinstance(g, Mapping) for g in groups):
        raise ConfigError(f"{name} has an optimizer state without a list of param_groups{way_out}")
    sizes = [len(g.get("params", ())) for g in groups]
    own_sizes = [len(g["params"]) for g in optimizer.param_groups]
    if sizes != own_sizes:
        raise ConfigError(
            f"{name} holds optimizer state for {len(groups)} parameter group(s) of {sizes} parameters, the "
            f"config's {type(optimizer).__name__} has {len(own_sizes)} of {own_sizes}: the model's "
            f"parameter groups differ{way_out}"
        )


def check_restore_fits(
    checkpoint: Mapping[str, Any],
    module: L.LightningModule,
    trainer: L.Trainer,
    build_optimizer: Callable[[], Optimizer | None],
) -> None:
    """What a Trainer's restore of ``checkpoint`` into ``module`` would fail on, in one line: called from
    the module's ``on_load_checkpoint`` (Lightning calls it right before it loads the weights).

    The weights are checked (:func:`check_state_dict_fits`) where the strategy loads them with
    ``load_state_dict`` (one device, DDP; sharded strategies load their own way); on a resumed ``fit``
    the checkpoint must carry the optimizer and scheduler states
    (:func:`~lit_dl.checkpointing.loading.check_resumable`) and its optimizer state must fit the optimizer
    ``build_optimizer()`` returns (:func:`check_optimizer_state_fits`; ``None``: not checked).

    Raises:
        ConfigError: naming the checkpoint (``trainer.ckpt_path``) and what does not fit.
    """
    path = None if trainer.ckpt_path is None else str(trainer.ckpt_path)
    strategy = type(trainer.strategy)
    if strategy.load_model_state_dict is Strategy.load_model_state_dict:
        check_state_dict_fits(checkpoint, module, path)
    if trainer.state.fn != TrainerFn.FITTING:
        return
    check_resumable(checkpoint, path or "the checkpoint")
    states = checkpoint["optimizer_states"]
    if not states or strategy.load_optimizer_state_dict is not Strategy.load_optimizer_state_dict:
        return
    optimizer = build_optimizer()
    if optimizer is not None:
        check_optimizer_state_fits(states[0], optimizer, path)

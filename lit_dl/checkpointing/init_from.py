"""Fine-tuning: start a task's network from the weights in a checkpoint or state-dict file.

Only the weights come over: the epoch counter, optimizer state and LR schedule start fresh (that is
what ``--ckpt_path`` is for). Loaded modules are marked (:func:`lit_dl.nn.init_marks.mark_initialized`)
so :class:`lit_dl.callbacks.WeightInit` leaves them alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn

from lit_dl.checkpointing.loading import load_weights_file
from lit_dl.errors import ConfigError
from lit_dl.nn.init_marks import mark_initialized

__all__ = ["backbone_state_dict", "classifier_head_name", "load_initial_weights"]

_PREFIX = "backbone."


def backbone_state_dict(payload: object, path: str | Path) -> dict[str, Tensor]:
    """The network's tensors in ``payload``: a Lightning checkpoint (``state_dict`` with ``backbone.*``
    keys), a task's ``state_dict()``, an exported ``state_dict`` (``backbone.*`` plus the input
    normalisation) or a bare network ``state_dict()``."""
    if isinstance(payload, Mapping) and isinstance(payload.get("state_dict"), Mapping):
        payload = payload["state_dict"]
    if not isinstance(payload, Mapping) or not all(isinstance(v, Tensor) for v in payload.values()):
        raise ConfigError(
            f"init_from={str(path)!r} holds neither a Lightning checkpoint nor a state dict of tensors"
        )
    if any(key.startswith(_PREFIX) for key in payload):
        return {key[len(_PREFIX) :]: value for key, value in payload.items() if key.startswith(_PREFIX)}
    return dict(payload)


def classifier_head_name(backbone: nn.Module) -> str:
    """Name of the classifier head in ``backbone``: its last ``nn.Linear`` (lit_dl's networks end in one)."""
    names = [name for name, module in backbone.named_modules() if isinstance(module, nn.Linear)]
    if not names:
        raise ConfigError(f"{type(backbone).__name__} has no nn.Linear classifier head to skip")
    return names[-1]


def _under(key: str, prefix: str) -> bool:
    return key == prefix or key.startswith(prefix + ".")


def _listed(keys: list[str], limit: int = 4) -> str:
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_initial_weights(
    backbone: nn.Module, path: str | Path, skip_head: bool = False, strict: bool = True
) -> None:
    """Load ``path``'s network weights into ``backbone`` and mark the loaded modules.

    Args:
        backbone: The freshly built network.
        path: A Lightning checkpoint or a state-dict file (loaded with ``weights_only=True``).
        skip_head: Leave the classifier head (:func:`classifier_head_name`) as built, so the number of
            classes may differ from the file's.
        strict: Every tensor of the network (head aside when skipped) must be in the file with the same
            shape, and the file must hold nothing else. ``False`` loads the tensors that match and
            reports the rest.

    Raises:
        ConfigError: the file is missing or unsafe, or (strict) its tensors do not match the network.
    """
    state = backbone_state_dict(load_weights_file(path), path)
    own = backbone.state_dict()
    head = classifier_head_name(backbone) if skip_head else None

    def skipped(key: str) -> bool:
        return head is not None and _under(key, head)

    state = {k: v for k, v in state.items() if not skipped(k)}
    missing = [k for k in own if k not in state and not skipped(k)]
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in state if k in own and state[k].shape != own[k].shape]
    if strict and (missing or unexpected or mismatched):
        problems = [
            f"missing {_listed(missing)}" if missing else "",
            f"unexpected {_listed(unexpected)}" if unexpected else "",
            ", ".join(
                f"{k} is {tuple(state[k].shape)} in the file, {tuple(own[k].shape)} here"
                for k in mismatched[:3]
            ),
        ]
        hint = "" if skip_head else "; set init_skip_head: true to train a new classifier head"
        raise ConfigError(
            f"init_from={str(path)!r} does not match {type(backbone).__name__}: "
            f"{'; '.join(p for p in problems if p)}{hint} (or init_strict: false to load what matches)"
        )
    loaded = {k: v for k, v in state.items() if k in own and k not in mismatched}
    backbone.load_state_dict(loaded, strict=False)
    for name, module in backbone.named_modules():
        keys = [f"{name}.{k}" if name else k for k in module.state_dict()]
        if keys and all(k in loaded for k in keys):
            mark_initialized(module, f"init_from {path}")
    left = [k for k in own if k not in loaded]
    rank_zero_info(
        f"init_from {path}: loaded {len(loaded)} of {len(own)} tensors"
        + (f"; kept as built: {_listed(left)}" if left else "")
    )

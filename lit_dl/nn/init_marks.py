"""Marks that say a module's weights are already what they should be, so no one re-initialises them.

Initialisation belongs in one place. A network that initialises itself on purpose (a ResNet's
fan-out He init and zeroed residual branches) or a module whose weights were loaded (a checkpoint,
``init_from``) carries a mark; :class:`lit_dl.callbacks.WeightInit` leaves a marked module and
everything inside it alone and says so. The mark is a plain attribute, so it survives
``copy.deepcopy`` and pickling (DDP spawn).
"""

from __future__ import annotations

from torch import nn

__all__ = ["initialized_by", "mark_initialized"]

_ATTR = "_lit_dl_initialized_by"


def mark_initialized(module: nn.Module, by: str) -> None:
    """Record that ``module``'s parameters were set by ``by`` (e.g. ``"ResNet's own init"`` or
    ``"checkpoint last.ckpt"``) and must not be re-initialised."""
    object.__setattr__(module, _ATTR, by)


def initialized_by(module: nn.Module) -> str | None:
    """What set ``module``'s parameters, if it was marked with :func:`mark_initialized`."""
    return getattr(module, _ATTR, None)

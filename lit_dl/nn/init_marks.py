"""Marks that say a module's weights were loaded, so no one re-initialises them.

A module whose weights came from a file (a checkpoint, ``init_from``) carries a mark; weight init
(:meth:`lit_dl.nn.SelfInitializing.init_weights`, :class:`lit_dl.callbacks.WeightInit`) leaves a
marked module and everything inside it alone, and the callback says so. The mark is a plain
attribute, so it survives ``copy.deepcopy`` and pickling (DDP spawn).
"""

from __future__ import annotations

from torch import nn

__all__ = ["initialized_by", "mark_initialized"]

_ATTR = "_lit_dl_initialized_by"


def mark_initialized(module: nn.Module, by: str) -> None:
    """Record that ``module``'s parameters were loaded by ``by`` (e.g. ``"checkpoint last.ckpt"``) and
    must not be re-initialised."""
    object.__setattr__(module, _ATTR, by)


def initialized_by(module: nn.Module) -> str | None:
    """What set ``module``'s parameters, if it was marked with :func:`mark_initialized`."""
    return getattr(module, _ATTR, None)

"""Speed switches of the task base: ``channels_last`` memory format and ``torch.compile`` of the backbone.

Both leave the module tree and its parameter names alone, so checkpoints are the same with either
switch on or off:

- ``channels_last`` converts the 4-D conv kernels in place (``Module.to(memory_format=...)``; later
  ``.to(device)`` calls and ``load_state_dict`` keep the strides) and the 4-D inputs in ``forward``.
  cuDNN then runs NHWC convolutions, which use the tensor cores without transposes under bf16/fp16.
- ``compile`` wraps the backbone with ``torch.compile``, but the compiled wrapper is kept outside the
  module tree (a plain attribute bypassing ``nn.Module.__setattr__``): ``state_dict`` holds
  ``backbone.<name>``, never ``_orig_mod.``, a checkpoint of a compiled run loads into an uncompiled
  model and the other way round, and the wrapper shares its parameters with ``self.backbone``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from lit_dl.errors import ConfigError

__all__ = [
    "COMPILE_MODES",
    "BackboneSpeed",
    "CompileMode",
    "check_channels_last",
    "check_compile",
    "compile_module",
]

CompileMode = Literal["off", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"]
COMPILE_MODES: tuple[str, ...] = get_args(CompileMode)
_CONVS = (nn.Conv2d, nn.ConvTranspose2d)


def check_compile(mode: str, backend: str) -> None:
    """Raise ``ConfigError`` for a ``compile`` mode torch does not have or an empty backend name."""
    if mode not in COMPILE_MODES:
        raise ConfigError(f"compile must be one of {', '.join(COMPILE_MODES)}, got {mode!r}")
    if not isinstance(backend, str) or not backend:
        raise ConfigError(f"compile_backend must be a torch.compile backend name, got {backend!r}")


def check_channels_last(backbone: nn.Module, recipe: str) -> None:
    """Raise ``ConfigError`` when ``channels_last`` is asked of a network without 2-D convolutions."""
    if not any(isinstance(m, _CONVS) for m in backbone.modules()):
        raise ConfigError(
            f"channels_last=True needs a network with 2-D convolutions, but {recipe}'s backbone has none; "
            f"set channels_last: false (it only changes the memory layout of conv inputs and kernels)"
        )


def to_channels_last(x: Tensor) -> Tensor:
    """A 4-D batch in channels_last memory format (a no-op when it already is); other ranks unchanged."""
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def compile_module(module: nn.Module, mode: str, backend: str = "inductor") -> Callable[..., Tensor]:
    """``torch.compile(module)`` with a lit_dl ``compile`` mode; ``mode`` applies to inductor only."""
    if backend == "inductor":
        return torch.compile(module, mode=mode)
    return torch.compile(module, backend=backend)


class BackboneSpeed:
    """A task's ``channels_last`` and ``compile`` switches, applied to its backbone.

    A plain object, not an ``nn.Module``: the compiled wrapper it holds stays out of the module tree
    (and so out of every ``state_dict``) while it shares its parameters with the backbone.

    Args:
        channels_last: Keep 4-D conv kernels and inputs in channels_last memory format.
        compile: ``"off"`` or a ``torch.compile`` mode (:data:`COMPILE_MODES`).
        backend: The ``torch.compile`` backend.

    Raises:
        ConfigError: an unknown ``compile`` mode or an empty backend name.
    """

    def __init__(self, channels_last: bool, compile: str, backend: str) -> None:
        check_compile(compile, backend)
        self.channels_last = bool(channels_last)
        self.mode = compile
        self.backend = backend
        self.compiled: Callable[..., Tensor] | None = None  # set by compile_once

    def prepare(self, backbone: nn.Module, recipe: str) -> None:
        """Convert ``backbone``'s conv kernels to channels_last when asked (``ConfigError`` without any)."""
        if self.channels_last:
            check_channels_last(backbone, recipe)
            # Module.to takes memory_format at run time; torch's overloads for it omit the keyword
            backbone.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def compile_once(self, backbone: nn.Module) -> None:
        """Compile ``backbone`` (``compile`` not ``"off"``) unless already done: a second call is free."""
        if self.mode != "off" and self.compiled is None:
            self.compiled = compile_module(backbone, self.mode, self.backend)

    def run(self, backbone: nn.Module, x: Tensor) -> Tensor:
        """``backbone(x)`` through the compiled wrapper when there is one, ``x`` in the asked layout."""
        if self.channels_last:
            x = to_channels_last(x)
        if self.compiled is not None:
            return self.compiled(x)
        return backbone(x)

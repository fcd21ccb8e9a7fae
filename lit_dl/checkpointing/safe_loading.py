"""``load_from_checkpoint`` that cannot run code from the file and checks the file first.

Lightning's ``LightningModule.load_from_checkpoint`` passes ``weights_only`` to ``torch.load`` only
when asked, and reads a damaged file as far as it goes. :class:`SafeLoading` gives a LightningModule
the same method with ``weights_only=True`` by default and the checks of :mod:`lit_dl.checkpointing.loading`
in front of it: every lit_dl recipe has it through :class:`~lit_dl.models.ClassificationTask`, and a
LightningModule of your own gets it by listing the mixin first (``class Net(SafeLoading, L.LightningModule)``).
"""

from __future__ import annotations

import os
from typing import Any

from lit_dl.checkpointing.integrity import verify_checksums
from lit_dl.checkpointing.loading import refuse_unsafe_pickles

__all__ = ["SafeLoading"]


class SafeLoading:
    """A mixin for a LightningModule: its ``load_from_checkpoint`` loads safely.

    Everything else is Lightning's ``load_from_checkpoint``: the same arguments, the hyperparameters
    from the file, the module returned in training mode (call ``.eval()`` before inference).
    """

    @classmethod
    def load_from_checkpoint(
        cls,
        checkpoint_path: Any,
        map_location: Any = None,
        hparams_file: Any = None,
        strict: bool | None = None,
        weights_only: bool | None = True,
        **kwargs: Any,
    ) -> Any:
        """Lightning's ``load_from_checkpoint`` with ``weights_only=True`` (a file cannot run code; an
        unsafe one is refused with one line, :class:`~lit_dl.errors.UnsafeCheckpointError`), after a
        check of its content against the checksums inside it (:class:`~lit_dl.errors.CorruptCheckpointError`).
        The module comes back in training mode: call ``.eval()`` before inference."""
        if isinstance(checkpoint_path, (str, os.PathLike)):
            verify_checksums(checkpoint_path)
        with refuse_unsafe_pickles(checkpoint_path):
            return super().load_from_checkpoint(  # type: ignore[misc]  # the LightningModule after the mixin
                checkpoint_path, map_location, hparams_file, strict, weights_only=weights_only, **kwargs
            )

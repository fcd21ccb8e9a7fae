"""Reading device values on the host without stalling the GPU.

``tensor.item()`` (or ``bool(tensor)``, ``.cpu()``) on a CUDA tensor makes the host wait until the GPU
has run everything queued before it: the queue drains, and the GPU then idles while the host prepares
the next step. :class:`HostCopy` instead starts a non-blocking copy into pinned host memory and records
an event after it; :meth:`HostCopy.ready` polls the event (no waiting), so a caller reads the values a
few steps later, once they have arrived, at no cost to the step. Only :meth:`HostCopy.get` on a copy
that has not arrived yet waits.

On the CPU the copy is the tensor itself and is ready at once, so code built on it behaves as if it
read the value directly.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["HostCopy"]


class HostCopy:
    """A copy of ``values`` on the host, started without a host synchronisation.

    Args:
        values: Any tensor; on a CUDA device the copy is asynchronous (pinned memory, non-blocking),
            elsewhere the (detached) tensor is kept as it is.
    """

    def __init__(self, values: Tensor) -> None:
        values = values.detach()
        self._event: torch.cuda.Event | None = None
        if values.device.type == "cuda":
            self._host = torch.empty(values.shape, dtype=values.dtype, pin_memory=True)
            self._host.copy_(values, non_blocking=True)
            self._event = torch.cuda.Event()
            self._event.record()
        else:
            self._host = values

    def ready(self) -> bool:
        """Whether the values have reached the host (never waits)."""
        return self._event is None or self._event.query()

    def get(self) -> Tensor:
        """The values on the host (CPU tensor); waits for the copy only if it has not arrived yet."""
        if self._event is not None:
            self._event.synchronize()
        return self._host.cpu()

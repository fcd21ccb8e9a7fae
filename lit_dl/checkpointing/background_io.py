"""Checkpoint files written in a background thread, in order, from a point-in-time copy of the state.

Writing a checkpoint stops training for as long as the state takes to pickle and reach the disk: about
10 ms for the 1 MB digits MLP on a small CPU, and for a ResNet-18 with its momentum buffers (90 MB,
copied from the GPU first) far longer than a fast step. :class:`BackgroundCheckpointIO` wraps the
strategy's checkpoint I/O (above :class:`~lit_dl.checkpointing.atomic_io.AtomicCheckpointIO`, whose
temporary file and rename then happen in the worker): ``save_checkpoint`` clones the state's tensors on
the calling thread (a device-side copy on a GPU: no host synchronisation) and hands the rest to one
worker thread. Every other file operation that must follow a write (the removal of an older top-k
file, anything given to :meth:`BackgroundCheckpointIO.submit`) is queued behind it, so the files on
disk always change in the order the callbacks asked for.

Only the operations made inside :meth:`BackgroundCheckpointIO.in_background` are queued (the saving
hooks of :class:`~lit_dl.callbacks.AtomicCheckpoint`); any other save or removal (``trainer.save_checkpoint``
from user code, Lightning's SLURM handler, which requeues the job right after its save returns) first
waits for the queue and then runs on the calling thread, as without this plugin.

At most ``max_pending`` saves are queued; a new one first waits for the older ones (bounded memory when
the disk is slower than the epochs). ``load_checkpoint`` and ``teardown`` (the end of every
``fit``/``test``, also after an error) wait for the queue. An error in the worker is raised on the
calling thread at the next call or at teardown.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from typing import Any

import torch
from lightning.fabric.plugins import CheckpointIO

__all__ = ["BackgroundCheckpointIO"]


def _snapshot(obj: Any) -> Any:
    """``obj`` with every tensor in its dicts, lists and tuples replaced by a detached clone; other
    values are shared (a checkpoint's are plain numbers, strings and containers built for the save).
    A plain recursion: ``apply_to_collection`` costs as much as the pickling it would save here."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        copied = copy.copy(obj)  # keeps the mapping's type (OrderedDict, AttributeDict, ...)
        for key, value in obj.items():
            copied[key] = _snapshot(value)
        return copied
    if isinstance(obj, list):
        return [_snapshot(value) for value in obj]
    if isinstance(obj, tuple):
        values = [_snapshot(value) for value in obj]
        return type(obj)(*values) if hasattr(obj, "_fields") else type(obj)(values)
    return obj


class BackgroundCheckpointIO(CheckpointIO):
    """A checkpoint I/O plugin that runs ``inner``'s writes and removals in one background thread.

    Args:
        inner: The I/O that does the work (the strategy's, usually ``TorchCheckpointIO``).
        max_pending: Saves allowed in the queue before a new one waits (>= 1).
    """

    def __init__(self, inner: CheckpointIO, max_pending: int = 1) -> None:
        self.inner = inner
        self.max_pending = max(1, int(max_pending))
        self._executor: ThreadPoolExecutor | None = None
        self._futures: list[Future] = []
        self._saves: list[Future] = []
        self._background = False

    @contextlib.contextmanager
    def in_background(self) -> Iterator[None]:
        """Queue the saves and removals made inside this block instead of running them here."""
        previous, self._background = self._background, True
        try:
            yield
        finally:
            self._background = previous

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` in the worker after everything queued before it."""
        self._raise_finished()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lit_dl-checkpoint")
        self._futures.append(self._executor.submit(fn, *args))

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if not self._background:
            self.wait()
            self.inner.save_checkpoint(checkpoint, path, storage_options)
            return
        pending = [f for f in self._saves if not f.done()]
        if len(pending) >= self.max_pending:  # bounded queue: wait for the oldest saves
            wait_for(pending[: len(pending) - self.max_pending + 1])
        snapshot = _snapshot(checkpoint)
        self.submit(self.inner.save_checkpoint, snapshot, path, storage_options)
        self._saves = [f for f in pending if not f.done()] + [self._futures[-1]]

    def remove_checkpoint(self, path: Any) -> None:
        if not self._background:
            self.wait()
            self.inner.remove_checkpoint(path)
            return
        self.submit(self.inner.remove_checkpoint, path)

    def load_checkpoint(
        self, path: Any, map_location: Any | None = None, weights_only: bool | None = None
    ) -> Any:
        self.wait()
        return self.inner.load_checkpoint(path, map_location=map_location, weights_only=weights_only)

    def wait(self) -> None:
        """Block until every queued operation has run; raise the first error among them."""
        futures, self._futures, self._saves = self._futures, [], []
        wait_for(futures)
        for future in futures:
            if future.exception() is not None:
                raise future.exception()  # type: ignore[misc]

    def _raise_finished(self) -> None:
        # an operation that already failed is reported at the next call, not only at teardown
        if any(f.done() and f.exception() is not None for f in self._futures):
            self.wait()
        self._futures = [f for f in self._futures if not f.done()]

    def teardown(self) -> None:
        try:
            self.wait()
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
            self.inner.teardown()

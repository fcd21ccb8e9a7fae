"""The ``lit-dl`` console: Lightning's messages that a user of the recipes cannot act on are filtered out.

Each filter is scoped to one message from one module (never a whole category), and is applied by the
CLI only, so code that uses lit_dl as a library sees every warning. What a user can act on stays.
"""

from __future__ import annotations

import logging
import warnings

__all__ = ["QUIET_LOG_PREFIXES", "QUIET_WARNINGS", "quiet_console"]

# (message regex, category, module regex) -> why the user cannot act on it.
QUIET_WARNINGS: list[tuple[str, type[Warning], str]] = [
    # Raised by Lightning's own pytree helper on torch >= 2.10 (lightning 2.6.6), not by the user's code.
    (
        r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        FutureWarning,
        r"lightning\.pytorch\.utilities\._pytree",
    ),
    # `test`/`predict`/resume with --ckpt_path: every run writes a new run folder, so the checkpoint's
    # folder always differs from the new one; nothing is lost that the command needs.
    (r"The dirpath has changed from", UserWarning, r"lightning\.pytorch\.callbacks\.model_checkpoint"),
    # The shipped callback bundle logs momentum for every optimizer; for Adagrad/Adadelta it logs 0.
    (r"You have set log_momentum=True, but some optimizers do not", RuntimeWarning, r"lightning\.pytorch"),
    # A CSVLogger shares the one run folder with the config copy and TensorBoard's events (the CLI fixes
    # every logger's version before the run writes); it removes only a metrics.csv of its own there.
    (
        r"Experiment logs directory .* exists and is not empty",
        UserWarning,
        r"lightning\.fabric\.loggers\.csv_logs",
    ),
]

# Log lines (Lightning's rank-zero logger) that advertise rather than inform.
# Lightning's callback connector prints the second whenever it adds its default ModelCheckpoint.
QUIET_LOG_PREFIXES: tuple[str, ...] = (
    "💡 Tip: For seamless cloud logging",
    "💡 Tip: For seamless cloud uploads and versioning",
)
_LIGHTNING_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


class _DropPrefixes(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(QUIET_LOG_PREFIXES)


_FILTER = _DropPrefixes()


def quiet_console() -> None:
    """Install the scoped warning filters and the log filter (idempotent)."""
    for message, category, module in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    for name in _LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)

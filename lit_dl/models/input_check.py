"""Checks of the task's own arguments (at construction) and of the model against its data at setup:
the class count (every recipe) and the feature count (the MLP recipe)."""

from __future__ import annotations

from typing import Any

from lit_dl.errors import ConfigError

__all__ = ["check_input_features", "check_num_classes", "check_task_arguments"]


def check_task_arguments(
    num_classes: int, scheduler_interval: str, l1: float, label_smoothing: float
) -> None:
    """Raise ``ConfigError`` naming the first of the task's plain arguments out of its range."""
    if num_classes < 2:
        raise ConfigError(f"num_classes must be >= 2, got {num_classes!r}")
    if scheduler_interval not in ("epoch", "step"):
        raise ConfigError(f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
    if l1 < 0:
        raise ConfigError(f"l1 must be >= 0, got {l1!r}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ConfigError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")


def check_input_features(datamodule: Any, in_features: int) -> None:
    """Raise ``ConfigError`` if ``datamodule.num_features`` (features per sample after flattening) is not
    ``in_features``; data modules without an integer ``num_features`` attribute are not checked.

    Without it a mismatch surfaces as torch's "mat1 and mat2 shapes cannot be multiplied" in the first
    batch, which names neither option.
    """
    data_features = getattr(datamodule, "num_features", None)
    if (
        isinstance(data_features, int)
        and not isinstance(data_features, bool)
        and data_features != in_features
    ):
        raise ConfigError(
            f"model in_features={in_features} does not match the {data_features} features per sample of the "
            f"data ({type(datamodule).__name__}); set model.init_args.in_features to {data_features}"
        )


def check_num_classes(datamodule: Any, num_classes: int) -> None:
    """Raise ``ConfigError`` if ``datamodule.num_classes`` is larger than the model's ``num_classes``;
    data modules without a ``num_classes`` attribute are not checked."""
    data_classes = getattr(datamodule, "num_classes", None)
    if data_classes is not None and data_classes > num_classes:
        raise ConfigError(
            f"model num_classes={num_classes} is smaller than the {data_classes} classes in the "
            f"data ({type(datamodule).__name__} has labels 0..{data_classes - 1}); "
            f"set model.init_args.num_classes to at least {data_classes}"
        )

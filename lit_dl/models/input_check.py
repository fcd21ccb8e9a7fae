"""Setup-time check of the MLP recipe: the data's feature count must match the model's ``in_features``."""

from __future__ import annotations

from typing import Any

from lit_dl.errors import ConfigError

__all__ = ["check_input_features"]


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

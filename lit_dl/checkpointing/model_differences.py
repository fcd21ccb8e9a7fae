"""A checkpoint never rewrites the configuration: compare its hyper-parameters with the given model config.

LightningCLI merges a checkpoint's ``hyper_parameters`` into the model config for every
``--ckpt_path`` (LightningCLI does so under a subcommand), so ``lit-dl test`` of a checkpoint
trained with ``hidden_sizes: [32]`` would silently build a ``[32]`` network under a ``[256, 256]``
config. :func:`checkpoint_model_differences` lists what the merge would change; the CLI refuses the
run when the list is not empty, unless ``--model_from_ckpt true`` asks for the checkpoint's values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "NEVER_FROM_CHECKPOINT",
    "buildable_from_checkpoint",
    "checkpoint_model_differences",
    "format_differences",
]

# The training recipe, not the network: always taken from the config, never from a checkpoint (a resumed
# fit trains with the config's, lit_dl.models.resume_rule).
NEVER_FROM_CHECKPOINT = frozenset(
    {"optimizer", "lr_scheduler", "scheduler_interval", "lr_scaling", "base_batch_size"}
)
# Bookkeeping keys Lightning's CLI writes into the hyper-parameters.
_BOOKKEEPING = frozenset({"_instantiator", "_class_path"})


def _plain(value: Any) -> Any:
    """``value`` with Namespaces turned into dicts and tuples into lists, for comparison and printing."""
    if hasattr(value, "as_dict") and callable(value.as_dict):  # jsonargparse.Namespace
        value = value.as_dict()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def checkpoint_model_differences(hparams: Mapping[str, Any], model_config: Any) -> list[tuple[str, Any, Any]]:
    """The model arguments whose checkpoint value differs from the configured one.

    Args:
        hparams: The checkpoint's ``hyper_parameters``.
        model_config: The parsed ``model`` entry of the config (``class_path``, ``init_args``,
            ``dict_kwargs``; or the arguments themselves when the model class is fixed).

    Returns:
        ``(key, checkpoint value, config value)`` per difference, ``key`` as a config path
        (``model.init_args.hidden_sizes``, ``model.class_path``); a config value of ``...`` means the
        config has no such argument. The optimizer, the LR scheduler, its interval and the LR scaling
        (:data:`NEVER_FROM_CHECKPOINT`) are never compared: they always come from the config.
    """
    config = _plain(model_config) or {}
    differences: list[tuple[str, Any, Any]] = []
    ckpt_class = hparams.get("_class_path")
    if "class_path" in config or "init_args" in config:
        if ckpt_class is not None and ckpt_class != config.get("class_path"):
            differences.append(("model.class_path", ckpt_class, config.get("class_path")))
        arguments = {**(config.get("init_args") or {}), **(config.get("dict_kwargs") or {})}
        prefix = "model.init_args."
    else:
        arguments, prefix = config, "model."
    for key, value in hparams.items():
        if key in _BOOKKEEPING or key in NEVER_FROM_CHECKPOINT:
            continue
        configured = arguments.get(key, ...)
        if _plain(value) != configured:
            differences.append((prefix + key, _plain(value), configured))
    return differences


def buildable_from_checkpoint(differences: list[tuple[str, Any, Any]]) -> bool:
    """Whether ``--model_from_ckpt`` can build the model from the checkpoint's arguments: it names its
    own class, or the configured class has every argument it differs in (a checkpoint that plain
    Lightning wrote for another LightningModule has arguments the configured class lacks)."""
    other_class = any(key == "model.class_path" for key, _, _ in differences)
    return other_class or not any(conf is ... for _, _, conf in differences)


def format_differences(ckpt_path: str, differences: list[tuple[str, Any, Any]]) -> str:
    """One line naming each difference and the ways out: the run's own config, or ``--model_from_ckpt``
    where the configured class can take the checkpoint's arguments (not for arguments it does not
    have, as in a checkpoint of another LightningModule that plain Lightning wrote)."""
    items = "; ".join(
        f"{key}={ckpt!r} in the checkpoint, {'not an argument' if conf is ... else repr(conf)} in the config"
        for key, ckpt, conf in differences
    )
    if not buildable_from_checkpoint(differences):
        return (
            f"checkpoint {ckpt_path!r} was trained with a different model: {items}. The configured model "
            "has no such argument(s), so the checkpoint is not one of its: give the config it was trained "
            "with (its run's config.yaml)"
        )
    return (
        f"checkpoint {ckpt_path!r} was trained with a different model: {items}. Give the run's own config "
        "(its config.yaml) or pass --model_from_ckpt=true to build the model from the checkpoint"
    )

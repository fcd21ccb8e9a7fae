"""Parameter groups for weight decay: which parameters decay and which do not.

Weight decay (L2 regularisation) is meant to shrink the weights that mix features: weight matrices
and convolution kernels. Decaying biases, the scale/shift of normalisation layers or embedding rows
only hurts: a norm layer's scale is undone by the next norm, and rare embedding rows would be pulled
to zero between their updates (Loshchilov & Hutter, 2019, "Decoupled Weight Decay Regularization";
the split is the one in minGPT's ``configure_optimizers``). Norm layers are recognised by base class
and biases by ``ndim``, never by name substrings, because ``sync_batchnorm`` swaps BatchNorm classes
during a DDP fit and downstream modules name things as they like.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from torch import nn

from lit_dl.errors import ConfigError
from lit_dl.nn.layers import EMBEDDING_TYPES, NORM_TYPES

__all__ = [
    "EMBEDDING_TYPES",
    "NORM_TYPES",
    "DecayRule",
    "check_all_grouped",
    "decay_parameters",
    "default_decay_rule",
    "named_parameters_with_modules",
    "parameter_groups",
]

DecayRule = Callable[[nn.Module, str, nn.Parameter], bool]
"""``rule(module, param_name, param) -> bool``: does ``module.<param_name>`` get weight decay?"""


def default_decay_rule(
    module: nn.Module, param_name: str, param: nn.Parameter, decay_embeddings: bool = False
) -> bool:
    """Weight matrices and conv kernels decay; biases, norm parameters and (by default) embeddings don't."""
    if isinstance(module, NORM_TYPES):
        return False
    if isinstance(module, EMBEDDING_TYPES):
        return decay_embeddings
    return param.ndim >= 2


def named_parameters_with_modules(
    model: nn.Module, exclude: tuple[type[nn.Module], ...] = ()
) -> Iterator[tuple[str, nn.Module, str, nn.Parameter]]:
    """Yield ``(full_name, owning_module, local_name, param)`` once per trainable parameter.

    Shared (tied) parameters appear once, under the first name that reaches them, as in
    ``model.named_parameters()``. Modules of the ``exclude`` types, with everything inside them,
    are left out (a task leaves out its metric objects).
    """
    seen: set[int] = set()
    skipped: set[int] = set()
    for module_name, module in model.named_modules():
        if id(module) in skipped or isinstance(module, exclude):
            skipped.update(id(m) for m in module.modules())
            continue
        for local_name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            full_name = f"{module_name}.{local_name}" if module_name else local_name
            yield full_name, module, local_name, param


def decay_parameters(
    model: nn.Module, rule: DecayRule = default_decay_rule, exclude: tuple[type[nn.Module], ...] = ()
) -> dict[str, bool]:
    """Map every trainable parameter's name to whether ``rule`` gives it weight decay."""
    return {
        name: bool(rule(module, local, p))
        for name, module, local, p in named_parameters_with_modules(model, exclude)
    }


def check_all_grouped(
    model: nn.Module, groups: list[dict], exclude: tuple[type[nn.Module], ...] = ()
) -> None:
    """Raise if a trainable parameter of ``model`` is in none of the optimizer ``groups``.

    Such a parameter would silently never be trained (a subclass that overrides the groups and
    forgets one, say).

    Raises:
        ConfigError: naming every parameter left out.
    """
    grouped = {id(p) for group in groups for p in group["params"]}
    missing = [
        name for name, _, _, p in named_parameters_with_modules(model, exclude) if id(p) not in grouped
    ]
    if missing:
        raise ConfigError(
            f"trainable parameters in no optimizer parameter group would never be trained: "
            f"{', '.join(missing)}; add them to a group or set requires_grad=False"
        )


def parameter_groups(
    model: nn.Module, rule: DecayRule = default_decay_rule, exclude: tuple[type[nn.Module], ...] = ()
) -> list[dict]:
    """Split ``model``'s trainable parameters into named optimizer groups.

    Returns up to two groups, empty ones left out:

    - ``{"name": "decay", "params": [...]}``: inherits the optimizer's ``weight_decay``;
    - ``{"name": "no_decay", "params": [...], "weight_decay": 0.0}``.

    The ``name`` key is what Lightning's ``LearningRateMonitor`` shows (``lr-AdamW/decay``).
    """
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for _, module, local, param in named_parameters_with_modules(model, exclude):
        (decay if rule(module, local, param) else no_decay).append(param)
    groups: list[dict] = []
    if decay:
        groups.append({"name": "decay", "params": decay})
    if no_decay:
        groups.append({"name": "no_decay", "params": no_decay, "weight_decay": 0.0})
    return groups

"""Pure optimisation helpers (no Lightning): parameter groups, penalties, LR rules."""

from lit_dl.optim.param_groups import (
    EMBEDDING_TYPES,
    NORM_TYPES,
    DecayRule,
    decay_parameters,
    default_decay_rule,
    named_parameters_with_modules,
    parameter_groups,
)
from lit_dl.optim.penalties import l1_penalty

__all__ = [
    "EMBEDDING_TYPES",
    "NORM_TYPES",
    "DecayRule",
    "decay_parameters",
    "default_decay_rule",
    "l1_penalty",
    "named_parameters_with_modules",
    "parameter_groups",
]

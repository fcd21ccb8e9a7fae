"""Pure optimisation helpers (no Lightning): parameter groups, penalties, LR rules."""

from lit_dl.errors import renamed_attributes
from lit_dl.optim.lr_scaling import (
    LR_SCALING_RULES,
    LRScaling,
    check_lr_scaling,
    global_batch_size,
    lr_scale_factor,
    scale_optimizer_lr,
)
from lit_dl.optim.one_cycle import RunLengthOneCycleLR
from lit_dl.optim.param_groups import (
    EMBEDDING_TYPES,
    NORM_TYPES,
    DecayRule,
    check_all_grouped,
    decay_parameters,
    default_decay_rule,
    named_parameters_with_modules,
    parameter_groups,
)
from lit_dl.optim.penalties import l1_penalty
from lit_dl.optim.schedule_checks import check_scaling_reaches_the_schedule, overwrites_group_lr
from lit_dl.optim.warmup import WarmupCosineLR, WarmupLR, WarmupStepLR

__all__ = [
    "EMBEDDING_TYPES",
    "LR_SCALING_RULES",
    "NORM_TYPES",
    "DecayRule",
    "LRScaling",
    "RunLengthOneCycleLR",
    "WarmupCosineLR",
    "WarmupLR",
    "WarmupStepLR",
    "check_all_grouped",
    "check_lr_scaling",
    "check_scaling_reaches_the_schedule",
    "decay_parameters",
    "default_decay_rule",
    "global_batch_size",
    "l1_penalty",
    "lr_scale_factor",
    "named_parameters_with_modules",
    "overwrites_group_lr",
    "parameter_groups",
    "scale_optimizer_lr",
]

# Renamed: the old short names are torch's, which made them ambiguous in any LightningCLI config.
_RENAMED = {"OneCycleLR": ("RunLengthOneCycleLR", "torch.optim.lr_scheduler.OneCycleLR")}

__getattr__ = renamed_attributes(__name__, _RENAMED)

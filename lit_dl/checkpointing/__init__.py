"""Everything about checkpoint files: safe loading, atomic and background writes, the exact-resume
state, ``init_from`` weights, and the rule that a checkpoint never rewrites the configuration."""

from lit_dl.checkpointing.atomic_checkpoint import AtomicCheckpoint
from lit_dl.checkpointing.background_io import BackgroundCheckpointIO
from lit_dl.checkpointing.exact_resume import ExactResume
from lit_dl.checkpointing.init_from import load_initial_weights
from lit_dl.checkpointing.loading import find_last_checkpoint, load_checkpoint, load_weights_file
from lit_dl.checkpointing.model_differences import checkpoint_model_differences, format_differences

__all__ = [
    "AtomicCheckpoint",
    "BackgroundCheckpointIO",
    "ExactResume",
    "checkpoint_model_differences",
    "find_last_checkpoint",
    "format_differences",
    "load_checkpoint",
    "load_initial_weights",
    "load_weights_file",
]

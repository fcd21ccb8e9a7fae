"""Everything about checkpoint files: safe and checked loading, atomic and background writes (as
checkpoint I/O plugins), the exact-resume state, ``init_from`` weights, and the rule that a checkpoint
never rewrites the configuration."""

from lit_dl.checkpointing.atomic_checkpoint import AtomicCheckpoint
from lit_dl.checkpointing.atomic_io import AtomicCheckpointIO, install_atomic_io
from lit_dl.checkpointing.background_io import BackgroundCheckpointIO
from lit_dl.checkpointing.exact_resume import ExactResume
from lit_dl.checkpointing.init_from import load_initial_weights
from lit_dl.checkpointing.integrity import verify_checksums
from lit_dl.checkpointing.loading import (
    find_hpc_checkpoint,
    find_last_checkpoint,
    load_checkpoint,
    load_weights_file,
)
from lit_dl.checkpointing.model_differences import checkpoint_model_differences, format_differences
from lit_dl.checkpointing.safe_loading import SafeLoading

__all__ = [
    "AtomicCheckpoint",
    "AtomicCheckpointIO",
    "BackgroundCheckpointIO",
    "ExactResume",
    "SafeLoading",
    "checkpoint_model_differences",
    "find_hpc_checkpoint",
    "find_last_checkpoint",
    "format_differences",
    "install_atomic_io",
    "load_checkpoint",
    "load_initial_weights",
    "load_weights_file",
    "verify_checksums",
]

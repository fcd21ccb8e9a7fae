"""Lightning callbacks: activation-aware weight init, torch.profiler profiling, training-health monitors,
ordered prediction files, the per-epoch summary file, exact resume, atomic checkpoints, the
non-finite guard and weight averaging (EMA, SWA) whose averaged weights are the model; ``batch_size``,
the function Lightning's ``ThroughputMonitor`` counts samples with."""

from lit_dl.callbacks.activation_stats import ActivationStatsMonitor
from lit_dl.callbacks.dead_relu import DeadReLUMonitor
from lit_dl.callbacks.epoch_summary import EpochSummary
from lit_dl.callbacks.gradient_flow import GradientFlowMonitor
from lit_dl.callbacks.non_finite import NonFiniteGuard
from lit_dl.callbacks.prediction_writer import PredictionWriter
from lit_dl.callbacks.profiler import TorchProfiler
from lit_dl.callbacks.throughput import batch_size
from lit_dl.callbacks.weight_averaging import ExponentialWeightAveraging, SWAWeightAveraging
from lit_dl.callbacks.weight_init import SCHEMES, InitRecord, Scheme, WeightInit
from lit_dl.checkpointing.atomic_checkpoint import AtomicCheckpoint
from lit_dl.checkpointing.exact_resume import ExactResume
from lit_dl.errors import renamed_attributes

__all__ = [
    "SCHEMES",
    "ActivationStatsMonitor",
    "AtomicCheckpoint",
    "DeadReLUMonitor",
    "EpochSummary",
    "ExactResume",
    "ExponentialWeightAveraging",
    "GradientFlowMonitor",
    "InitRecord",
    "NonFiniteGuard",
    "PredictionWriter",
    "SWAWeightAveraging",
    "Scheme",
    "TorchProfiler",
    "WeightInit",
    "batch_size",
]

# Renamed: the old short names are Lightning's, which made them ambiguous in any LightningCLI config.
_RENAMED = {
    "EMAWeightAveraging": ("ExponentialWeightAveraging", "lightning.pytorch.callbacks.EMAWeightAveraging")
}

__getattr__ = renamed_attributes(__name__, _RENAMED)

"""Lightning callbacks: activation-aware weight init, torch.profiler profiling, training-health monitors,
ordered prediction files, exact resume, atomic checkpoints, the non-finite guard and weight averaging
(EMA, SWA) whose averaged weights are the model."""

from lit_dl.callbacks.activation_stats import ActivationStatsMonitor
from lit_dl.callbacks.dead_relu import DeadReLUMonitor
from lit_dl.callbacks.gradient_flow import GradientFlowMonitor
from lit_dl.callbacks.non_finite import NonFiniteGuard
from lit_dl.callbacks.prediction_writer import PredictionWriter
from lit_dl.callbacks.profiler import TorchProfiler
from lit_dl.callbacks.weight_averaging import EMAWeightAveraging, SWAWeightAveraging
from lit_dl.callbacks.weight_init import SCHEMES, InitRecord, Scheme, WeightInit
from lit_dl.checkpointing.atomic_checkpoint import AtomicCheckpoint
from lit_dl.checkpointing.exact_resume import ExactResume

__all__ = [
    "SCHEMES",
    "ActivationStatsMonitor",
    "AtomicCheckpoint",
    "DeadReLUMonitor",
    "EMAWeightAveraging",
    "ExactResume",
    "GradientFlowMonitor",
    "InitRecord",
    "NonFiniteGuard",
    "PredictionWriter",
    "SWAWeightAveraging",
    "Scheme",
    "TorchProfiler",
    "WeightInit",
]

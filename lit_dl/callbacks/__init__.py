"""Lightning callbacks: activation-aware weight init, torch.profiler profiling, training-health monitors,
ordered prediction files."""

from lit_dl.callbacks.activation_stats import ActivationStatsMonitor
from lit_dl.callbacks.dead_relu import DeadReLUMonitor
from lit_dl.callbacks.gradient_flow import GradientFlowMonitor
from lit_dl.callbacks.prediction_writer import PredictionWriter
from lit_dl.callbacks.profiler import TorchProfiler
from lit_dl.callbacks.weight_init import SCHEMES, InitRecord, Scheme, WeightInit

__all__ = [
    "SCHEMES",
    "ActivationStatsMonitor",
    "DeadReLUMonitor",
    "GradientFlowMonitor",
    "InitRecord",
    "PredictionWriter",
    "Scheme",
    "TorchProfiler",
    "WeightInit",
]

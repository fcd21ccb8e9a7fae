"""LightningModules: the classification task base and the recipes built on it (and the metric it
uses for exact means under DDP)."""

from lit_dl.models.classification import ClassificationTask
from lit_dl.models.convnet import ConvNetClassifier
from lit_dl.models.image import ImageClassifier
from lit_dl.models.mlp import MLPClassifier
from lit_dl.models.order_invariant_mean import OrderInvariantMean
from lit_dl.models.resnet import ResNetClassifier
from lit_dl.models.sequence import SequenceClassifier
from lit_dl.models.transformer import TransformerClassifier

__all__ = [
    "ClassificationTask",
    "ConvNetClassifier",
    "ImageClassifier",
    "MLPClassifier",
    "OrderInvariantMean",
    "ResNetClassifier",
    "SequenceClassifier",
    "TransformerClassifier",
]

"""LightningModules: the classification task base and the recipes built on it."""

from lit_dl.models.classification import ClassificationTask
from lit_dl.models.image import ImageClassifier
from lit_dl.models.mlp import MLPClassifier
from lit_dl.models.sequence import SequenceClassifier
from lit_dl.models.transformer import TransformerClassifier

__all__ = [
    "ClassificationTask",
    "ImageClassifier",
    "MLPClassifier",
    "SequenceClassifier",
    "TransformerClassifier",
]

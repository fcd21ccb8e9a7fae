"""LightningModules: the classification task base and the recipes built on it."""

from lit_dl.models.classification import ClassificationTask
from lit_dl.models.image import ImageClassifier
from lit_dl.models.mlp import MLPClassifier

__all__ = ["ClassificationTask", "ImageClassifier", "MLPClassifier"]

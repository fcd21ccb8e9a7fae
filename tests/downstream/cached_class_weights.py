"""Plays a downstream project with a bug: a cache-miss branch that raises ``KeyError``.

``setup`` reads class weights from a cache file and, when the file is missing, looks them up in a
table that lacks the split: a ``KeyError`` raised while handling the ``FileNotFoundError``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from lit_dl.models import ClassificationTask

CACHE = "class_weights_cache.json"


class CachedClassWeights(ClassificationTask):
    """A linear classifier whose ``setup`` reads its class weights from ``class_weights_cache.json``.

    Args:
        in_features: Input width.
        **kwargs: ClassificationTask arguments.
    """

    def __init__(self, in_features: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.computed_weights: dict[str, list[float]] = {}  # the bug: never filled

    def build_backbone(self) -> nn.Module:
        return nn.Linear(self.hparams.in_features, self.num_classes)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        try:
            self.class_weights = json.loads(Path(CACHE).read_text())
        except FileNotFoundError:
            self.class_weights = self.computed_weights["train"]

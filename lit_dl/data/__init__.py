"""LightningDataModules (independent of lit_dl.models)."""

from lit_dl.data.digits import DigitsDataModule
from lit_dl.data.in_memory import InMemoryDataModule, TensorBatchDataset
from lit_dl.data.synthetic import SyntheticClassificationDataModule

__all__ = [
    "DigitsDataModule",
    "InMemoryDataModule",
    "SyntheticClassificationDataModule",
    "TensorBatchDataset",
]

"""LightningDataModules (independent of lit_dl.models)."""

from lit_dl.data.digits import DigitsDataModule
from lit_dl.data.eval_sampler import EvalShardSampler, eval_shard
from lit_dl.data.in_memory import InMemoryDataModule, TensorBatchDataset
from lit_dl.data.synthetic import SyntheticClassificationDataModule
from lit_dl.data.synthetic_sequence import SyntheticSequenceDataModule
from lit_dl.data.text import TextDataModule
from lit_dl.data.vision import VisionDataModule
from lit_dl.data.vocabulary import Vocabulary, tokenize

__all__ = [
    "DigitsDataModule",
    "EvalShardSampler",
    "InMemoryDataModule",
    "SyntheticClassificationDataModule",
    "SyntheticSequenceDataModule",
    "TensorBatchDataset",
    "TextDataModule",
    "VisionDataModule",
    "Vocabulary",
    "eval_shard",
    "tokenize",
]

"""Text classification from CSV/TSV files of (text, label) rows."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from lit_dl.data.in_memory import InMemoryDataModule, TensorBatchDataset
from lit_dl.data.vocabulary import TOKENIZERS, Tokenizer, Vocabulary, tokenize
from lit_dl.errors import ConfigError

__all__ = ["TextDataModule"]

# file suffix -> delimiter, when none is given
_DELIMITERS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}


class TextDataModule(InMemoryDataModule):
    """Train/val/test CSV or TSV files with a header row, one ``(text, label)`` example per row.

    The vocabulary and the label names come from the training file only: tokens seen fewer than
    ``min_freq`` times there become the unknown token (id 1) everywhere, padding is id 0; label
    names are sorted and numbered ``0 .. num_classes - 1``. Every text becomes ``max_length`` ids
    (truncated, right-padded). After ``setup``, ``vocab``, ``vocab_size``, ``label_names`` and
    ``num_classes`` describe the data; the model's ``vocab_size`` must be at least ``vocab_size``.

    Bad files raise :class:`~lit_dl.errors.ConfigError` naming the file and line: empty files, a
    missing column, rows with missing fields, empty texts or labels, labels in val/test that the
    training file does not have, bytes that do not decode.

    Args:
        train_path: Training file.
        val_path: Validation file.
        test_path: Test file.
        text_column: Header name of the text column.
        label_column: Header name of the label column.
        delimiter: Field separator; ``None`` picks it from the suffix (``.csv`` → ``,``,
            ``.tsv``/``.tab`` → tab).
        tokenizer: ``"whitespace"`` (words) or ``"character"``.
        lowercase: Lower-case the text before tokenizing.
        min_freq: Fewest occurrences in the training file for a token to get its own id.
        max_vocab_size: Most ids, padding and unknown included; ``None`` for no limit.
        max_length: Ids per text after truncation and padding.
        encoding: Text encoding of the files (``utf-8-sig`` reads UTF-8 and skips a byte-order mark).
        batch_size: Samples per training batch.
        eval_batch_size: Samples per evaluation batch; defaults to ``batch_size``.
        drop_last: Drop the last incomplete training batch.
    """

    padding_idx = Vocabulary.pad_id

    def __init__(
        self,
        train_path: str,
        val_path: str,
        test_path: str,
        text_column: str = "text",
        label_column: str = "label",
        delimiter: str | None = None,
        tokenizer: Tokenizer = "whitespace",
        lowercase: bool = True,
        min_freq: int = 1,
        max_vocab_size: int | None = None,
        max_length: int = 64,
        encoding: str = "utf-8-sig",
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        drop_last: bool = True,
    ) -> None:
        super().__init__(batch_size, eval_batch_size, drop_last)
        if tokenizer not in TOKENIZERS:
            raise ConfigError(f"tokenizer must be one of {', '.join(TOKENIZERS)}, got {tokenizer!r}")
        if max_length < 1:
            raise ConfigError(f"max_length must be >= 1, got {max_length!r}")
        if min_freq < 1:
            raise ConfigError(f"min_freq must be >= 1, got {min_freq!r}")
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ConfigError(
                f"encoding={encoding!r} is not a text encoding Python knows; give one such as 'utf-8', "
                "'utf-8-sig' (the default: UTF-8, a byte-order mark skipped), 'latin-1' or 'cp1252'"
            ) from None
        if delimiter is not None and len(delimiter) != 1:
            raise ConfigError(f"delimiter must be a single character, got {delimiter!r}")
        self.paths = {"train": Path(train_path), "val": Path(val_path), "test": Path(test_path)}
        if delimiter is None:
            for path in self.paths.values():
                if path.suffix.lower() not in _DELIMITERS:
                    raise ConfigError(
                        f"cannot tell the delimiter of {str(path)!r} from its suffix (known: "
                        f"{', '.join(_DELIMITERS)}); set delimiter"
                    )
        self.columns = (text_column, label_column)
        self.delimiter = delimiter
        self.tokenizer = tokenizer
        self.lowercase = lowercase
        self.min_freq = min_freq
        self.max_vocab_size = max_vocab_size
        self.max_length = max_length
        self.encoding = encoding
        self.vocab: Vocabulary | None = None
        self.vocab_size: int | None = None
        self.label_names: list[str] = []

    def read_rows(self, path: Path) -> list[tuple[int, str, str]]:
        """``(line number, text, label)`` of every data row of ``path``, checked."""
        if not path.is_file():
            raise ConfigError(f"{path}: no such file")
        data = path.read_bytes()
        if not data.strip():
            raise ConfigError(
                f"{path}: the file is empty (expected a header row with {', '.join(self.columns)})"
            )
        try:
            content = data.decode(self.encoding)
        except UnicodeDecodeError as err:
            line = data[: err.start].count(b"\n") + 1
            raise ConfigError(
                f"{path}, line {line}: cannot decode byte(s) {data[err.start : err.end]!r} as "
                f"{self.encoding} ({err.reason}); save the file as {self.encoding} or set encoding"
            ) from None
        delimiter = self.delimiter or _DELIMITERS[path.suffix.lower()]
        reader = csv.DictReader(io.StringIO(content, newline=""), delimiter=delimiter)
        header = reader.fieldnames or []
        missing = [c for c in self.columns if c not in header]
        if missing:
            raise ConfigError(
                f"{path}, line 1: missing column(s) {', '.join(map(repr, missing))}; the header has "
                f"{', '.join(map(repr, header))} (delimiter {delimiter!r})"
            )
        rows = []
        text_col, label_col = self.columns
        for line, row in self._rows(reader, path):
            text, label = row[text_col], row[label_col]
            if text is None or label is None:
                raise ConfigError(
                    f"{path}, line {line}: the row has fewer fields than the header ({len(header)})"
                )
            if not label.strip():
                raise ConfigError(f"{path}, line {line}: the label is empty")
            if not tokenize(text, self.tokenizer):
                raise ConfigError(f"{path}, line {line}: the text is empty")
            rows.append((line, text, label.strip()))
        if not rows:
            raise ConfigError(f"{path}: the file has a header but no data rows")
        return rows

    @staticmethod
    def _rows(reader: csv.DictReader, path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(line number, row)`` of each row; the csv module's errors (a field longer than its limit,
        a NUL byte) as one line naming the file and line."""
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                limit = csv.field_size_limit()
                reason = (
                    f"a field is longer than {limit} characters (the csv module's limit); shorten the text "
                    "(only the first max_length tokens are used)"
                    if "field larger than field limit" in str(err)
                    else f"{err} (not a valid CSV row)"
                )
                # line_num counts the lines parsed whole: the failing one is the next
                raise ConfigError(f"{path}, line {reader.line_num + 1}: {reason}") from None
            yield reader.line_num, row

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        rows = {split: self.read_rows(path) for split, path in self.paths.items()}
        tokens = {
            split: [tokenize(t, self.tokenizer, self.lowercase) for _, t, _ in r] for split, r in rows.items()
        }
        vocab = Vocabulary(tokens["train"], self.min_freq, self.max_vocab_size)
        self.label_names = sorted({label for _, _, label in rows["train"]})
        if len(self.label_names) < 2:
            raise ConfigError(
                f"{self.paths['train']}: the training file has {len(self.label_names)} distinct label(s) "
                f"({', '.join(self.label_names)}); classification needs at least 2"
            )
        label_ids = {name: i for i, name in enumerate(self.label_names)}
        sets = []
        for split in ("train", "val", "test"):
            for line, _, label in rows[split]:
                if label not in label_ids:
                    raise ConfigError(
                        f"{self.paths[split]}, line {line}: label {label!r} does not occur in the training "
                        f"file {self.paths['train']}; its labels are: {', '.join(self.label_names)}"
                    )
            ids = torch.tensor([vocab.encode(t, self.max_length) for t in tokens[split]], dtype=torch.long)
            labels = torch.tensor([label_ids[label] for _, _, label in rows[split]], dtype=torch.long)
            sets.append(TensorBatchDataset(ids, labels))
        self.train_set, self.val_set, self.test_set = sets
        self.vocab = vocab
        self.vocab_size = len(vocab)
        self.num_classes = len(self.label_names)

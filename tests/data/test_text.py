import pytest
import torch

from lit_dl.cli import main
from lit_dl.data import TextDataModule
from lit_dl.data.vocabulary import Vocabulary, tokenize
from lit_dl.errors import ConfigError

TRAIN = "text,label\nthe cat sat,animal\nthe dog ran,animal\nred car,vehicle\nthe red bus,vehicle\n"
VAL = "text,label\nthe cat ran,animal\na blue car,vehicle\n"


def _write(tmp_path, name, content, mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return str(path)


def _module(tmp_path, train=TRAIN, val=VAL, test=VAL, suffix=".csv", **kwargs):
    return TextDataModule(
        _write(tmp_path, "train" + suffix, train),
        _write(tmp_path, "val" + suffix, val),
        _write(tmp_path, "test" + suffix, test),
        **kwargs,
    )


def test_vocabulary_labels_and_ids(tmp_path):
    dm = _module(tmp_path, max_length=4, batch_size=2)
    dm.setup()
    # "the" (3x) first, then "red" (2x), then the rest alphabetically.
    assert dm.vocab.tokens == ["<pad>", "<unk>", "the", "red", "bus", "car", "cat", "dog", "ran", "sat"]
    assert dm.vocab_size == 10 and dm.label_names == ["animal", "vehicle"] and dm.num_classes == 2
    ids, labels = dm.val_set.tensors
    # "the cat ran" -> the cat ran <pad>; "a blue car": a, blue unknown.
    assert ids.tolist() == [[2, 6, 8, 0], [1, 1, 5, 0]]
    assert labels.tolist() == [0, 1]
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (2, 4) and x.dtype == torch.long and y.shape == (2,)


def test_tsv_character_tokens_min_freq_and_truncation(tmp_path):
    train = "label\ttext\nx\tabca\ny\tbb\n"
    dm = _module(
        tmp_path,
        train=train,
        val=train,
        test="label\ttext\nx\tzzzzzz\n",
        suffix=".tsv",
        tokenizer="character",
        min_freq=2,
        max_length=3,
    )
    dm.setup()
    assert dm.vocab.tokens == ["<pad>", "<unk>", "b", "a"]  # b 3x, a 2x, c once -> unknown
    assert dm.train_set.tensors[0].tolist() == [[3, 2, 1], [2, 2, 0]]
    assert dm.test_set.tensors[0].tolist() == [[1, 1, 1]]


def test_tokenizers_and_vocabulary_size_limit():
    assert tokenize("A  b\tc", "whitespace", lowercase=True) == ["a", "b", "c"]
    assert tokenize("Ab c", "character") == ["A", "b", " ", "c"]
    vocab = Vocabulary([["a", "b", "b", "c", "c", "c"]], max_size=4)
    assert vocab.tokens == ["<pad>", "<unk>", "c", "b"]
    assert vocab.encode(["a", "c"], 3) == [1, 2, 0]


def test_empty_file_is_named(tmp_path):
    dm = _module(tmp_path, val="")
    with pytest.raises(
        ConfigError, match=r"val\.csv: the file is empty \(expected a header row with text, label\)"
    ):
        dm.setup()


def test_header_without_rows_is_named(tmp_path):
    dm = _module(tmp_path, test="text,label\n")
    with pytest.raises(ConfigError, match=r"test\.csv: the file has a header but no data rows"):
        dm.setup()


def test_missing_column_names_file_line_and_header(tmp_path):
    dm = _module(tmp_path, train="sentence,label\nhello,a\n")
    with pytest.raises(
        ConfigError,
        match=r"train\.csv, line 1: missing column\(s\) 'text'; the header has 'sentence', 'label'",
    ):
        dm.setup()


def test_row_with_missing_field_names_the_line(tmp_path):
    dm = _module(tmp_path, val="text,label\nthe cat,animal\nthe dog\n")
    with pytest.raises(
        ConfigError, match=r"val\.csv, line 3: the row has fewer fields than the header \(2\)"
    ):
        dm.setup()


def test_empty_text_and_empty_label_name_the_line(tmp_path):
    with pytest.raises(ConfigError, match=r"train\.csv, line 2: the text is empty"):
        _module(tmp_path, train="text,label\n  ,animal\n").setup()
    with pytest.raises(ConfigError, match=r"train\.csv, line 3: the label is empty"):
        _module(tmp_path, train="text,label\nok,animal\nno label,\n").setup()


@pytest.mark.parametrize("split", ["val", "test"])
def test_label_unseen_in_training_names_file_and_line(tmp_path, split):
    bad = "text,label\nthe cat,animal\nan apple,fruit\n"
    dm = _module(tmp_path, **{split: bad})
    with pytest.raises(
        ConfigError,
        match=rf"{split}\.csv, line 3: label 'fruit' does not occur in the training file .*train\.csv; "
        r"its labels are: animal, vehicle",
    ):
        dm.setup()


def test_undecodable_bytes_name_file_and_line(tmp_path):
    dm = _module(tmp_path)
    _write(tmp_path, "test.csv", b"text,label\nthe cat,animal\ncaf\xe9 noir,vehicle\n", mode="wb")
    with pytest.raises(
        ConfigError, match=r"test\.csv, line 3: cannot decode byte\(s\) b'\\xe9' as utf-8-sig"
    ):
        dm.setup()


def test_multiline_quoted_field_keeps_line_numbers_true(tmp_path):
    val = 'text,label\n"two\nlines",animal\nx,fruit\n'
    with pytest.raises(ConfigError, match=r"val\.csv, line 4: label 'fruit'"):
        _module(tmp_path, val=val).setup()


def test_single_label_training_file_is_rejected(tmp_path):
    one = "text,label\nthe cat,animal\n"
    with pytest.raises(
        ConfigError, match=r"train\.csv: the training file has 1 distinct label\(s\) \(animal\)"
    ):
        _module(tmp_path, train=one, val=one, test=one).setup()


def test_missing_file_is_named(tmp_path):
    dm = TextDataModule(str(tmp_path / "nope.csv"), str(tmp_path / "v.csv"), str(tmp_path / "t.csv"))
    with pytest.raises(ConfigError, match=r"nope\.csv: no such file"):
        dm.setup()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tokenizer": "bpe"}, r"tokenizer must be one of whitespace, character, got 'bpe'"),
        ({"max_length": 0}, r"max_length must be >= 1, got 0"),
        ({"min_freq": 0}, r"min_freq must be >= 1, got 0"),
        ({"delimiter": ";;"}, r"delimiter must be a single character, got ';;'"),
        (
            {"train_path": "data.txt"},
            r"cannot tell the delimiter of 'data.txt' from its suffix \(known: .csv, .tsv, .tab\); "
            r"set delimiter",
        ),
    ],
)
def test_text_module_rejects_bad_options(kwargs, match):
    args = {"train_path": "a.csv", "val_path": "b.csv", "test_path": "c.csv", **kwargs}
    with pytest.raises(ConfigError, match=match):
        TextDataModule(**args)


def test_vocabulary_rejects_bad_sizes():
    with pytest.raises(ConfigError, match=r"min_freq must be >= 1, got 0"):
        Vocabulary([["a"]], min_freq=0)
    with pytest.raises(
        ConfigError, match=r"max_vocab_size must be >= 3 \(padding, unknown, one token\), got 2"
    ):
        Vocabulary([["a"]], max_size=2)


@pytest.mark.filterwarnings(r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning")
def test_sequence_recipe_fits_on_text_files_from_the_cli(tmp_path):
    rows = "".join(f"the cat {i},animal\nred car {i},vehicle\n" for i in range(8))
    paths = [_write(tmp_path, f"{s}.csv", "text,label\n" + rows) for s in ("train", "val", "test")]
    args = [
        "fit",
        "--config",
        "configs/seq_embedding.yaml",
        "--trainer.default_root_dir",
        str(tmp_path / "runs"),
    ]
    args += [
        "--data",
        "lit_dl.data.TextDataModule",
        "--data.train_path",
        paths[0],
        "--data.val_path",
        paths[1],
    ]
    args += ["--data.test_path", paths[2], "--data.max_length", "5", "--data.batch_size", "4"]
    args += ["--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false"]
    main(args)
    ckpts = list((tmp_path / "runs").rglob("epoch=*.ckpt"))  # the best (last.ckpt beside it)
    assert [c.name for c in ckpts] == ["epoch=0-step=4.ckpt"]


def test_text_vocabulary_larger_than_the_model_stops_the_cli(tmp_path, capsys):
    rows = "".join(f"w{i} w{i + 1},{'a' if i % 2 else 'b'}\n" for i in range(30))
    paths = [_write(tmp_path, f"{s}.csv", "text,label\n" + rows) for s in ("train", "val", "test")]
    args = [
        "fit",
        "--config",
        "configs/seq_embedding.yaml",
        "--trainer.default_root_dir",
        str(tmp_path / "runs"),
    ]
    args += [
        "--data",
        "lit_dl.data.TextDataModule",
        "--data.train_path",
        paths[0],
        "--data.val_path",
        paths[1],
    ]
    args += ["--data.test_path", paths[2]]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert (
        "model vocab_size=16 is smaller than the 33 token ids of the data (TextDataModule)"
        in capsys.readouterr().err
    )

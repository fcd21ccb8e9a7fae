import gzip
import pickle
import sys

import numpy as np
import pytest
import torch

from lit_dl.cli import main
from lit_dl.data import VisionDataModule
from lit_dl.data.image_files import read_idx
from lit_dl.errors import ConfigError

# Lightning 2.6 + torch 2.13 warn from inside Lightning on every batch (not our code); the project's
# pytest config turns FutureWarning into errors, so this one is ignored by its message.
LEAFSPEC = r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
pytestmark = pytest.mark.filterwarnings(LEAFSPEC)


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(root, folder="MNIST/raw", n_train=40, n_test=20, gz=True):
    raw = root / folder
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 256, (n, 28, 28))
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            name = raw / f"{prefix}-{kind}-ubyte"
            if gz:
                with gzip.open(str(name) + ".gz", "wb") as f:
                    f.write(_idx(array))
            else:
                name.write_bytes(_idx(array))
    return images, labels


def write_cifar(root, per_batch=8, n_test=10):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = n_test if name == "test_batch" else per_batch
        batch = {"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8), "labels": list(np.arange(n) % 10)}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    return batch


@pytest.mark.parametrize(
    ("dataset", "folder"), [("mnist", "MNIST/raw"), ("fashion_mnist", "FashionMNIST/raw")]
)
@pytest.mark.parametrize("gz", [True, False], ids=["gz", "plain"])
def test_mnist_layout_reads_into_normalised_splits(tmp_path, dataset, folder, gz):
    test_images, test_labels = write_mnist(tmp_path, folder, gz=gz)
    dm = VisionDataModule(dataset, str(tmp_path), augment=False, val_size=10, batch_size=8)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (30, 10, 20)
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (8, 1, 28, 28) and x.dtype == torch.float32
    mean, std = dm.spec.mean[0], dm.spec.std[0]
    expected = (torch.from_numpy(test_images[:8]).float() / 255 - mean) / std
    torch.testing.assert_close(x[:, 0], expected)
    assert y.tolist() == test_labels[:8].tolist()
    assert sorted(dm.train_set.labels.tolist() + dm.val_set.labels.tolist()) == sorted(list(range(10)) * 4)


def test_cifar_batches_read_channel_first(tmp_path):
    test_batch = write_cifar(tmp_path)
    dm = VisionDataModule("cifar10", str(tmp_path), augment=False, val_size=5, batch_size=4)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (35, 5, 10)
    assert dm.test_set.images.shape == (10, 3, 32, 32)
    # CIFAR rows are 1024 red, then 1024 green, then 1024 blue values, row-major.
    assert torch.equal(dm.test_set.images[3, 1].flatten(), torch.from_numpy(test_batch["data"][3, 1024:2048]))


def test_missing_files_say_where_to_put_them(tmp_path):
    dm = VisionDataModule("mnist", str(tmp_path), augment=False)
    with pytest.raises(
        ConfigError,
        match=r"mnist files not found under .*: missing MNIST/raw/train-images-idx3-ubyte, .*"
        r"MNIST/raw/t10k-labels-idx1-ubyte\. Put the dataset's files there in this layout .* or set "
        r"download: true \(needs internet and torchvision: pip install lit-dl\[vision\]\)",
    ):
        dm.setup()


def test_corrupt_idx_file_is_named(tmp_path):
    bad = tmp_path / "x-ubyte"
    bad.write_bytes(bytes([0, 0, 0x08, 1]) + (5).to_bytes(4, "big") + b"abc")
    with pytest.raises(ConfigError, match=r"x-ubyte: header announces shape \(5,\) \(5 bytes\) but holds 3"):
        read_idx(bad)
    bad.write_bytes(b"PK\x03\x04")
    with pytest.raises(
        ConfigError, match=r"x-ubyte: not an IDX file of unsigned bytes \(magic number '504b0304'\)"
    ):
        read_idx(bad)


def test_corrupt_cifar_batch_is_named(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    dm = VisionDataModule("cifar10", str(tmp_path), augment=False, val_size=5)
    with pytest.raises(ConfigError, match=r"data_batch_3: not a CIFAR-10 python batch"):
        dm.setup()


def test_without_torchvision_download_says_what_to_install_and_augmentation_works(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # makes `import torchvision` fail
    with pytest.raises(
        ConfigError,
        match=r"VisionDataModule\(download=True\) needs torchvision.*install it with: pip install lit-dl\[vision\]",
    ):
        VisionDataModule("cifar10", augment=False, download=True)
    assert VisionDataModule("cifar10", augment=True).augment  # augmentation is lit_dl's own tensor code


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dataset": "svhn"}, r"dataset must be one of mnist, fashion_mnist, cifar10, got 'svhn'"),
        ({"val_size": 0}, r"val_size must be >= 1, got 0"),
        ({"batch_size": 0}, r"batch_size must be >= 1, got 0"),
        ({"num_workers": -1}, r"num_workers must be >= 0, got -1"),
    ],
)
def test_vision_module_rejects_bad_options(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        VisionDataModule(**{"augment": False, **kwargs})


def test_val_size_must_leave_training_images(tmp_path):
    write_mnist(tmp_path)
    with pytest.raises(ConfigError, match=r"val_size=40 must be smaller than the 40 training images"):
        VisionDataModule("mnist", str(tmp_path), augment=False, val_size=40).setup()


def test_image_classifier_fits_on_mnist_files_from_the_cli(tmp_path):
    write_mnist(tmp_path / "data")
    args = [
        "fit",
        "--config",
        "configs/digits_cnn.yaml",
        "--trainer.default_root_dir",
        str(tmp_path / "runs"),
    ]
    args += ["--data", "lit_dl.data.VisionDataModule", "--data.dataset", "mnist"]
    args += ["--data.root", str(tmp_path / "data"), "--data.val_size", "8", "--data.batch_size", "8"]
    args += ["--data.augment", "false", "--model.init_args.channels", "[4, 8]", "--trainer.max_epochs", "1"]
    args += ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    main(args)
    ckpts = list((tmp_path / "runs").rglob("epoch=*.ckpt"))  # the best (last.ckpt beside it)
    assert len(ckpts) == 1 and "epoch=0-step=4" in ckpts[0].name


def test_cifar_augmentation_on_the_cpu_loader(tmp_path):
    write_cifar(tmp_path)
    dm = VisionDataModule("cifar10", str(tmp_path), augment=True, val_size=5, batch_size=4)
    dm.setup()
    views = []
    for epoch in range(20):  # a sample's crop and flip are a function of (seed, epoch, sample)
        dm.train_set.set_epoch(0, epoch)
        views.append(dm.train_set[0][0])
    views = torch.stack(views)
    plain = (dm.train_set.images[0].float() / 255 - dm.train_set.mean) / dm.train_set.std
    assert views.shape == (20, 3, 32, 32)
    assert sum(not torch.allclose(v, plain) for v in views) >= 15  # 1 in 162 draws is the identity
    torch.testing.assert_close(
        dm.val_set[0][0], (dm.val_set.images[0].float() / 255 - dm.val_set.mean) / dm.val_set.std
    )
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 32, 32) and y.shape == (4,)


def test_cifar_resnet_config_runs(tmp_path):
    write_cifar(tmp_path / "data")
    args = [
        "fit",
        "--config",
        "configs/cifar10_resnet18.yaml",
        "--trainer.default_root_dir",
        str(tmp_path / "r"),
    ]
    args += ["--data.root", str(tmp_path / "data"), "--data.val_size", "8", "--data.batch_size", "8"]
    args += ["--data.num_workers", "0", "--model.init_args.width", "4", "--trainer.fast_dev_run", "2"]
    main(args)

"""Batched augmentation and the device-resident batch path (run on the CPU device here)."""

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from lit_dl.data import DigitsDataModule, VisionDataModule
from lit_dl.data.batch_augment import ImageAugment, ImageBatchTransform, crop_flip
from lit_dl.data.device_batches import DeviceBatches, resident_device
from lit_dl.data.sampling import epoch_permutation, rank_shard
from lit_dl.errors import ConfigError
from tests.data.test_vision import write_cifar


def _reference_crop_flip(image, top, left, flip, pad):
    """torchvision's RandomCrop(padding=pad) then RandomHorizontalFlip, for fixed draws, by hand."""
    h, w = image.shape[-2:]
    crop = F.pad(image, (pad, pad, pad, pad))[:, top : top + h, left : left + w]
    return torch.flip(crop, dims=[-1]) if flip else crop


def test_crop_flip_matches_pad_crop_flip_per_image():
    images = torch.arange(3 * 2 * 5 * 6, dtype=torch.int64).remainder(256).to(torch.uint8).view(3, 2, 5, 6)
    top, left = torch.tensor([0, 4, 8]), torch.tensor([8, 1, 0])
    flip = torch.tensor([False, True, True])
    out = crop_flip(images, top, left, flip, pad=4)
    assert out.dtype == torch.uint8 and out.shape == images.shape
    for i in range(3):
        expected = _reference_crop_flip(images[i], int(top[i]), int(left[i]), bool(flip[i]), 4)
        assert torch.equal(out[i], expected)
    # offsets (pad, pad) without a flip give back the image itself
    same = crop_flip(images, torch.full((3,), 4), torch.full((3,), 4), torch.zeros(3, dtype=torch.bool), 4)
    assert torch.equal(same, images)


def test_transform_normalises_like_the_formula():
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    mean, std = torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0.5, 0.6, 0.7])
    out = ImageBatchTransform(mean, std)(images)
    expected = (images.float() / 255 - mean.view(-1, 1, 1)) / std.view(-1, 1, 1)
    torch.testing.assert_close(out, expected)
    assert out.dtype == torch.float32


def test_digit_augmentation_never_flips():
    top, left, flip = ImageAugment(pad=4, flip=False).draw(1000, torch.Generator().manual_seed(0))
    assert not flip.any() and int(top.min()) == 0 and int(top.max()) == 8 and int(left.max()) == 8


def _batches(epoch, rank=0, world=1, train=True, n=50, batch=8):
    images = torch.randint(
        0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    labels = torch.arange(n)  # label = sample index, to see which samples a batch holds
    transform = ImageBatchTransform(torch.zeros(3), torch.ones(3), ImageAugment(pad=2, flip=True))
    loader = DeviceBatches((images, labels), batch, train, True, 7, rank, world, transform)
    loader.sampler.set_epoch(epoch)
    return loader, list(loader)


def test_same_seed_and_epoch_give_identical_batches_another_epoch_others():
    _, first = _batches(epoch=3)
    _, again = _batches(epoch=3)
    _, other = _batches(epoch=4)
    assert len(first) == 6  # 50 samples, batch 8, last incomplete batch dropped
    assert all(
        torch.equal(a, b) for x, y in zip(first, again, strict=True) for a, b in zip(x, y, strict=True)
    )
    assert not torch.equal(first[0][1], other[0][1])  # another order
    labels = torch.cat([y for _, y in first])
    assert torch.equal(labels, epoch_permutation(50, 7, 3)[:48])  # the order the CPU sampler uses


def test_each_sample_is_augmented_the_same_on_any_rank():
    _, single = _batches(epoch=1)
    _, shard = _batches(epoch=1, rank=1, world=2)
    by_sample = {int(y): x for xs, ys in single for x, y in zip(xs, ys, strict=True)}
    for xs, ys in shard:
        for x, y in zip(xs, ys, strict=True):
            if int(y) in by_sample:
                assert torch.equal(x, by_sample[int(y)])


@pytest.mark.parametrize("epoch", [0, 5])
def test_ddp_shards_are_disjoint_and_cover_the_split(epoch):
    world = 3
    shards = [_batches(epoch, rank, world, n=48)[0].indices() for rank in range(world)]
    assert [len(s) for s in shards] == [16, 16, 16]
    assert sorted(torch.cat(shards).tolist()) == list(range(48))  # disjoint and covering
    assert torch.equal(shards[1], rank_shard(epoch_permutation(48, 7, epoch), 1, world))
    following = _batches(epoch + 1, 0, world, n=48)[0].indices()
    assert not torch.equal(following, shards[0])  # reshuffled every epoch
    # 50 samples on 3 ranks: 17 each, DistributedSampler's padding repeats the first 1 of the order
    padded = [_batches(epoch, rank, world, n=50)[0].indices() for rank in range(world)]
    assert set(torch.cat(padded).tolist()) == set(range(50)) and sum(map(len, padded)) == 51


def test_eval_batches_are_in_order_and_not_repeated():
    world = 3
    seen = [
        torch.cat([y for _, y in _batches(0, rank, world, train=False, n=10, batch=2)[1]])
        for rank in range(world)
    ]
    assert [s.tolist() for s in seen] == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    loader, batches = _batches(0, train=False, n=10, batch=4)
    x = torch.cat([x for x, _ in batches])
    assert len(loader) == 3 and torch.equal(
        x, loader.transform.normalise(loader.tensors[0])
    )  # no augmentation


def test_state_dict_resumes_the_epoch_after_the_consumed_batches():
    loader, batches = _batches(epoch=2)
    resumed, _ = _batches(epoch=0)
    resumed.load_state_dict({"epoch": 2, "position": 4})
    resumed.set_epoch(2)
    rest = list(resumed)
    assert (
        len(rest) == 2 and torch.equal(rest[0][1], batches[4][1]) and torch.equal(rest[1][0], batches[5][0])
    )
    assert len(list(resumed)) == 6  # only the first pass after loading skips
    assert loader.state_dict() == {"epoch": 2, "position": 6}


def test_device_resident_true_that_does_not_fit_names_the_value(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2**30, 2**34))
    cuda = torch.device("cuda", 0)
    with pytest.raises(
        ConfigError,
        match=r"^device_resident=True but the data splits need 2.00 GiB and cuda:0 has 1.00 GiB free",
    ):
        resident_device(True, cuda, 2 * 2**30)
    assert resident_device("auto", cuda, 2 * 2**30) is None  # auto falls back to the CPU loader
    assert resident_device("auto", cuda, 2**20) == cuda
    assert resident_device("auto", torch.device("cpu"), 1) is None  # auto: CUDA only
    assert resident_device(False, cuda, 1) is None


def test_bad_device_resident_value_is_rejected():
    with pytest.raises(ConfigError, match=r"device_resident must be auto, true or false, got 'yes'"):
        DigitsDataModule(device_resident="yes")


def test_vision_module_serves_device_batches_under_a_trainer(tmp_path):
    write_cifar(tmp_path)
    dm = VisionDataModule("cifar10", str(tmp_path), val_size=5, batch_size=4, device_resident=True)
    dm.trainer = L.Trainer(accelerator="cpu", logger=False)
    dm.setup()
    loader = dm.train_dataloader()
    assert isinstance(loader, DeviceBatches) and len(loader) == 8  # 35 images, batch 4
    x, y = next(iter(loader))
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32 and y.shape == (4,)
    plain = VisionDataModule("cifar10", str(tmp_path), val_size=5, batch_size=4, device_resident=False)
    plain.trainer = dm.trainer
    plain.setup()
    assert isinstance(plain.val_dataloader(), torch.utils.data.DataLoader)
    xv, _ = next(iter(dm.val_dataloader()))
    torch.testing.assert_close(xv, next(iter(plain.val_dataloader()))[0])  # same values on both paths


def _epochs_of_batches(root, device_resident, num_workers, epochs=(0, 1, 2)):
    """The training batches of ``epochs`` of a fake CIFAR split, with the global RNG reseeded
    differently before each (as dropout or a callback drawing random numbers would move it)."""
    dm = VisionDataModule(
        "cifar10",
        str(root),
        val_size=5,
        batch_size=4,
        device_resident=device_resident,
        num_workers=num_workers,
    )
    dm.trainer = L.Trainer(accelerator="cpu", logger=False)
    dm.setup()
    loader = dm.train_dataloader()
    assert isinstance(loader, DeviceBatches) == device_resident
    out = []
    for epoch in epochs:  # one loader for all epochs: persistent workers live across them
        loader.sampler.set_epoch(epoch)
        torch.manual_seed(1000 * num_workers + 10 * device_resident + epoch)
        out.append(list(loader))
    return out


def test_loader_and_device_paths_augment_every_epoch_identically_with_any_workers(tmp_path):
    write_cifar(tmp_path)
    device = _epochs_of_batches(tmp_path, True, 0)
    for device_resident, num_workers in ((False, 0), (False, 2)):  # 2: persistent workers
        loader = _epochs_of_batches(tmp_path, device_resident, num_workers)
        for epoch, (a, b) in enumerate(zip(device, loader, strict=True)):
            assert len(a) == len(b) == 8
            for (xa, ya), (xb, yb) in zip(a, b, strict=True):
                assert torch.equal(ya, yb), (num_workers, epoch)
                assert torch.equal(xa, xb), (num_workers, epoch)
    # (the device path draws each epoch's crops afresh: equality in epochs 1 and 2 means the loader's
    # workers were told the epoch, not left at the one they started in)


def test_augmenting_transform_never_draws_from_the_global_rng():
    transform = ImageBatchTransform(torch.zeros(3), torch.ones(3), ImageAugment(pad=2))
    with pytest.raises(ValueError, match=r"needs the batch's params .* never draws from the global RNG"):
        transform(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))

"""EMA and SWA: the averaged weights are the model on every path (validation during fit, the best
checkpoint, fit's own test, `lit-dl test`, export, load_from_checkpoint)."""

from __future__ import annotations

import threading

import lightning as L
import pytest
import torch
import yaml

from lit_dl.callbacks import ExponentialWeightAveraging, SWAWeightAveraging
from lit_dl.cli import main
from lit_dl.cli.export import InferenceModel, default_output
from lit_dl.data import DigitsDataModule
from lit_dl.models import MLPClassifier
from tests.cli.test_export import raw_test_digits
from tests.conftest import CONFIGS, read_scalars

RECIPE = CONFIGS / "digits_mlp.yaml"
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def test_ema_fit_test_lit_dl_test_and_export_see_the_same_averaged_weights(tmp_path) -> None:
    fit = ["fit", "--config", str(RECIPE), "--config", str(CONFIGS / "callbacks" / "ema.yaml")]
    main([*fit, "--trainer.max_epochs", "4", "--trainer.default_root_dir", str(tmp_path), *QUIET])
    run = tmp_path / "lightning_logs" / "version_0"
    ((_, fit_acc),) = read_scalars(run)["test/acc"]
    (best,) = (run / "checkpoints").glob("epoch=*.ckpt")
    checkpoint = torch.load(best, weights_only=True)
    averaged, trained = checkpoint["state_dict"], checkpoint["current_model_state"]
    assert not torch.equal(averaged["backbone.head.weight"], trained["backbone.head.weight"])

    main(["test", "--config", str(run / "config.yaml"), "--ckpt_path", str(best)])
    ((_, test_acc),) = read_scalars(tmp_path / "lightning_logs" / "version_1")["test/acc"]
    assert test_acc == fit_acc

    # the averaged weights, by hand: load_from_checkpoint and the exported file agree with both
    data = DigitsDataModule(batch_size=512)
    data.setup("test")
    x, labels = data.test_set.tensors
    task = MLPClassifier.load_from_checkpoint(best).eval()
    for name, tensor in averaged.items():
        assert torch.equal(task.state_dict()[name], tensor), name
    with torch.no_grad():
        correct = int((task(x).argmax(1) == labels).sum())
    assert round(fit_acc * len(labels)) == correct

    main(["export", "--config", str(run / "config.yaml"), "--ckpt_path", str(best), "--format", "state_dict"])
    served = InferenceModel(task.backbone, mean=torch.zeros(64), std=torch.ones(64))
    served.load_state_dict(torch.load(default_output(best, "state_dict"), weights_only=True))
    with torch.no_grad():
        assert int((served.eval()(raw_test_digits()).argmax(1) == labels).sum()) == correct


def test_swa_averages_the_epoch_end_weights_from_its_start_and_is_the_model_before_it(
    tmp_path, tiny_config
) -> None:
    config = yaml.safe_load(tiny_config.read_text())
    config["trainer"].update(max_epochs=3, default_root_dir=str(tmp_path))
    config["trainer"]["callbacks"] = [
        {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
         "init_args": {"save_top_k": -1, "every_n_epochs": 1, "filename": "{epoch}"}},
        {"class_path": "lit_dl.callbacks.SWAWeightAveraging", "init_args": {"swa_epoch_start": 1}},
    ]  # fmt: skip
    config["test_after_fit"] = False
    tiny_config.write_text(yaml.safe_dump(config))
    main(["fit", "--config", str(tiny_config)])
    folder = tmp_path / "lightning_logs" / "version_0" / "checkpoints"
    states = [torch.load(folder / f"epoch={e}.ckpt", weights_only=True) for e in range(3)]
    assert [int(s["averaging_state"]["n_averaged"]) for s in states] == [0, 1, 2]
    trained = [s["current_model_state"] for s in states]
    for name in trained[0]:
        # before the start nothing is averaged: the trained weights are the model, not the setup copy
        assert torch.equal(states[0]["state_dict"][name], trained[0][name]), name
        assert torch.equal(states[1]["state_dict"][name], trained[1][name]), name
        # torch.optim.swa_utils' running mean (its CPU formula) of epochs 1 and 2's end weights
        mean = trained[1][name] + (trained[2][name] - trained[1][name]) / torch.tensor(2)
        assert torch.equal(states[2]["state_dict"][name], mean), name
    assert not torch.equal(
        states[2]["state_dict"]["backbone.head.weight"], trained[2]["backbone.head.weight"]
    )


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: ExponentialWeightAveraging(decay=1.0), r"decay must be in \(0, 1\), got 1.0"),
        (
            lambda: ExponentialWeightAveraging(update_every_n_steps=0),
            r"update_every_n_steps must be >= 1, got 0",
        ),
        (
            lambda: SWAWeightAveraging(swa_epoch_start=1.5),
            r"swa_epoch_start must be an epoch >= 0 or a fraction in \(0, 1\), got 1.5",
        ),
    ],
    ids=["ema_decay", "ema_every", "swa_start"],
)
def test_weight_averaging_rejects_bad_options(factory, match) -> None:
    with pytest.raises(ValueError, match=match):
        factory()


def test_the_average_copies_the_weights_without_the_hooks_others_put_on_the_model() -> None:
    # Lightning's PyTorchProfiler hooks every module's forward with record functions that cannot be
    # deep-copied; a lock cannot be either
    task = MLPClassifier(num_classes=3, in_features=4, hidden_sizes=[5])
    lock = threading.Lock()
    calls = []
    handle = task.backbone.head.register_forward_hook(lambda module, args, out, lock=lock: calls.append(out))
    averaging = ExponentialWeightAveraging(decay=0.9)
    averaging.setup(L.Trainer(logger=False, enable_checkpointing=False), task, "fit")
    average = averaging._average_model.module
    assert not average.backbone.head._forward_hooks
    for name, tensor in task.state_dict().items():
        assert torch.equal(average.state_dict()[name], tensor), name
    task(torch.randn(2, 4))
    assert len(calls) == 1  # still on the model, and its handle still removes it
    handle.remove()
    task(torch.randn(2, 4))
    assert len(calls) == 1


def test_the_ema_update_is_lightnings_bit_for_bit_buffers_and_integer_counters_included() -> None:
    # Lightning's EMAWeightAveraging updates through torch's AveragedModel with its per-tensor avg_fn
    from torch.optim.swa_utils import AveragedModel, get_ema_avg_fn

    torch.manual_seed(0)
    task = MLPClassifier(num_classes=3, in_features=4, hidden_sizes=[8, 8], norm="before")
    averaging = ExponentialWeightAveraging(decay=0.9)
    averaging.setup(L.Trainer(logger=False, enable_checkpointing=False), task, "fit")
    reference = AveragedModel(task, avg_fn=get_ema_avg_fn(0.9), use_buffers=True)
    optimizer = torch.optim.SGD(task.parameters(), lr=0.5)
    for _ in range(4):
        task(torch.randn(6, 4)).sum().backward()  # training mode: BatchNorm's statistics move too
        optimizer.step()
        optimizer.zero_grad()
        averaging._average_model.update_parameters(task)
        reference.update_parameters(task)
    ours, torchs = averaging._average_model.module.state_dict(), reference.module.state_dict()
    assert any("num_batches_tracked" in name for name in ours)
    for name, tensor in torchs.items():
        assert torch.equal(ours[name], tensor), name
    assert int(averaging._average_model.n_averaged) == int(reference.n_averaged) == 4


def test_the_debiased_average_weights_the_updates_alone() -> None:
    # after k updates: sum_i (1 - d) d^(k - i) w_i / (1 - d^k), no weight left to the starting copy
    torch.manual_seed(0)
    decay = 0.9
    task = MLPClassifier(num_classes=3, in_features=4, hidden_sizes=[8])
    averaging = ExponentialWeightAveraging(decay=decay, debias=True)
    averaging.setup(L.Trainer(logger=False, enable_checkpointing=False), task, "fit")
    assert averaging.decay_at(0) == decay  # the first update copies, whatever the decay
    seen = []
    for _ in range(5):
        with torch.no_grad():
            for p in task.parameters():
                p.add_(torch.randn_like(p))
        seen.append(task.backbone.head.weight.detach().clone())
        averaging._average_model.update_parameters(task)
    k = len(seen)
    expected = sum((1 - decay) * decay ** (k - i) * w for i, w in enumerate(seen, 1)) / (1 - decay**k)
    average = averaging._average_model.module.backbone.head.weight
    torch.testing.assert_close(average, expected, rtol=1e-5, atol=1e-6)
    plain = sum(
        decay ** (k - 1) * seen[0] if i == 1 else (1 - decay) * decay ** (k - i) * w
        for i, w in enumerate(seen, 1)
    )
    assert not torch.allclose(average, plain, rtol=1e-3)  # the plain average keeps d^(k-1) of the first
    assert averaging.decay_at(10_000) == pytest.approx(decay, abs=1e-12)  # it tends to the plain one

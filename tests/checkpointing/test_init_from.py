"""Fine-tuning: ``init_from`` loads the weights bit for bit (WeightInit leaves them alone), a new head
when ``num_classes`` changes; ``load_from_checkpoint`` + fit keeps the loaded weights too."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from lit_dl.callbacks import WeightInit
from lit_dl.data import SyntheticClassificationDataModule
from lit_dl.errors import ConfigError
from lit_dl.models import MLPClassifier
from lit_dl.nn import mark_initialized

pytestmark = pytest.mark.filterwarnings(
    r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
)


def task(num_classes: int = 3, **kwargs) -> MLPClassifier:
    return MLPClassifier(
        num_classes=num_classes, in_features=16, hidden_sizes=[16, 16], dropout=0.1, **kwargs
    )


class FirstStepWeights(L.Callback):
    """The backbone's tensors and the loop counters when the first training batch starts."""

    def __init__(self) -> None:
        self.weights: dict[str, torch.Tensor] | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.weights is None:
            self.weights = {k: v.clone() for k, v in pl_module.backbone.state_dict().items()}
            self.counters = (trainer.current_epoch, trainer.global_step)
            self.lr = trainer.optimizers[0].param_groups[0]["lr"]


def fit_one_step(model: MLPClassifier, tmp_path, num_classes: int = 3) -> FirstStepWeights:
    probe = FirstStepWeights()
    trainer = L.Trainer(
        default_root_dir=tmp_path, max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
        callbacks=[WeightInit(seed=123), probe],
    )  # fmt: skip
    data = SyntheticClassificationDataModule(
        num_classes=num_classes, num_features=16, num_train=32, batch_size=16
    )
    trainer.fit(model, datamodule=data)
    return probe


@pytest.mark.parametrize("layout", ["lightning_checkpoint", "network_state_dict"])
def test_init_from_keeps_the_loaded_weights_bit_for_bit_at_the_first_step(tmp_path, layout) -> None:
    torch.manual_seed(1)
    source = task()
    payload = (
        {"state_dict": source.state_dict()}
        if layout == "lightning_checkpoint"
        else source.backbone.state_dict()
    )
    torch.save(payload, tmp_path / "source.ckpt")
    torch.manual_seed(2)
    probe = fit_one_step(task(init_from=str(tmp_path / "source.ckpt")), tmp_path)
    expected = source.backbone.state_dict()
    assert probe.weights.keys() == expected.keys()
    for name, value in expected.items():
        assert torch.equal(probe.weights[name], value), name
    assert probe.counters == (0, 0)  # epoch counter and steps start fresh
    assert probe.lr == pytest.approx(1e-3)  # AdamW's own LR: no optimizer state or schedule carried over


def test_init_skip_head_trains_a_new_head_for_another_number_of_classes(tmp_path) -> None:
    torch.manual_seed(1)
    source = task(num_classes=3)
    torch.save({"state_dict": source.state_dict()}, tmp_path / "source.ckpt")
    target = task(num_classes=5, init_from=str(tmp_path / "source.ckpt"), init_skip_head=True)
    # WeightInit initialises the fresh head only
    assert [r.layer for r in WeightInit().plan(target)] == ["backbone.head"]
    probe = fit_one_step(target, tmp_path, num_classes=5)
    for name, value in source.backbone.state_dict().items():
        if name.startswith("head."):
            assert probe.weights[name].shape[0] == 5
        else:
            assert torch.equal(probe.weights[name], value), name
    # the head got WeightInit's draw (the loaded features are marked and skipped)
    expected = task(num_classes=5)
    mark_initialized(expected.backbone.features, "test")
    WeightInit().apply(expected, seed=123)
    assert torch.equal(probe.weights["head.weight"], expected.backbone.head.weight)


def test_init_from_with_another_head_shape_is_refused_unless_the_head_is_skipped(tmp_path) -> None:
    torch.save({"state_dict": task(num_classes=3).state_dict()}, tmp_path / "source.ckpt")
    with pytest.raises(
        ConfigError, match=r"head.weight is \(3, 16\) in the file, \(5, 16\) here.*init_skip_head: true"
    ):
        task(num_classes=5, init_from=str(tmp_path / "source.ckpt"))
    with pytest.raises(ConfigError, match=r"checkpoint file '.*missing.ckpt' does not exist"):
        task(init_from=str(tmp_path / "missing.ckpt"))


def test_load_from_checkpoint_then_fit_keeps_the_loaded_weights(tmp_path) -> None:
    torch.manual_seed(1)
    source = task()
    trainer = L.Trainer(default_root_dir=tmp_path, max_steps=0, logger=False, accelerator="cpu")
    trainer.strategy.connect(source)
    trainer.save_checkpoint(tmp_path / "source.ckpt")
    loaded = MLPClassifier.load_from_checkpoint(tmp_path / "source.ckpt")
    probe = fit_one_step(loaded, tmp_path)
    for name, value in source.backbone.state_dict().items():
        assert torch.equal(probe.weights[name], value), name


def test_a_fine_tuned_run_is_tested_exported_and_resumed_without_its_source_file(
    tmp_path, tiny_config
) -> None:
    import shutil

    from lit_dl.cli import main

    main(["fit", "--config", str(tiny_config), f"--trainer.default_root_dir={tmp_path / 'base'}",
          "--trainer.max_epochs=1", "--test_after_fit=false"])  # fmt: skip
    (source,) = (tmp_path / "base").glob("lightning_logs/version_0/checkpoints/*.ckpt")
    moved = tmp_path / "moved.ckpt"
    shutil.copy(source, moved)
    main(["fit", "--config", str(tiny_config), f"--trainer.default_root_dir={tmp_path / 'tuned'}",
          "--trainer.max_epochs=1", "--test_after_fit=false", f"--model.init_args.init_from={moved}"])  # fmt: skip
    run = tmp_path / "tuned" / "lightning_logs" / "version_0"
    assert f"init_from: {moved}" in (run / "config.yaml").read_text()  # the record keeps it
    (tuned,) = (run / "checkpoints").glob("*.ckpt")
    moved.unlink()  # the source is gone: nothing below may need it
    config = ["--config", str(run / "config.yaml")]
    main(["test", *config, f"--ckpt_path={tuned}", f"--trainer.default_root_dir={tmp_path / 'test'}"])
    main(["export", *config, f"--ckpt_path={tuned}", "--format=state_dict", f"--output={tmp_path / 'w.pt'}"])
    exported = torch.load(tmp_path / "w.pt", weights_only=True)
    weights = torch.load(tuned, weights_only=True)["state_dict"]
    network = {k: v for k, v in exported.items() if k.startswith("backbone.")}  # beside mean and std
    assert network.keys() == weights.keys()
    for name, value in network.items():
        assert torch.equal(value, weights[name]), name
    main(["fit", *config, f"--ckpt_path={tuned}", "--trainer.max_epochs=2", "--test_after_fit=false",
          f"--trainer.default_root_dir={tmp_path / 'resumed'}"])  # fmt: skip
    (last,) = (tmp_path / "resumed").glob("lightning_logs/version_0/checkpoints/*.ckpt")
    assert torch.load(last, weights_only=True)["epoch"] == 1

import copy
from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn

from lit_dl import ConfigError
from lit_dl.data import SyntheticClassificationDataModule
from lit_dl.models import ClassificationTask, MLPClassifier
from tests.conftest import quiet_trainer, read_scalars


def make(**kwargs):
    defaults = {"num_classes": 3, "in_features": 4, "hidden_sizes": [5]}
    return MLPClassifier(**{**defaults, **kwargs})


def test_parameter_groups_by_name():
    model = make()
    assert model.decay_parameter_names() == {
        "backbone.features.1.0.weight": True,
        "backbone.features.1.1.weight": False,
        "backbone.features.1.1.bias": False,
        "backbone.head.weight": True,
        "backbone.head.bias": False,
    }
    opt = model.configure_optimizers()
    assert [g["name"] for g in opt.param_groups] == ["decay", "no_decay"]
    assert opt.param_groups[1]["weight_decay"] == 0.0
    assert opt.param_groups[0]["weight_decay"] == pytest.approx(0.01)  # AdamW's default reaches decay only


def test_l1_term_is_lambda_times_abs_sum_of_decayed_weights():
    model = make(l1=0.001)
    expected = 0.001 * (
        model.backbone.features[1][0].weight.abs().sum() + model.backbone.head.weight.abs().sum()
    )
    assert torch.allclose(model.l1_term(), expected)
    assert make().l1_term().item() == 0.0


def test_training_step_adds_l1_to_the_loss():
    torch.manual_seed(0)
    plain, penalised = make(), make(l1=0.01)
    penalised.load_state_dict(plain.state_dict())
    batch = (torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2]))
    plain.train(), penalised.train()
    torch.manual_seed(1)
    base = plain.training_step(batch, 0)
    torch.manual_seed(1)
    total = penalised.training_step(batch, 0)
    assert torch.allclose(total, base + penalised.l1_term())


def test_loss_and_gradients_are_finite_for_huge_logits():
    class Fixed(ClassificationTask):
        def build_backbone(self):
            return nn.Identity()

    model = Fixed(num_classes=3)
    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3]], requires_grad=True)
    loss = model.compute_loss(logits, torch.tensor([1, 0]))
    loss.backward()
    assert torch.isfinite(loss)
    # each row: logsumexp(logits) - logit[target] = 1e4 - (-1e4) = 2e4, computed exactly
    assert loss.item() == pytest.approx(2e4, rel=1e-6)
    assert torch.isfinite(logits.grad).all()
    # the pitfall this guards against: log(softmax(.)) underflows to -inf
    naive = -torch.log(torch.softmax(logits.detach(), -1))[[0, 1], [1, 0]].mean()
    assert torch.isinf(naive)


def test_predict_step_returns_probabilities():
    model = make().eval()
    probs = model.predict_step((torch.randn(5, 4), torch.zeros(5)), 0)
    assert probs.shape == (5, 3)
    assert torch.allclose(probs.sum(-1), torch.ones(5))
    assert torch.allclose(model.predict_step(torch.ones(2, 4), 0).sum(-1), torch.ones(2))


def test_no_autograd_error_under_anomaly_detection():
    model = make(l1=0.01, residual=True, dropout=0.2)
    with torch.autograd.detect_anomaly():
        loss = model.training_step((torch.randn(8, 4), torch.randint(0, 3, (8,))), 0)
        loss.backward()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 1}, "num_classes must be >= 2, got 1"),
        ({"l1": -1.0}, r"l1 must be >= 0, got -1.0"),
        ({"label_smoothing": 1.0}, r"label_smoothing must be in \[0, 1\), got 1.0"),
        ({"scheduler_interval": "batch"}, "scheduler_interval must be 'epoch' or 'step', got 'batch'"),
        ({"optimizer": partial(torch.optim.SGD, lr=-0.1)}, r"lr=-0.1, must be a finite number > 0"),
        ({"activation": "nope"}, "unknown activation 'nope'"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        make(**kwargs)


def test_num_classes_smaller_than_data_fails_at_setup(tmp_path):
    model = make(num_classes=2)
    data = SyntheticClassificationDataModule(num_classes=3, num_features=4)
    trainer = L.Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    with pytest.raises(ConfigError, match=r"model num_classes=2 is smaller than the 3 classes in the data"):
        trainer.fit(model, datamodule=data)


def test_fit_learns_and_checkpoint_reload_needs_no_arguments(tmp_path):
    L.seed_everything(0)
    model = make(
        hidden_sizes=[16], num_classes=3, in_features=16, optimizer=partial(torch.optim.AdamW, lr=0.02)
    )
    data = SyntheticClassificationDataModule(num_classes=3, num_features=16, num_train=128, batch_size=32)
    trainer = L.Trainer(
        default_root_dir=tmp_path,
        max_epochs=3,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
    )
    trainer.fit(model, datamodule=data)
    acc = trainer.test(model, datamodule=data, verbose=False)[0]["test/acc"]
    assert acc >= 0.9
    ckpt = trainer.checkpoint_callback.best_model_path
    reloaded = MLPClassifier.load_from_checkpoint(ckpt)
    assert reloaded.hparams.hidden_sizes == [16]
    x = torch.randn(3, 16)
    assert torch.equal(reloaded.eval()(x), model.eval()(x))
    tags = set(read_scalars(Path(trainer.log_dir)))
    assert {"train/loss", "val/loss", "val/acc", "val/f1", "test/loss", "test/acc", "test/f1"} <= tags
    assert "train/l1" not in tags  # only logged when l1 > 0


class WithTemperature(MLPClassifier):
    """A downstream task with a parameter outside the backbone."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.temperature = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.backbone(x) / self.temperature


def test_parameters_outside_the_backbone_are_grouped_and_trained():
    model = WithTemperature(num_classes=3, in_features=4, hidden_sizes=[5])
    assert model.decay_parameter_names()["temperature"] is False  # a scalar: no decay
    opt = model.configure_optimizers()
    grouped = [p for g in opt.param_groups for p in g["params"]]
    assert any(p is model.temperature for p in grouped)
    assert len(grouped) == len(list(model.parameters()))
    model.training_step((torch.randn(8, 4), torch.randint(0, 3, (8,))), 0).backward()
    opt.step()
    assert model.temperature.item() != 1.0


def test_a_trainable_parameter_in_no_group_fails_loudly():
    class ForgetsOne(WithTemperature):
        def parameter_groups(self):
            return [{"name": "decay", "params": list(self.backbone.parameters())}]

    model = ForgetsOne(num_classes=3, in_features=4, hidden_sizes=[5])
    with pytest.raises(
        ConfigError, match=r"in no optimizer parameter group would never be trained: temperature;"
    ):
        model.configure_optimizers()


def test_one_hot_projection_is_trained_as_the_embedding_table():
    from lit_dl.callbacks import WeightInit
    from lit_dl.models import SequenceClassifier

    for encoding in ("embedding", "one_hot"):
        model = SequenceClassifier(num_classes=2, vocab_size=12, encoding=encoding)
        assert model.decay_parameter_names()["backbone.tokens.embedding.weight"] is False
        assert not any(r.layer.startswith("tokens") for r in WeightInit().plan(model.backbone))
        decaying = SequenceClassifier(num_classes=2, vocab_size=12, encoding=encoding, decay_embeddings=True)
        assert decaying.decay_parameter_names()["backbone.tokens.embedding.weight"] is True


def test_validate_then_fit_then_test_on_one_model(tmp_path):
    model = make(in_features=16)
    data = SyntheticClassificationDataModule(num_classes=3, num_features=16, num_train=32, batch_size=16)
    trainer = quiet_trainer(tmp_path, max_epochs=1, num_sanity_val_steps=0)
    first = trainer.validate(model, datamodule=data, verbose=False)[0]["val/loss"]
    trainer.fit(model, datamodule=data)  # crashed: in-place update of an inference tensor
    again = trainer.validate(model, datamodule=data, verbose=False)[0]
    assert again["val/loss"] != first and trainer.callback_metrics["val/loss"] == again["val/loss"]
    assert 0.0 <= trainer.test(model, datamodule=data, verbose=False)[0]["test/acc"] <= 1.0


class CudaOnlyOptimizer(torch.optim.Optimizer):
    """Stands for a third-party fused optimizer that can only be built on GPU parameters."""

    def __init__(self, params, lr: float = 1e-3):
        super().__init__(params, {"lr": lr})
        if any(p.device.type != "cuda" for g in self.param_groups for p in g["params"]):
            raise ValueError("CudaOnlyOptimizer supports CUDA tensors only")


def test_optimizer_check_does_not_reject_a_gpu_only_optimizer_and_still_checks_torch_settings():
    model = make(optimizer=partial(CudaOnlyOptimizer, lr=0.01))
    assert model.optimizer_factory.func is CudaOnlyOptimizer
    make(optimizer=partial(torch.optim.AdamW, lr=0.01, fused=True))  # fused: fine without a GPU
    with pytest.raises(
        ConfigError, match=r"invalid optimizer settings for SGD: momentum=-1, must be in \[0, 1\)"
    ):
        make(optimizer=partial(torch.optim.SGD, lr=0.1, momentum=-1))
    with pytest.raises(ConfigError, match=r"invalid optimizer settings for Adam: `fused` and `foreach`"):
        make(optimizer=partial(torch.optim.Adam, fused=True, foreach=True))


def test_val_and_test_loss_are_plain_cross_entropy_while_train_loss_is_the_smoothed_objective(tmp_path):
    model = make(in_features=16, label_smoothing=0.1).eval()
    data = SyntheticClassificationDataModule(num_classes=3, num_features=16, num_train=32, batch_size=16)
    data.setup("fit")
    trainer = L.Trainer(
        default_root_dir=tmp_path, accelerator="cpu", logger=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=1, limit_test_batches=1,
    )  # fmt: skip
    x, y = next(iter(data.val_dataloader()))  # the one batch validation reads
    with torch.no_grad():
        logits = model(x)
    plain = torch.nn.functional.cross_entropy(logits, y)
    smoothed = model.compute_loss(logits, y)
    assert not torch.equal(plain, smoothed)
    trainer.validate(model, datamodule=data, verbose=False)
    assert torch.equal(trainer.callback_metrics["val/loss"], plain)
    x, y = next(iter(data.test_dataloader()))
    with torch.no_grad():
        plain_test = torch.nn.functional.cross_entropy(model(x), y)
    trainer.test(model, datamodule=data, verbose=False)
    assert torch.equal(trainer.callback_metrics["test/loss"], plain_test)


def test_lr_is_the_optimizer_factorys_until_set_and_then_builds_every_group_at_it():
    model = make(optimizer=partial(torch.optim.SGD, lr=0.1, momentum=0.9))
    assert model.lr == 0.1
    assert make().lr == 0.001  # a class as the factory: its default
    model.lr = 0.25  # as Lightning's LearningRateFinder sets it
    assert model.lr == 0.25
    assert [g["lr"] for g in model.configure_optimizers().param_groups] == [0.25, 0.25]


def test_lr_set_keeps_a_groups_own_ratio_to_the_configured_lr():
    class SlowNoDecay(MLPClassifier):
        def parameter_groups(self):
            groups = super().parameter_groups()
            groups[1]["lr"] = 0.05  # half the configured 0.1
            return groups

    model = SlowNoDecay(
        num_classes=3, in_features=4, hidden_sizes=[5], optimizer=partial(torch.optim.SGD, lr=0.1)
    )
    model.lr = 0.4
    assert [g["lr"] for g in model.configure_optimizers().param_groups] == [0.4, pytest.approx(0.2)]


@pytest.mark.parametrize("bad", [0.0, -1e-3, float("nan"), float("inf")])
def test_lr_must_be_a_finite_positive_number(bad):
    with pytest.raises(ValueError, match=r"lr must be a finite number > 0, got "):
        make().lr = bad


def test_a_deep_copy_owns_its_network_and_shares_the_optimizer_and_scheduler_callables():
    optimizer = partial(torch.optim.AdamW, lr=0.01)
    scheduler = partial(torch.optim.lr_scheduler.StepLR, step_size=1)
    task = MLPClassifier(
        num_classes=3, in_features=4, hidden_sizes=[5], optimizer=optimizer, lr_scheduler=scheduler
    )
    copied = copy.deepcopy(task)
    assert copied.optimizer_factory is optimizer and copied.lr_scheduler_factory is scheduler
    for (name, mine), theirs in zip(task.state_dict().items(), copied.state_dict().values(), strict=True):
        assert torch.equal(mine, theirs) and mine.data_ptr() != theirs.data_ptr(), name
    assert copied.task_logging.task is copied  # its helpers follow it
    x = torch.randn(2, 4)
    assert torch.equal(copied.eval()(x), task.eval()(x))

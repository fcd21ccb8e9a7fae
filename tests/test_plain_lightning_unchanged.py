"""Importing lit_dl changes nothing for plain Lightning: torch's and Lightning's short class names
keep resolving in any LightningCLI config, and lit_dl's replacements of Lightning callbacks read a
positional argument as Lightning's do (or take none)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from lightning.pytorch.callbacks import Callback, EMAWeightAveraging
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.demos.boring_classes import BoringDataModule, BoringModel

import lit_dl

THEIRS = ("torch", "lightning", "pytorch_lightning", "lightning_fabric", "torchmetrics")


def _import_all_of_lit_dl() -> None:
    for module in pkgutil.walk_packages(lit_dl.__path__, "lit_dl."):
        try:
            importlib.import_module(module.name)
        except ModuleNotFoundError as err:  # an optional extra that is not installed
            if (err.name or "").startswith("lit_dl"):
                raise


def _all_classes() -> set[type]:
    seen: set[type] = set()
    todo = [object]
    while todo:
        for sub in type.__subclasses__(todo.pop()):
            if sub not in seen:
                seen.add(sub)
                todo.append(sub)
    return seen


def _common_bases(a: type, b: type) -> set[type]:
    return (set(a.__mro__) & set(b.__mro__)) - {object}


def test_no_lit_dl_class_shares_its_short_name_with_a_torch_or_lightning_class_of_its_kind():
    # jsonargparse resolves `class_path: Name` among the subclasses of the argument's type that are
    # imported: two of one kind with one name make the name ambiguous for every config.
    _import_all_of_lit_dl()
    classes = _all_classes()
    modules = {c: c.__module__ for c in classes if isinstance(c.__module__, str)}
    ours = [c for c, module in modules.items() if module.startswith("lit_dl.")]
    theirs: dict[str, list[type]] = {}
    for c, module in modules.items():
        if module.split(".")[0] in THEIRS:
            theirs.setdefault(c.__name__, []).append(c)
    clashes = sorted(
        f"{c.__module__}.{c.__qualname__} ~ {t.__module__}.{t.__qualname__}"
        for c in ours
        for t in theirs.get(c.__name__, [])
        if _common_bases(c, t)
    )
    assert clashes == []


class LayerModel(BoringModel):
    def __init__(self, layer: torch.nn.Module | None = None) -> None:
        super().__init__()
        self.extra = layer


def test_a_plain_lightning_cli_resolves_torch_and_lightning_short_names_after_importing_lit_dl(tmp_path):
    _import_all_of_lit_dl()
    config = {
        "seed_everything": 0,
        "trainer": {
            "default_root_dir": str(tmp_path),
            "max_steps": 3,
            "limit_val_batches": 1,
            "logger": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "callbacks": [{"class_path": "EMAWeightAveraging", "init_args": {"decay": 0.9}}],
        },
        "model": {
            "layer": {
                "class_path": "TransformerEncoderLayer",
                "init_args": {"d_model": 8, "nhead": 2, "activation": "gelu"},
            }
        },
        "optimizer": {"class_path": "SGD", "init_args": {"lr": 0.1}},
        "lr_scheduler": {"class_path": "OneCycleLR", "init_args": {"max_lr": 0.1, "total_steps": 3}},
    }
    path = tmp_path / "plain.yaml"
    path.write_text(yaml.safe_dump(config))
    cli = LightningCLI(LayerModel, BoringDataModule, args=["fit", "--config", str(path)])
    assert cli.trainer.global_step == 3
    assert type(cli.model.extra) is torch.nn.TransformerEncoderLayer
    (scheduler,) = [c.scheduler for c in cli.trainer.lr_scheduler_configs]
    assert type(scheduler) is torch.optim.lr_scheduler.OneCycleLR
    assert scheduler.total_steps == 3
    assert [type(c) for c in cli.trainer.callbacks if isinstance(c, EMAWeightAveraging)] == [
        EMAWeightAveraging
    ]


@pytest.mark.parametrize(
    ("module", "old", "message"),
    [
        (
            "lit_dl.optim",
            "OneCycleLR",
            "lit_dl.optim.OneCycleLR is now lit_dl.optim.RunLengthOneCycleLR "
            "(the short name OneCycleLR is torch.optim.lr_scheduler.OneCycleLR's)",
        ),
        (
            "lit_dl.nn",
            "TransformerEncoderLayer",
            "lit_dl.nn.TransformerEncoderLayer is now lit_dl.nn.TransformerBlock "
            "(the short name TransformerEncoderLayer is torch.nn.TransformerEncoderLayer's)",
        ),
        (
            "lit_dl.callbacks",
            "EMAWeightAveraging",
            "lit_dl.callbacks.EMAWeightAveraging is now lit_dl.callbacks.ExponentialWeightAveraging "
            "(the short name EMAWeightAveraging is lightning.pytorch.callbacks.EMAWeightAveraging's)",
        ),
    ],
    ids=["one_cycle", "transformer_block", "ema"],
)
def test_a_renamed_class_path_names_its_new_name(module, old, message):
    with pytest.raises(AttributeError) as caught:
        getattr(importlib.import_module(module), old)
    assert str(caught.value) == message


def _lit_dl_callbacks() -> list[type]:
    import lit_dl.callbacks

    found = [getattr(lit_dl.callbacks, name) for name in lit_dl.callbacks.__all__]
    return [c for c in found if isinstance(c, type) and issubclass(c, Callback)]


def _positional(cls: type) -> list[str]:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in inspect.signature(cls).parameters.values() if p.kind in kinds]


@pytest.mark.parametrize("cls", _lit_dl_callbacks(), ids=lambda c: c.__name__)
def test_a_positional_argument_means_what_it_means_to_the_lightning_callback_replaced(cls):
    # The nearest Lightning class above (past Callback itself) is the one a user ports from:
    # PredictionWriter("epoch") is BasePredictionWriter's write_interval, not an output folder.
    lightning_bases = [
        b
        for b in cls.__mro__[1:]
        if b.__module__.startswith("lightning.") and b not in (Callback, L.Callback)
    ]
    if not lightning_bases:
        return
    ours, theirs = _positional(cls), _positional(lightning_bases[0])
    assert ours == theirs[: len(ours)], (lightning_bases[0].__qualname__, theirs)


def test_lit_dl_callbacks_that_replace_lightning_ones_refuse_a_positional_argument():
    from lit_dl.callbacks import ExponentialWeightAveraging, PredictionWriter, SWAWeightAveraging

    with pytest.raises(TypeError, match="positional argument"):
        PredictionWriter("epoch")
    with pytest.raises(TypeError, match="positional argument"):
        ExponentialWeightAveraging("cpu")  # Lightning's EMAWeightAveraging: device
    with pytest.raises(TypeError, match="positional argument"):
        SWAWeightAveraging(0.05)  # Lightning's StochasticWeightAveraging: swa_lrs
    assert ExponentialWeightAveraging().state_key == EMAWeightAveraging().state_key == "EMAWeightAveraging"


def test_a_checkpoint_of_lightnings_ema_resumes_its_counter_under_lit_dls(tmp_path: Path):
    from lit_dl.callbacks import ExponentialWeightAveraging

    def trainer(callback: Callback, steps: int) -> L.Trainer:
        return L.Trainer(
            default_root_dir=tmp_path / str(steps),
            max_steps=steps,
            limit_val_batches=0,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[callback],
        )

    trainer(EMAWeightAveraging(decay=0.9), 2).fit(BoringModel(), BoringDataModule())
    (ckpt,) = (tmp_path / "2" / "checkpoints").glob("*.ckpt")
    ours = ExponentialWeightAveraging(decay=0.9)
    trainer(ours, 3).fit(BoringModel(), BoringDataModule(), ckpt_path=ckpt)
    assert ours.state_dict() == {"latest_update_step": 3}  # two restored steps plus one

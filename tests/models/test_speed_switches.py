"""The task's speed switches: channels_last and torch.compile keep outputs and checkpoints unchanged."""

import time

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lit_dl.errors import ConfigError
from lit_dl.models import ConvNetClassifier, MLPClassifier

pytestmark = pytest.mark.filterwarnings(
    r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
)


def _convnet(**kwargs) -> ConvNetClassifier:
    torch.manual_seed(0)
    return ConvNetClassifier(num_classes=3, in_channels=3, channels=[4, 8], blocks_per_stage=1, **kwargs)


def test_channels_last_outputs_match_contiguous():
    plain, nhwc = _convnet(), _convnet(channels_last=True)
    nhwc.load_state_dict(plain.state_dict())
    conv = next(m for m in nhwc.backbone.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(4, 3, 8, 8)
    plain.eval(), nhwc.eval()
    torch.testing.assert_close(nhwc(x), plain(x), rtol=1e-5, atol=1e-5)


def test_channels_last_on_a_network_without_convs_is_rejected():
    with pytest.raises(
        ConfigError, match=r"channels_last=True needs a network with 2-D convolutions, but MLPClassifier's"
    ):
        MLPClassifier(num_classes=3, in_features=4, hidden_sizes=[4], channels_last=True)


def test_unknown_compile_mode_is_rejected():
    with pytest.raises(ConfigError, match=r"compile must be one of off, default, .*, got 'fast'"):
        _convnet(compile="fast")


def _fit(model, root, epochs, ckpt_path=None) -> L.Trainer:
    data = TensorDataset(torch.randn(16, 3, 8, 8), torch.arange(16) % 3)
    trainer = L.Trainer(
        default_root_dir=root,
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, DataLoader(data, batch_size=8), ckpt_path=ckpt_path)
    return trainer


def test_compiled_checkpoint_has_plain_names_and_loads_both_ways(tmp_path):
    # backend "eager" runs TorchDynamo (the part that wraps modules and names parameters) without
    # inductor's C++ code generation, which takes minutes on the 2 test CPUs.
    compiled = _convnet(compile="default", compile_backend="eager")
    trainer = _fit(compiled, tmp_path / "a", epochs=1)
    assert compiled.speed.compiled is not None  # the compiled path ran
    ckpt = trainer.checkpoint_callback.best_model_path
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    plain = _convnet()
    assert sorted(state) == sorted(plain.state_dict())
    assert not any("_orig_mod" in k for k in state)
    plain.load_state_dict(state)  # strict: an uncompiled model takes the compiled run's weights
    assert torch.equal(plain.backbone.head.weight, compiled.backbone.head.weight)
    resumed = _convnet(compile="default", compile_backend="eager")
    trainer = _fit(resumed, tmp_path / "b", epochs=2, ckpt_path=ckpt)
    assert trainer.global_step == 4 and resumed.speed.compiled is not None


def test_configure_model_compiles_once():
    model = _convnet(compile="reduce-overhead", compile_backend="eager")
    model.configure_model()
    first = model.speed.compiled
    start = time.perf_counter()
    model.configure_model()
    assert first is not None and model.speed.compiled is first and time.perf_counter() - start < 1.0
    assert list(dict(model.named_modules())) == list(dict(_convnet().named_modules()))

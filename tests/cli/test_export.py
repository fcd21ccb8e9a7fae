"""``lit-dl export``: every format loads without lit_dl or Lightning, in eval mode, takes raw digits and
gives the test loop's outputs (max abs diff <= 1e-5, same predicted classes)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

import lit_dl.cli.export as export_module
from lit_dl.cli import main
from lit_dl.cli.export import FORMATS, ONNX_HINT, InferenceModel, default_output, export
from lit_dl.data import DigitsDataModule, SyntheticClassificationDataModule
from lit_dl.models import MLPClassifier

pytestmark = pytest.mark.filterwarnings(
    r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
)

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "digits_mlp.yaml"

# Loads each export with torch (and onnxruntime) only: importing lit_dl or Lightning fails in here.
LOADER = textwrap.dedent(
    """
    import sys
    for name in ("lit_dl", "lightning", "pytorch_lightning"):
        sys.modules[name] = None
    import torch
    files, raw = torch.load(sys.argv[1], weights_only=True)
    out = {"state_dict": sorted(torch.load(files["state_dict"], weights_only=True))}
    out["torchscript"] = torch.jit.load(files["torchscript"])(raw)
    out["exported_program"] = torch.export.load(files["exported_program"]).module()(raw)
    if "onnx" in files:
        import onnxruntime
        session = onnxruntime.InferenceSession(files["onnx"], providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: raw.numpy()}
        out["onnx"] = torch.from_numpy(session.run(None, feed)[0])
    torch.save(out, sys.argv[2])
    """
)


def raw_test_digits() -> torch.Tensor:
    """The recipe's test split as scikit-learn ships it (pixel values 0..16), not standardised."""
    x, y = load_digits(return_X_y=True)
    _, x_test, _, _ = train_test_split(x.astype(np.float32), y, test_size=0.2, stratify=y, random_state=0)
    return torch.from_numpy(x_test)


def test_every_format_round_trips_and_raw_digits_give_the_test_loop_outputs(tmp_path) -> None:
    main(
        ["fit", "--config", str(RECIPE), "--trainer.default_root_dir", str(tmp_path),
         "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "5", "--trainer.limit_val_batches", "1",
         "--trainer.enable_progress_bar", "false", "--test_after_fit", "false"]
    )  # fmt: skip
    run = tmp_path / "lightning_logs" / "version_0"
    ckpt = run / "checkpoints" / "last.ckpt"
    formats = [f for f in FORMATS if f != "onnx" or _has_onnx()]
    files = {}
    for fmt in formats:
        main(["export", "--config", str(run / "config.yaml"), "--ckpt_path", str(ckpt), "--format", fmt])
        files[fmt] = str(default_output(ckpt, fmt))
        assert Path(files[fmt]).parent == run / "export"
    assert not (tmp_path / "lightning_logs" / "version_1").exists()  # export starts no new run

    # the test loop's outputs: the checkpoint's module in eval mode on the standardised test split
    task = MLPClassifier.load_from_checkpoint(ckpt).eval()
    data = DigitsDataModule(batch_size=64)
    data.setup("test")
    with torch.no_grad():
        expected = torch.cat([task(x) for x, _ in data.test_dataloader()])
    raw = raw_test_digits()

    torch.save((files, raw), tmp_path / "inputs.pt")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run(
        [sys.executable, "-c", LOADER, str(tmp_path / "inputs.pt"), str(tmp_path / "outputs.pt")],
        check=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    outputs = torch.load(tmp_path / "outputs.pt", weights_only=True)
    assert outputs["state_dict"] == sorted(
        ["mean", "std", *(f"backbone.{k}" for k in task.backbone.state_dict())]
    )
    backbone = MLPClassifier(num_classes=10, in_features=64, hidden_sizes=[256, 256]).backbone
    rebuilt = InferenceModel(backbone, mean=torch.zeros(64), std=torch.ones(64))  # shapes; values load
    rebuilt.load_state_dict(torch.load(files["state_dict"], weights_only=True))
    with torch.no_grad():
        outputs["state_dict"] = rebuilt.eval()(raw)
    for fmt in formats:
        got = outputs[fmt]
        assert got.shape == expected.shape, fmt
        assert (got - expected).abs().max().item() <= 1e-5, fmt
        assert torch.equal(got.argmax(1), expected.argmax(1)), fmt


def _has_onnx() -> bool:
    from lit_dl.cli.export import _onnx_available

    return _onnx_available()


def test_onnx_without_the_extra_says_how_to_install_it(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr("lit_dl.cli.export._onnx_available", lambda: False)
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--config", str(RECIPE), "--ckpt_path", str(tmp_path / "x.ckpt"), "--format", "onnx"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"lit-dl: error: {ONNX_HINT}"
    assert not list(tmp_path.iterdir())


def test_digits_input_normalization_turns_raw_pixels_into_the_model_inputs() -> None:
    data = DigitsDataModule()
    mean, std = data.input_normalization()
    x = data.test_set.tensors[0]
    assert torch.equal((raw_test_digits() - mean) / std, x)


class _Calibrated(nn.Module):
    """A linear network whose output scale is a non-persistent buffer: state outside ``state_dict()``."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 3)
        self.register_buffer("scale", torch.ones(()), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) * self.scale


def _synthetic() -> SyntheticClassificationDataModule:
    return SyntheticClassificationDataModule(
        num_features=8, num_train=16, num_val=8, num_test=8, batch_size=8
    )


def test_a_state_dict_export_is_checked_on_a_freshly_built_network(tmp_path) -> None:
    # Loaded back into the network it came from, the file changes nothing and matches; a freshly built
    # network lacks the calibrated scale the file does not carry: the export fails and leaves no file.
    torch.manual_seed(0)
    trained = _Calibrated()
    fresh = copy.deepcopy(trained)
    trained.scale.fill_(3.0)
    output = tmp_path / "model.state_dict.pt"
    with pytest.raises(
        RuntimeError, match=r"does not reproduce the network: loaded into a freshly built _Calibrated"
    ):
        export(trained, _synthetic(), "state_dict", output, fresh=fresh)
    assert not output.exists()
    # the same network with its state all in state_dict(): written, and fresh is left as built
    trained.scale.fill_(1.0)
    with torch.no_grad():
        trained.linear.weight.add_(1.0)
    assert export(trained, _synthetic(), "state_dict", output, fresh=fresh) == output
    assert torch.equal(torch.load(output, weights_only=True)["backbone.linear.weight"], trained.linear.weight)


def test_a_state_dict_file_missing_a_tensor_fails_the_export_and_is_removed(tmp_path, monkeypatch) -> None:
    def write_without_bias(model, raw, output):
        state = model.state_dict()
        del state["backbone.linear.bias"]
        torch.save(state, output)

    monkeypatch.setitem(export_module._WRITERS, "state_dict", write_without_bias)
    output = tmp_path / "model.state_dict.pt"
    trained = _Calibrated()
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "backbone.linear.bias"'):
        export(trained, _synthetic(), "state_dict", output, fresh=copy.deepcopy(trained))
    assert not output.exists()

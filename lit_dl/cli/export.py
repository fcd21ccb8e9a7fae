"""``lit-dl export``: a trained network as a file that loads with torch alone, in eval mode, taking raw inputs.

::

    lit-dl export --config <run>/config.yaml --ckpt_path <run>/checkpoints/last.ckpt --format exported_program

The config builds the task and the data module (as for ``lit-dl test``), the checkpoint's weights are
loaded (``weights_only=True``), and :class:`InferenceModel` puts the data module's input normalisation
(its ``input_normalization()``, when it has one) in front of the network. Formats:

- ``state_dict``: ``torch.save`` of :class:`InferenceModel`'s ``state_dict`` (``backbone.*``, ``mean``,
  ``std``); loads with ``torch.load(weights_only=True)``; rebuilding the network needs its class.
- ``torchscript``: ``torch.jit.trace``; loads with ``torch.jit.load`` (PyTorch marks TorchScript as
  deprecated: prefer ``exported_program``).
- ``exported_program``: ``torch.export`` with a dynamic batch dimension; ``torch.export.load(f).module()``.
- ``onnx``: ``torch.onnx.export(dynamo=True)``; needs the ``onnx`` extra (``pip install 'lit-dl[onnx]'``).

The file goes to ``<run>/export/<checkpoint name>.<format suffix>`` (``<run>``: the folder that holds
the checkpoint's ``checkpoints/``), or to ``--output``. The exported model returns logits; after writing,
the file is loaded back and its outputs on a test batch are compared with the module's. A ``state_dict``
file is loaded into a freshly built network (the config's, before the checkpoint), and must give exactly
the module's outputs: a file that misses or garbles a tensor is removed and the export fails.
"""

from __future__ import annotations

import copy
import importlib.util
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import lightning as L
import torch
from lightning.pytorch.cli import LightningArgumentParser
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn

from lit_dl.checkpointing.loading import load_checkpoint, refuse_non_finite_weights
from lit_dl.cli.lightning_cli import LitDLCLI
from lit_dl.errors import ConfigError

__all__ = ["FORMATS", "SUFFIXES", "ExportCLI", "InferenceModel", "export", "export_main", "load_exported"]

ExportFormat = Literal["state_dict", "torchscript", "exported_program", "onnx"]
FORMATS: tuple[str, ...] = ("state_dict", "torchscript", "exported_program", "onnx")
SUFFIXES = {
    "state_dict": "state_dict.pt",
    "torchscript": "torchscript.pt",
    "exported_program": "pt2",
    "onnx": "onnx",
}
ONNX_HINT = "--format onnx needs the onnx extra: pip install 'lit-dl[onnx]' (onnx and onnxscript)"


class InferenceModel(nn.Module):
    """``backbone`` behind the input normalisation: raw inputs in, logits out.

    Args:
        backbone: The trained network (it is put in eval mode).
        mean: Subtracted from raw inputs (broadcast over the batch); ``None``: inputs go in as they are.
        std: Divides the centred inputs.
    """

    mean: Tensor  # buffers
    std: Tensor

    def __init__(self, backbone: nn.Module, mean: Tensor | None = None, std: Tensor | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.normalize = mean is not None
        self.register_buffer("mean", torch.as_tensor(0.0 if mean is None else mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(1.0 if std is None else std, dtype=torch.float32))
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        if self.normalize:
            x = (x.to(self.mean.dtype) - self.mean) / self.std
        return self.backbone(x)


class ExportCLI(LitDLCLI):
    """The ``lit-dl export`` parser: the usual ``--config``/``--model``/``--data``/``--trainer`` options,
    plus ``--ckpt_path``, ``--format`` and ``--output``. Keys that a run's saved ``config.yaml`` carries
    for ``fit`` (``weights_only``, ``test_after_fit``, ``model_from_ckpt``) are accepted and ignored."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument("--ckpt_path", type=str | None, default=None, help="The checkpoint to export.")
        parser.add_argument(
            "--format", type=ExportFormat, default="exported_program", help="The file format."
        )
        parser.add_argument(
            "--output", type=str | None, default=None, help="Output file (default: in the run)."
        )
        parser.add_argument("--weights_only", type=bool | None, default=None, help="Ignored (fit's option).")
        parser.add_argument("--test_after_fit", type=bool, default=True, help="Ignored (fit's option).")
        parser.add_argument("--model_from_ckpt", type=bool, default=False, help="Ignored (fit's option).")


def export_main(args: list[str]) -> Path:
    """``lit-dl export ...``: build model and data from the config, load the checkpoint, export."""
    cli = ExportCLI(args=args, run=False, parser_kwargs={"default_env": False, "prog": "lit-dl export"})
    config = cli.config
    if not config.get("ckpt_path"):
        raise ConfigError("lit-dl export needs --ckpt_path <checkpoint file>")
    if config["format"] == "onnx" and not _onnx_available():
        raise ConfigError(ONNX_HINT)
    checkpoint = load_checkpoint(config["ckpt_path"])
    refuse_non_finite_weights(checkpoint, config["ckpt_path"])
    # the network as the config builds it, before the checkpoint: a state_dict file is checked on it
    fresh = copy.deepcopy(cli.model.backbone) if config["format"] == "state_dict" else None
    try:
        cli.model.load_state_dict(checkpoint["state_dict"])
    except (KeyError, RuntimeError) as err:
        first = str(err).strip().splitlines()
        raise ConfigError(
            f"{config['ckpt_path']} does not fit the config's {type(cli.model).__name__}: "
            f"{first[-1].strip() if first else err!r}; pass the run's own config.yaml"
        ) from None
    output = (
        Path(config["output"])
        if config.get("output")
        else default_output(config["ckpt_path"], config["format"])
    )
    return export(cli.model.backbone, cli.datamodule, config["format"], output, fresh=fresh)


def default_output(ckpt_path: str | Path, fmt: str) -> Path:
    """``<run>/export/<checkpoint stem>.<suffix>``, ``<run>`` being the folder above ``checkpoints/``."""
    ckpt = Path(ckpt_path)
    run = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    return run / "export" / f"{ckpt.stem}.{SUFFIXES[fmt]}"


def example_inputs(datamodule: L.LightningDataModule, model: InferenceModel, count: int = 8) -> Tensor:
    """Raw inputs for tracing and checking: the first test samples, normalisation undone (the data
    module is set up)."""
    x = next(iter(datamodule.test_dataloader()))[0][:count]
    return x * model.std + model.mean if model.normalize else x


def export(
    backbone: nn.Module,
    datamodule: L.LightningDataModule,
    fmt: str,
    output: Path,
    fresh: nn.Module | None = None,
) -> Path:
    """Write ``backbone`` (with ``datamodule``'s input normalisation in front) to ``output`` as ``fmt``,
    load it back and check its outputs against the module's on a test batch.

    Args:
        fresh: For ``state_dict``: a newly built network of ``backbone``'s structure, which the file is
            loaded into. Its outputs must equal ``backbone``'s (``torch.equal``).

    Raises:
        RuntimeError: the ``state_dict`` file, loaded into ``fresh``, does not give ``backbone``'s
            outputs (state outside ``state_dict()``, or a tensor the file misses or garbles); the file
            is removed.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; valid formats are: {', '.join(FORMATS)}")
    if fmt == "state_dict" and fresh is None:
        raise ValueError("a state_dict export is checked on a freshly built network: pass fresh=")
    # Set up first: a data module may compute its statistics in setup (the data-module contract, README).
    datamodule.setup("test")
    norm = getattr(datamodule, "input_normalization", None)
    mean, std = norm() if callable(norm) else (None, None)
    model = InferenceModel(backbone.cpu(), mean, std)
    raw = example_inputs(datamodule, model)
    output.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        expected = model(raw)
        _WRITERS[fmt](model, raw, output)
        if fmt == "state_dict" and fresh is not None:  # fresh: checked above
            _check_state_dict(output, InferenceModel(fresh.cpu(), mean, std), raw, expected)
            check = "a freshly built network loaded from it gives the same outputs on a test batch"
        elif (loaded := load_exported(output, fmt)) is None:
            check = "outputs not compared: onnxruntime is not installed"
        else:
            check = f"max |diff| on a test batch: {(torch.as_tensor(loaded(raw)) - expected).abs().max().item():.2e}"
    inputs = "normalisation folded in" if model.normalize else "inputs as the model sees them"
    rank_zero_info(f"Exported {fmt} to {output} (eval mode, {inputs}; {check})")
    return output


def _check_state_dict(output: Path, fresh: InferenceModel, raw: Tensor, expected: Tensor) -> None:
    """Load the ``state_dict`` file at ``output`` into ``fresh`` and require exactly ``expected`` on
    ``raw``; otherwise remove the file and raise ``RuntimeError``."""
    try:
        fresh.load_state_dict(torch.load(output, weights_only=True))
        got = fresh.eval()(raw)
    except Exception:
        output.unlink()
        raise
    if not torch.equal(got, expected):
        output.unlink()
        raise RuntimeError(
            f"the state_dict export does not reproduce the network: loaded into a freshly built "
            f"{type(fresh.backbone).__name__}, its outputs on a test batch differ by up to "
            f"{(got - expected).abs().max().item():.2e} (state outside state_dict(), or a tensor the "
            f"file misses or garbles); removed {output}"
        )


def _write_state_dict(model: InferenceModel, raw: Tensor, output: Path) -> None:
    torch.save(model.state_dict(), output)


def _write_torchscript(model: InferenceModel, raw: Tensor, output: Path) -> None:
    with warnings.catch_warnings():  # the user asked for the format; the README says it is deprecated
        warnings.filterwarnings(
            "ignore", message=r".*torch\.jit.* is deprecated", category=DeprecationWarning
        )
        torch.jit.save(torch.jit.trace(model, raw), str(output))


def _dynamic_batch() -> tuple[dict[int, object]]:
    return ({0: torch.export.Dim("batch")},)


def _write_exported_program(model: InferenceModel, raw: Tensor, output: Path) -> None:
    torch.export.save(torch.export.export(model, (raw,), dynamic_shapes=_dynamic_batch()), str(output))


def _write_onnx(model: InferenceModel, raw: Tensor, output: Path) -> None:
    torch.onnx.export(
        model,
        (raw,),
        str(output),
        dynamo=True,
        dynamic_shapes=_dynamic_batch(),
        external_data=False,
        verbose=False,
    )


_WRITERS = {
    "state_dict": _write_state_dict,
    "torchscript": _write_torchscript,
    "exported_program": _write_exported_program,
    "onnx": _write_onnx,
}


def load_exported(
    path: Path, fmt: str, template: nn.Module | None = None
) -> Callable[[Tensor], Tensor] | None:
    """Load an exported file with torch (and onnxruntime for ONNX) only: a callable mapping raw inputs to
    logits (``None`` for ONNX without onnxruntime: the model is checked, not run). ``state_dict`` needs
    ``template``, a module of the same structure to load the tensors into."""
    if fmt == "state_dict":
        if template is None:
            raise ValueError("loading a state_dict export needs a template module")
        template.load_state_dict(torch.load(path, weights_only=True))
        return template.eval()
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=r".*torch\.jit.* is deprecated", category=DeprecationWarning
            )
            return torch.jit.load(str(path)).eval()
    if fmt == "exported_program":
        return torch.export.load(str(path)).module()
    if fmt == "onnx":
        import onnx  # the onnx extra

        onnx.checker.check_model(onnx.load(str(path)))
        if importlib.util.find_spec("onnxruntime") is None:
            return None  # structure checked; running it needs onnxruntime
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: torch.from_numpy(session.run(None, {name: x.numpy()})[0])
    raise ConfigError(f"unknown export format {fmt!r}; valid formats are: {', '.join(FORMATS)}")


def _onnx_available() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxscript"))

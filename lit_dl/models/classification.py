"""The classification task base that every lit_dl recipe builds on."""

from __future__ import annotations

import os
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch import Tensor, nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from lit_dl._lightning import attached_trainer
from lit_dl.checkpointing.init_from import load_initial_weights
from lit_dl.checkpointing.integrity import verify_checksums
from lit_dl.checkpointing.loading import refuse_unsafe_pickles
from lit_dl.data.host_reads import HostCopy
from lit_dl.errors import ConfigError
from lit_dl.models.order_invariant_mean import OrderInvariantMean
from lit_dl.models.publish import publish_epoch_metrics, publish_step_metrics
from lit_dl.models.run_length import fit_schedules_to_run, run_length
from lit_dl.models.speed import (
    CompileMode,
    check_channels_last,
    check_compile,
    compile_module,
    to_channels_last,
)
from lit_dl.models.train_window import (
    FewBatchesWarningFilter,
    OpenWindow,
    closes_log_window,
    ends_epoch_or_run,
)
from lit_dl.nn.init_marks import mark_initialized
from lit_dl.optim import (
    LRScaling,
    check_all_grouped,
    check_lr_scaling,
    check_scaling_reaches_the_schedule,
    decay_parameters,
    default_decay_rule,
    global_batch_size,
    l1_penalty,
    lr_scale_factor,
    parameter_groups,
    scale_optimizer_lr,
)
from lit_dl.optim.checks import check_lr_scheduler_arguments, check_optimizer_factory

__all__ = ["ClassificationTask"]

_EVAL_STAGES = ("val", "test")


class ClassificationTask(L.LightningModule):
    """Supervised classification: loss, metrics, parameter groups and optimizer wiring.

    Recipes subclass it and only say how to build the network (:meth:`build_backbone`). The network
    returns logits; the loss is cross-entropy on logits (log-softmax inside, numerically stable);
    softmax appears only in :meth:`predict_step`.

    Logged names: ``train/loss`` (the training objective, :meth:`compute_loss`: with label smoothing
    when set) and ``train/l1`` (the L1 term, when on), each the mean over the micro-batches since the
    last write (every ``trainer.log_every_n_steps`` optimizer steps and at each epoch end),
    ``{val,test}/{loss,acc,f1}`` (epoch means over every sample of the split, the same on one process
    and on N; accuracy is micro, F1 is macro over classes). ``val/loss`` and ``test/loss`` are the
    plain cross-entropy whatever ``label_smoothing`` or :meth:`compute_loss` say, so the curves of two
    recipes, and a checkpoint monitor on ``val/loss``, compare the same quantity (timm validates the
    same way).

    Extension points for subclasses: :meth:`build_backbone`, :meth:`compute_loss`,
    :meth:`should_decay`.

    Args:
        num_classes: Number of classes; labels are ``0 .. num_classes - 1``.
        optimizer: Optimizer factory, called with the parameter groups. From YAML:
            ``{class_path: torch.optim.SGD, init_args: {lr: 0.1, momentum: 0.9, weight_decay: 5e-4}}``.
            Its ``weight_decay`` applies to the ``decay`` group only.
        lr_scheduler: Optional LR scheduler factory, called with the optimizer.
        scheduler_interval: Step the scheduler after every ``"epoch"`` or every optimizer ``"step"``.
        l1: Weight λ of the L1 penalty ``λ·Σ|w|`` over the parameters that get weight decay; 0 is off.
        label_smoothing: Label smoothing of the cross-entropy, in ``[0, 1)``.
        decay_embeddings: Give embedding tables weight decay too (off by default).
        lr_scaling: Scale the configured LR with the global batch size before the scheduler is
            built: ``"none"``, ``"linear"`` (x global/base; Goyal et al., 2017) or ``"sqrt"``
            (x √(global/base); Krizhevsky, 2014). The global batch is the per-device batch
            (the datamodule's ``batch_size``, else the train loader's) * devices * nodes *
            ``accumulate_grad_batches``. The rule has a limit: SGD's step cannot grow past the loss
            curvature's stability bound, so scaling stops helping past some batch size (Goyal et al.,
            2017; Shallue et al., 2019). See :mod:`lit_dl.optim.lr_scaling`.
        base_batch_size: The global batch size the configured LR was tuned for (>= 1).
        channels_last: Keep conv kernels and 4-D inputs in channels_last (NHWC) memory format, the
            layout cuDNN's tensor-core convolutions use; conv recipes only. Outputs match the default
            layout up to float rounding.
        compile: ``"off"`` or a ``torch.compile`` mode applied to the backbone in ``configure_model``
            (under DDP too): ``"default"``, ``"reduce-overhead"`` (CUDA graphs: cuts the per-step
            launch cost of small batches), ``"max-autotune"``, ``"max-autotune-no-cudagraphs"``.
            Checkpoints keep the plain parameter names, so they load with any setting.
        compile_backend: The ``torch.compile`` backend; the modes above apply to ``"inductor"`` only
            (``"eager"`` or ``"aot_eager"`` help to tell a compiler bug from a model bug).
        init_from: Start the network from the weights in this file (a Lightning checkpoint or a state
            dict, loaded with ``weights_only=True``): fine-tuning. The epoch counter, optimizer and
            schedule start fresh; loaded modules are left alone by ``WeightInit``. See
            :mod:`lit_dl.checkpointing.init_from`. Not stored in the checkpoint's hyperparameters (the run's
            ``config.yaml`` records it).
        init_skip_head: Keep the classifier head as built instead of loading it (a different
            ``num_classes``).
        init_strict: Every network tensor must be in the file with its shape (``False``: load what matches).

    A module restored by ``load_from_checkpoint`` is in training mode: call ``.eval()`` before
    inference (dropout and BatchNorm behave differently in training). For serving, ``lit-dl export``
    writes an eval-mode file that needs neither lit_dl nor Lightning.
    """

    def __init__(
        self,
        num_classes: int,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        lr_scheduler: LRSchedulerCallable | None = None,
        scheduler_interval: Literal["epoch", "step"] = "epoch",
        l1: float = 0.0,
        label_smoothing: float = 0.0,
        decay_embeddings: bool = False,
        lr_scaling: LRScaling = "none",
        base_batch_size: int = 256,
        channels_last: bool = False,
        compile: CompileMode = "off",
        compile_backend: str = "inductor",
        init_from: str | None = None,
        init_skip_head: bool = False,
        init_strict: bool = True,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ConfigError(f"num_classes must be >= 2, got {num_classes!r}")
        if scheduler_interval not in ("epoch", "step"):
            raise ConfigError(f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
        if l1 < 0:
            raise ConfigError(f"l1 must be >= 0, got {l1!r}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
        check_lr_scaling(lr_scaling, base_batch_size)
        check_scaling_reaches_the_schedule(lr_scaling, lr_scheduler)
        check_compile(compile, compile_backend)
        check_optimizer_factory(optimizer)
        check_lr_scheduler_arguments(lr_scheduler)
        # Collects the arguments of every subclass __init__ on the stack too, so recipes need not
        # call it themselves. The optimizer and scheduler factories stay out: a callable in the
        # checkpoint breaks `torch.load(weights_only=True)`, and the run folder's config.yaml already
        # records them; a checkpoint rebuilds the network, not the optimizer settings.
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler", "init_from"])
        self.num_classes = num_classes
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        self.scheduler_interval = scheduler_interval
        self.l1 = float(l1)
        self.label_smoothing = float(label_smoothing)
        self.decay_embeddings = decay_embeddings
        self.lr_scaling = lr_scaling
        self.base_batch_size = int(base_batch_size)
        self._l1_params: list[nn.Parameter] | None = None
        self._window = OpenWindow()
        self._train_windows: list[tuple[list[str], int, HostCopy]] = []  # closed, not yet written
        self._few_batches_filter = FewBatchesWarningFilter()

        self.eval_metrics = nn.ModuleDict(
            {
                stage: MetricCollection(
                    {
                        "acc": MulticlassAccuracy(num_classes, average="micro"),
                        "f1": MulticlassF1Score(num_classes, average="macro"),
                    },
                    prefix=f"{stage}/",
                )
                for stage in _EVAL_STAGES
            }
        )
        self.eval_loss = nn.ModuleDict({stage: OrderInvariantMean() for stage in _EVAL_STAGES})
        # Stages whose metric states fit's validation has just reset (outside inference mode) and nothing
        # has updated since: the next epoch start need not reset them again (about 0.3 ms each).
        self._eval_fresh: set[str] = set()
        self.backbone = self.build_backbone()
        self.channels_last = bool(channels_last)
        self.compile_mode = compile
        self.compile_backend = compile_backend
        self._compiled_backbone = None  # set by configure_model; kept out of the module tree (speed.py)
        if self.channels_last:
            check_channels_last(self.backbone, type(self).__name__)
            self.backbone.to(memory_format=torch.channels_last)
        if init_from is not None:
            load_initial_weights(self.backbone, init_from, skip_head=init_skip_head, strict=init_strict)

    # ----------------------------------------------------------------------------------------------
    # Extension points
    def build_backbone(self) -> nn.Module:
        """Return the network mapping a batch of inputs to logits ``(batch, num_classes)``.

        Called at the end of ``ClassificationTask.__init__``; ``self.hparams`` then holds the
        arguments of every ``__init__`` in the class chain, so a recipe reads its own options from
        there (``self.hparams.hidden_sizes``).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement build_backbone()")

    def compute_loss(self, logits: Tensor, target: Tensor) -> Tensor:
        """The training objective's data loss, a scalar (``train/loss``). Default: cross-entropy on
        logits with label smoothing. Validation and test log the plain cross-entropy instead."""
        return F.cross_entropy(logits, target, label_smoothing=self.label_smoothing)

    def should_decay(self, module: nn.Module, param_name: str, param: nn.Parameter) -> bool:
        """Whether ``module.<param_name>`` gets weight decay (and the L1 term).

        Default: weight matrices and conv kernels yes; biases, norm parameters no; embeddings only
        when ``decay_embeddings``. See :mod:`lit_dl.optim.param_groups`.
        """
        return default_decay_rule(module, param_name, param, decay_embeddings=self.decay_embeddings)

    # ----------------------------------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        if self.channels_last:
            x = to_channels_last(x)
        if self._compiled_backbone is not None:
            return self._compiled_backbone(x)
        return self.backbone(x)

    def configure_model(self) -> None:
        """Compile the backbone once (``compile``), before the strategy wraps the module (DDP)."""
        if self.compile_mode != "off" and self._compiled_backbone is None:
            # object.__setattr__: an nn.Module attribute would register the wrapper as a submodule
            # and put its `_orig_mod.` names into every state_dict.
            object.__setattr__(
                self,
                "_compiled_backbone",
                compile_module(self.backbone, self.compile_mode, self.compile_backend),
            )

    def decay_parameter_names(self) -> dict[str, bool]:
        """Every trainable parameter of the task (metrics left out) mapped to whether it gets weight decay."""
        return decay_parameters(self, self.should_decay, exclude=(Metric,))

    def parameter_groups(self) -> list[dict[str, Any]]:
        """Named optimizer groups over every trainable parameter of the task, not only the backbone
        (metrics and buffers left out): ``decay`` and ``no_decay`` (``weight_decay=0``), empty ones
        dropped. An override must still place every trainable parameter in a group."""
        return parameter_groups(self, self.should_decay, exclude=(Metric,))

    def l1_term(self) -> Tensor:
        """``l1 · Σ|w|`` over the parameters that get weight decay (zero tensor when ``l1 == 0``)."""
        if self.l1 == 0:
            return torch.zeros((), device=self.device)
        if self._l1_params is None:
            # the optimizer's own split: L1 reaches exactly the weights that decay
            decay = [g for g in self.parameter_groups() if g["name"] == "decay"]
            self._l1_params = [p for g in decay for p in g["params"]]
        return self.l1 * l1_penalty(self._l1_params)

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        data_classes = getattr(datamodule, "num_classes", None)
        if data_classes is not None and data_classes > self.num_classes:
            raise ConfigError(
                f"model num_classes={self.num_classes} is smaller than the {data_classes} classes in the "
                f"data ({type(datamodule).__name__} has labels 0..{data_classes - 1}); "
                f"set model.init_args.num_classes to at least {data_classes}"
            )

    def per_device_batch_size(self) -> int:
        """Training samples per device and step: the datamodule's ``batch_size``, else the train loader's.

        Raises:
            ConfigError: neither says its batch size.
        """
        datamodule = getattr(self.trainer, "datamodule", None)
        size = getattr(datamodule, "batch_size", None)
        if not isinstance(size, int):
            loader = self.trainer.train_dataloader
            if loader is None and (datamodule is not None or is_overridden("train_dataloader", self)):
                # Not set up yet: the data source's public hook builds one (the fit loop's own
                # set-up must wait until a checkpoint's loader state can be restored).
                loader = (datamodule or self).train_dataloader()
            size = getattr(loader, "batch_size", None)
        if not isinstance(size, int) or isinstance(size, bool):
            raise ConfigError(
                f"lr_scaling={self.lr_scaling!r} needs the per-device batch size, but neither the datamodule "
                f"({type(datamodule).__name__}) nor the train dataloader has an integer batch_size"
            )
        return size

    def global_batch_size(self) -> int:
        """Samples behind one optimizer step: per-device batch * devices * nodes * accumulation."""
        trainer = self.trainer
        per_device = self.per_device_batch_size()
        return global_batch_size(
            per_device, trainer.num_devices, trainer.num_nodes, trainer.accumulate_grad_batches
        )

    def _scale_lr(self, optimizer: torch.optim.Optimizer) -> None:
        """Apply ``lr_scaling`` to every group, print it once and record it with the run's hyperparameters.

        The record goes to the loggers (``hparams.yaml``), not to ``self.hparams``: checkpoints pass
        ``self.hparams`` back to ``__init__`` in ``load_from_checkpoint``.
        """
        if self.lr_scaling == "none":
            return
        batch = self.global_batch_size()
        factor = lr_scale_factor(self.lr_scaling, batch, self.base_batch_size)
        changes = scale_optimizer_lr(optimizer, factor)
        old = ", ".join(dict.fromkeys(f"{o:g}" for o, _ in changes))  # one value per distinct LR
        new = ", ".join(dict.fromkeys(f"{n:g}" for _, n in changes))
        rank_zero_info(
            f"lr scaled {self.lr_scaling} x{round(factor, 4)!r} (global batch {batch} / base "
            f"{self.base_batch_size}): {old} -> {new}"
        )
        names = [str(group.get("name", i)) for i, group in enumerate(optimizer.param_groups)]
        record = {
            "lr_scaled/global_batch_size": batch,
            "lr_scaled/factor": factor,
            **{f"lr_scaled/lr/{name}": lr for name, (_, lr) in zip(names, changes, strict=True)},
        }
        for logger in self.loggers:
            logger.log_hyperparams(record)

    def run_length(self, interval: Literal["step", "epoch"] = "step") -> float:
        """Scheduler steps in the whole fit: optimizer steps or epochs (``inf``: endless). Valid from
        ``on_train_start`` on; never loads data itself. See :func:`lit_dl.models.run_length.run_length`."""
        return run_length(self.trainer, interval)

    def configure_optimizers(self) -> Any:
        """Optimizer on :meth:`parameter_groups`, its LR scaled (``lr_scaling``), then the scheduler."""
        groups = self.parameter_groups()
        check_all_grouped(self, groups, exclude=(Metric,))
        optimizer = self.optimizer_factory(groups)
        self._scale_lr(optimizer)
        if self.lr_scheduler_factory is None:
            return optimizer
        scheduler = self.lr_scheduler_factory(optimizer)  # total_steps=None: filled in on_train_start
        config: dict[str, Any] = {"scheduler": scheduler, "interval": self.scheduler_interval, "frequency": 1}
        monitor = getattr(scheduler, "monitor", None)  # lightning.pytorch.cli.ReduceLROnPlateau
        if monitor is not None:
            config["monitor"] = monitor
        return {"optimizer": optimizer, "lr_scheduler": config}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # load_from_checkpoint then fit: WeightInit must not overwrite the loaded weights.
        mark_initialized(self.backbone, "checkpoint")

    @classmethod
    def load_from_checkpoint(
        cls, checkpoint_path: Any, *args: Any, weights_only: bool = True, **kwargs: Any
    ) -> Any:
        """Lightning's ``load_from_checkpoint`` with ``weights_only=True`` (a file cannot run code; an
        unsafe one is refused with one line, :class:`~lit_dl.errors.UnsafeCheckpointError`), after a
        check of its content against the checksums inside it (:class:`~lit_dl.errors.CorruptCheckpointError`).
        The module comes back in training mode: call ``.eval()`` before inference."""
        if isinstance(checkpoint_path, (str, os.PathLike)):
            verify_checksums(checkpoint_path)
        with refuse_unsafe_pickles(checkpoint_path):
            return super().load_from_checkpoint(checkpoint_path, *args, weights_only=weights_only, **kwargs)

    # ----------------------------------------------------------------------------------------------
    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        loss = self.compute_loss(self(x), y)
        terms = {"train/loss": loss}
        if self.l1 > 0:
            terms["train/l1"] = self.l1_term()
            loss = loss + terms["train/l1"]
        self._log_train_window(terms, batch_idx)
        return loss

    def _log_train_window(self, terms: dict[str, Tensor], batch_idx: int) -> None:
        """Log the mean of each term over the micro-batches since the last write.

        ``self.log`` costs about as much as a small model's whole step, and reading a CUDA value on the
        host stalls the GPU: so the terms are summed on the device and, when a window closes
        (:mod:`lit_dl.models.train_window`: every ``log_every_n_steps`` optimizer steps and at the end
        of each epoch and of the run), their means start a non-blocking copy to the host
        (:class:`lit_dl.data.host_reads.HostCopy`). A window is written once its copy has arrived, at a
        later step (on the CPU: at once); the last window of an epoch or of the run is waited for at
        once (one sync per epoch), so epoch-end hooks see it. A window goes to the loggers
        at the window's own last optimizer step (rank 0's value under DDP, as Lightning's step logging
        does), to ``callback_metrics`` as CPU tensors and to the progress bar as numbers, read
        without a sync (:func:`~lit_dl.models.publish.publish_step_metrics`: what ``self.log``
        would do, without its cost). The value averages every micro-batch of the window, a steadier
        signal than the last batch alone. Under ``Trainer(barebones=True)``, which turns logging off,
        nothing is summed or written.
        """
        trainer = attached_trainer(self)
        if trainer is not None and trainer.barebones:
            return
        self._window.add(terms)
        if trainer is None:
            return  # no Trainer to log to: a unit test
        last = False
        if closes_log_window(trainer, batch_idx):
            names, means = self._window.close()
            self._train_windows.append((names, trainer.global_step, HostCopy(means)))
            # The epoch's (or run's) last window is written now, waiting for it (one sync per epoch):
            # epoch-end hooks (a scheduler or checkpoint monitoring train/loss) read it.
            last = ends_epoch_or_run(trainer, batch_idx)
        self._write_train_windows(wait=last)

    def _write_train_windows(self, wait: bool) -> None:
        """Write the closed windows whose values have reached the host (all of them when ``wait``) to
        the loggers, ``callback_metrics`` and the progress bar (``train/loss``)."""
        while self._train_windows and (wait or self._train_windows[0][2].ready()):
            names, step, copy = self._train_windows.pop(0)
            means = dict(zip(names, copy.get().unbind(), strict=True))  # 0-dim CPU tensors
            publish_step_metrics(self.trainer, means, prog_bar=("train/loss",))
            for logger in self.loggers:
                logger.log_metrics(means, step=step)

    def on_fit_start(self) -> None:
        self._few_batches_filter.enter()

    def on_train_start(self) -> None:
        self._few_batches_filter.exit()
        self._train_windows = []
        # Here, not in configure_optimizers: the train loader (and a resumed loader state) is set up.
        fit_schedules_to_run(self.trainer)

    def teardown(self, stage: str) -> None:
        self._few_batches_filter.exit()

    def on_train_epoch_start(self) -> None:
        self._window.reset()

    def on_train_epoch_end(self) -> None:
        self._write_train_windows(wait=True)  # normally none left: see training_step

    def on_train_end(self) -> None:
        self._write_train_windows(wait=True)

    def _eval_step(self, batch: Any, stage: str) -> None:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)  # not compute_loss: see the class docstring
        # Only metric updates here (device-side, no sync); the values are logged once per epoch.
        self.eval_loss[stage].update(loss.detach(), weight=y.shape[0])
        self.eval_metrics[stage].update(logits.detach(), y)

    def _log_eval_epoch(self, stage: str) -> None:
        """Log the epoch's metrics, once per epoch (logging from every step would cost one ``self.log``
        per metric and batch, as much as a small model's forward pass).

        ``compute`` reduces across processes (torchmetrics syncs its states under DDP; every sample
        was seen by exactly one rank, see :class:`~lit_dl.data.EvalShardSampler`), so every rank logs
        the same, already reduced value. The validation inside ``fit`` computes the values and
        publishes them itself (:func:`~lit_dl.models.publish.publish_epoch_metrics`: the same names,
        values and logger steps as ``self.log``, without its cost: about 0.8 ms a call on a small CPU,
        three calls an epoch, and Lightning's merge of the results at every batch end). ``validate``
        and ``test`` log the metric objects through ``self.log``, which Lightning computes and resets
        at the epoch end and also returns from ``trainer.validate``/``trainer.test`` and prints;
        logging the objects (not their values) is how Lightning is told that no ``sync_dist`` is
        needed.
        """
        trainer = attached_trainer(self)
        if trainer is not None and trainer.barebones:
            return  # logging is off (self.log would only warn): nothing to compute
        if trainer is not None and trainer.state.fn == TrainerFn.FITTING:
            values = {f"{stage}/loss": self.eval_loss[stage].compute(), **self.eval_metrics[stage].compute()}
            self._reset_eval(stage)  # empty until the next epoch, as Lightning leaves logged metric objects
            self._eval_fresh.add(stage)
            publish_epoch_metrics(trainer, values)
            return
        self.log(f"{stage}/loss", self.eval_loss[stage], on_step=False, on_epoch=True, prog_bar=True)
        self.log_dict(self.eval_metrics[stage], on_step=False, on_epoch=True, prog_bar=True)

    def _reset_eval(self, stage: str) -> None:
        """Fresh metric states at the start of an evaluation epoch, made outside inference mode.

        ``trainer.validate`` runs under ``torch.inference_mode``, so states reset there are inference
        tensors, which a later ``fit`` (whose validation runs under ``no_grad``) may not update in place.
        """
        with torch.inference_mode(False):
            self.eval_loss[stage].reset()
            self.eval_metrics[stage].reset()

    def _start_eval(self, stage: str) -> None:
        """Empty metric states for an evaluation epoch: reset them unless fit's last validation epoch
        already did and nothing has run since (``validate`` and ``test`` leave inference tensors)."""
        if stage in self._eval_fresh:
            self._eval_fresh.discard(stage)
        else:
            self._reset_eval(stage)

    def on_validation_epoch_start(self) -> None:
        self._start_eval("val")

    def on_test_epoch_start(self) -> None:
        self._start_eval("test")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._log_eval_epoch("val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._log_eval_epoch("test")

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        """Class probabilities ``(batch, num_classes)``; the batch may be ``x`` or ``(x, y)``."""
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return torch.softmax(self(x), dim=-1)

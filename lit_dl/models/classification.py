"""The classification task base that every lit_dl recipe builds on."""

from __future__ import annotations

import abc
import copy
import math
from collections.abc import Mapping
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from lit_dl._lightning import attached_trainer
from lit_dl.checkpointing.checkpoint_fit import check_restore_fits
from lit_dl.checkpointing.init_from import load_initial_weights
from lit_dl.checkpointing.safe_loading import SafeLoading
from lit_dl.models.batch_lr import (
    factory_lr,
    per_device_batch_size,
    scale_lr_to_batch,
    set_base_lr,
    trainer_global_batch_size,
    tuned_changes,
)
from lit_dl.models.input_check import check_num_classes, check_task_arguments
from lit_dl.models.order_invariant_mean import OrderInvariantMean
from lit_dl.models.resume_rule import ResumeRule
from lit_dl.models.run_length import run_length
from lit_dl.models.speed import BackboneSpeed, CompileMode
from lit_dl.models.task_logging import TaskLogging
from lit_dl.nn.init_marks import mark_initialized
from lit_dl.optim import (
    LRScaling,
    check_all_grouped,
    check_lr_scaling,
    check_scaling_reaches_the_schedule,
    decay_parameters,
    default_decay_rule,
    l1_penalty,
    parameter_groups,
)
from lit_dl.optim.checks import (
    build_torch_optimizer_probe,
    check_lr_scheduler_arguments,
    check_optimizer_factory,
)

__all__ = ["ClassificationTask"]

_EVAL_STAGES = ("val", "test")


class ClassificationTask(SafeLoading, L.LightningModule, abc.ABC):
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
        lr_scaling: Scale the configured LR with the global batch size (:meth:`global_batch_size`)
            before the scheduler is built: ``"none"``, ``"linear"`` (x global/base; Goyal et al., 2017)
            or ``"sqrt"`` (x √(global/base); Krizhevsky, 2014). Past some batch size scaling stops
            helping (Shallue et al., 2019): see :mod:`lit_dl.optim.lr_scaling`.
        base_batch_size: The global batch size the configured LR was tuned for (>= 1).
        channels_last: Keep conv kernels and 4-D inputs in channels_last (NHWC) memory format, the
            layout cuDNN's tensor-core convolutions use; conv recipes only (:mod:`lit_dl.models.speed`).
        compile: ``"off"`` or a ``torch.compile`` mode applied to the backbone in ``configure_model``
            (under DDP too): ``"default"``, ``"reduce-overhead"`` (CUDA graphs: cuts the per-step
            launch cost of small batches), ``"max-autotune"``, ``"max-autotune-no-cudagraphs"``.
        compile_backend: The ``torch.compile`` backend; the modes above apply to ``"inductor"`` only.
        init_from: Start the network from the weights in this file (a checkpoint or a state dict):
            fine-tuning, with a fresh epoch counter, optimizer and schedule
            (:mod:`lit_dl.checkpointing.init_from`). The run's ``config.yaml`` records it, the
            checkpoint's hyperparameters do not.
        init_skip_head: Keep the classifier head as built instead of loading it (a different
            ``num_classes``).
        init_strict: Every network tensor must be in the file with its shape (``False``: load what matches).

    ``load_from_checkpoint`` loads with ``weights_only=True`` after a checksum check
    (:class:`~lit_dl.checkpointing.SafeLoading`); the module it returns is in training mode: call
    ``.eval()`` before inference (dropout and BatchNorm behave differently in training). For serving, ``lit-dl export``
    writes an eval-mode file that needs neither lit_dl nor Lightning.
    """

    # nn.ModuleDicts (so they move with the module and sync under DDP), typed by what they hold:
    # torch's ModuleDict is not generic.
    eval_metrics: Mapping[str, MetricCollection]
    eval_loss: Mapping[str, OrderInvariantMean]

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
        check_task_arguments(num_classes, scheduler_interval, l1, label_smoothing)
        check_lr_scaling(lr_scaling, base_batch_size)
        check_scaling_reaches_the_schedule(lr_scaling, lr_scheduler)
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
        self._lr: float | None = None  # set through `lr` (LearningRateFinder)
        # (lr, global batch when lr_scaling) that configure_optimizers built the optimizer with
        self._optimizer_inputs: tuple[float | None, int | None] | None = None

        self.eval_metrics = nn.ModuleDict(  # type: ignore[assignment]  # see the class annotation
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
        self.eval_loss = nn.ModuleDict(  # type: ignore[assignment]  # see the class annotation
            {stage: OrderInvariantMean() for stage in _EVAL_STAGES}
        )
        self.speed = BackboneSpeed(channels_last, compile, compile_backend)  # checked before the build
        self.task_logging = TaskLogging(self)  # when and how the values above reach the loggers
        self.resume_rule = ResumeRule()  # on fit --ckpt_path: the config says what trains
        self.backbone = self.build_backbone()
        self.speed.prepare(self.backbone, type(self).__name__)
        if init_from is not None:
            load_initial_weights(self.backbone, init_from, skip_head=init_skip_head, strict=init_strict)

    # ----------------------------------------------------------------------------------------------
    # Extension points
    @abc.abstractmethod
    def build_backbone(self) -> nn.Module:
        """Return the network mapping a batch of inputs to logits ``(batch, num_classes)``.

        Called at the end of ``ClassificationTask.__init__``; ``self.hparams`` then holds the
        arguments of every ``__init__`` in the class chain, so a recipe reads its own options from
        there (``self.hparams.hidden_sizes``). Abstract: a task without it cannot be built.
        """

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
        return self.speed.run(self.backbone, x)

    def __deepcopy__(self, memo: dict[int, Any]) -> ClassificationTask:
        """A copy with its own network, metrics and settings (the average that EMA and SWA keep is one),
        sharing the optimizer and scheduler callables: those are configuration, never state, and
        through jsonargparse's instantiator they reach the CLI, its Trainer and whatever the Trainer
        holds (Lightning's PyTorchProfiler's record functions, which cannot be copied)."""
        for factory in (self.optimizer_factory, self.lr_scheduler_factory):
            memo.setdefault(id(factory), factory)
        copied = type(self).__new__(type(self))
        memo[id(self)] = copied
        copied.__setstate__(copy.deepcopy(self.__getstate__(), memo))  # what copy.deepcopy does
        return copied

    def configure_model(self) -> None:
        """Compile the backbone once (``compile``), before the strategy wraps the module (DDP)."""
        self.speed.compile_once(self.backbone)  # kept out of the module tree: see lit_dl.models.speed

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
        check_num_classes(getattr(self.trainer, "datamodule", None), self.num_classes)

    def per_device_batch_size(self) -> int:
        """Training samples per device and step: the datamodule's ``batch_size``, else the train loader's.

        Raises:
            ConfigError: neither says its batch size.
        """
        return per_device_batch_size(self, self.lr_scaling)

    def global_batch_size(self) -> int:
        """Samples behind one optimizer step: per-device batch * devices * nodes * accumulation."""
        return trainer_global_batch_size(self.trainer, self.per_device_batch_size())

    def run_length(self, interval: Literal["step", "epoch"] = "step") -> float:
        """Scheduler steps in the whole fit: optimizer steps or epochs (``inf``: endless). Valid from
        ``on_train_start`` on; never loads data itself. See :func:`lit_dl.models.run_length.run_length`."""
        return run_length(self.trainer, interval)

    @property
    def lr(self) -> float | None:
        """The learning rate the optimizer starts from, before ``lr_scaling``: the optimizer factory's
        ``lr`` (``None`` when it names none), unless set here.

        Lightning's ``LearningRateFinder`` tunes a module's ``lr``: set during a fit (its
        ``on_fit_start``), the optimizer and its scheduler are built again with it before training
        starts (:meth:`on_fit_start`), and ``lit-dl`` writes it into the run's ``config.yaml``. Groups
        whose LR differs from the factory's (a subclass's per-group LR) keep their ratio to it.
        """
        if self._lr is not None:
            return self._lr
        return factory_lr(self.optimizer_factory)

    @lr.setter
    def lr(self, value: float) -> None:
        value = float(value)
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"lr must be a finite number > 0, got {value!r}")
        self._lr = value

    def configure_optimizers(self) -> Any:
        """Optimizer on :meth:`parameter_groups` (at :attr:`lr` when set), its LR scaled
        (``lr_scaling``), then the scheduler."""
        groups = self.parameter_groups()
        check_all_grouped(self, groups, exclude=(Metric,))
        optimizer = self.optimizer_factory(groups)
        if self._lr is not None:
            set_base_lr(optimizer, factory_lr(self.optimizer_factory), self._lr)
        batch = None
        if self.lr_scaling != "none":
            batch = self.global_batch_size()
            scale_lr_to_batch(optimizer, self.lr_scaling, batch, self.base_batch_size, self.loggers)
        self._optimizer_inputs = (self._lr, batch)
        if self.lr_scheduler_factory is None:
            return optimizer
        scheduler = self.lr_scheduler_factory(optimizer)  # total_steps=None: filled in on_train_start
        config: dict[str, Any] = {"scheduler": scheduler, "interval": self.scheduler_interval, "frequency": 1}
        monitor = getattr(scheduler, "monitor", None)  # lightning.pytorch.cli.ReduceLROnPlateau
        if monitor is not None:
            config["monitor"] = monitor
        return {"optimizer": optimizer, "lr_scheduler": config}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        trainer = attached_trainer(self)
        if trainer is not None:  # a Trainer that only connected the module (no fit) has no run to record
            self.resume_rule.on_save_checkpoint(trainer, checkpoint)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        trainer = attached_trainer(self)
        if trainer is not None:  # a Trainer's restore (load_from_checkpoint takes its own `strict`)
            # weights and, on a resumed fit, the optimizer state must fit: one line, not a traceback
            check_restore_fits(
                checkpoint,
                self,
                trainer,
                lambda: build_torch_optimizer_probe(self.optimizer_factory, self.parameter_groups()),
            )
        # load_from_checkpoint then fit: WeightInit must not overwrite the loaded weights.
        mark_initialized(self.backbone, "checkpoint")
        self.resume_rule.on_load_checkpoint(checkpoint)

    # ----------------------------------------------------------------------------------------------
    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        loss = self.compute_loss(self(x), y)
        terms = {"train/loss": loss}
        if self.l1 > 0:
            terms["train/l1"] = self.l1_term()
            loss = loss + terms["train/l1"]
        self.task_logging.log_train_window(terms, batch_idx)
        return loss

    def on_fit_start(self) -> None:
        self.task_logging.on_fit_start()
        self._rebuild_optimizers_if_tuned()  # first: the resume rule keeps what it built
        self.resume_rule.on_fit_start(self.trainer)  # before Lightning restores the optimizer

    def _rebuild_optimizers_if_tuned(self) -> None:
        """Build the optimizer and scheduler again if the LR (``LearningRateFinder``) or, with
        ``lr_scaling``, the global batch (``BatchSizeFinder``) changed since :meth:`configure_optimizers`.

        The tuners run in their ``on_fit_start``, before this hook and before a checkpoint's optimizer
        state is restored; the LR finder writes its LR into the groups only, which the scheduler (built
        on the old LR) would undo at its first step."""
        if self._optimizer_inputs is None:
            return
        now = (self._lr, self.global_batch_size() if self.lr_scaling != "none" else None)
        changes = tuned_changes(self._optimizer_inputs, now, factory_lr(self.optimizer_factory))
        if changes:
            rank_zero_info(f"Optimizer and LR scheduler built again for the tuned values: {changes}")
            self.trainer.strategy.setup_optimizers(self.trainer)

    def on_train_start(self) -> None:
        self.task_logging.on_train_start()
        # Here, not in configure_optimizers: the train loader (and a resumed loader state) is set up.
        # Resumed: the config's hyperparameters and schedules at the restored step (lit_dl.models.resume_rule).
        self.resume_rule.on_train_start(self.trainer)

    def teardown(self, stage: str) -> None:
        self.task_logging.teardown()

    def on_train_epoch_start(self) -> None:
        self.task_logging.on_train_epoch_start()

    def on_train_epoch_end(self) -> None:
        self.task_logging.write_train_windows(wait=True)  # normally none left: see training_step

    def on_train_end(self) -> None:
        self.task_logging.write_train_windows(wait=True)

    def _eval_step(self, batch: Any, stage: str) -> None:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)  # not compute_loss: see the class docstring
        # Only metric updates here (device-side, no sync); the values are logged once per epoch.
        self.eval_loss[stage].update(loss.detach(), weight=y.shape[0])
        self.eval_metrics[stage].update(logits.detach(), y)

    def on_validation_epoch_start(self) -> None:
        self.task_logging.start_eval("val")

    def on_test_epoch_start(self) -> None:
        self.task_logging.start_eval("test")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self.task_logging.log_eval_epoch("val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self.task_logging.log_eval_epoch("test")

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        """Class probabilities ``(batch, num_classes)``; the batch may be ``x`` or ``(x, y)``."""
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return torch.softmax(self(x), dim=-1)

"""Checks on the built model, optimizer and config: no data, no forward pass.

Each check takes a :class:`~lit_dl.doctor.Context` and returns one :class:`~lit_dl.doctor.Finding`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import cast

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm, _NormBase
from torch.nn.modules.dropout import _DropoutNd

from lit_dl.callbacks import WeightInit
from lit_dl.doctor.context import Context
from lit_dl.doctor.findings import Finding
from lit_dl.doctor.schedule import check_schedule_vs_run
from lit_dl.doctor.structure import (
    final_module,
    is_pass_through,
    is_weight_layer,
    leaves,
    normalised_layers,
    sequential_runs,
)
from lit_dl.models import ClassificationTask
from lit_dl.nn.layers import EMBEDDING_TYPES, NORM_TYPES, saturates
from lit_dl.optim import named_parameters_with_modules

__all__ = ["STATIC_CHECKS", "run_static_checks"]

_PROBABILITY_HEADS = (nn.Softmax, nn.LogSoftmax, nn.Softmax2d)
_COUPLED_L2 = (torch.optim.Adam, torch.optim.NAdam, torch.optim.RAdam, torch.optim.Adamax)
_INIT_FAMILIES = ("xavier", "kaiming", "orthogonal", "torch")  # schemes whose std is known; others: measured
SATURATING_RUN = 4
"""Saturating activations in a row (no norm between) from which ``saturating_stack`` warns."""
VARIANCE_BAND = (0.1, 10.0)
"""Bounds of the signal-variance factor over an unnormalised stack outside which ``init_vs_activation`` warns."""


def _opt(task: ClassificationTask, name: str, value: object) -> str | None:
    """``--model.init_args.<name> <value>`` when the recipe has that argument, else ``None``."""
    return f"--model.init_args.{name} {value}" if name in task.hparams else None


def _names(items: list[str], limit: int = 3) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def check_bias_before_norm(ctx: Context) -> Finding:
    """A Linear/Conv bias directly before a BatchNorm/InstanceNorm: the norm subtracts the mean, so
    the bias cancels and only wastes parameters (Ioffe & Szegedy, 2015, Sec. 3.2)."""
    hits, wasted = [], 0
    for run in sequential_runs(ctx.task.backbone, "backbone"):
        for (name, layer), (norm_name, norm) in itertools.pairwise(run):
            if is_weight_layer(layer) and layer.bias is not None and isinstance(norm, _NormBase):
                hits.append(f"{name} ({type(layer).__name__}) -> {norm_name} ({type(norm).__name__})")
                wasted += layer.bias.numel()
    if not hits:
        return Finding("bias_before_norm", "ok", "no bias feeds a BatchNorm/InstanceNorm directly")
    return Finding(
        "bias_before_norm",
        "warn",
        f"{len(hits)} layer(s) with a bias feed a batch/instance norm, which subtracts the mean and cancels "
        f"the bias ({wasted} wasted parameters): {_names(hits)}",
        "build these layers with bias=False; the norm's shift (beta) takes the bias's role",
        {"layers": hits, "wasted_parameters": wasted},
    )


def _kind(module: nn.Module, param: nn.Parameter) -> str | None:
    if isinstance(module, NORM_TYPES):
        return "norm"
    if isinstance(module, EMBEDDING_TYPES):
        return "embedding"
    if param.ndim <= 1:
        return "bias"
    return None


def check_decay_on_norms(ctx: Context) -> Finding:
    """Weight decay or the L1 term reaching norm, bias or embedding parameters (Loshchilov & Hutter,
    2019): read from the optimizer's own parameter groups, so any ``should_decay`` override counts."""
    owners = {id(p): (name, module, p) for name, module, _, p in named_parameters_with_modules(ctx.task)}
    decayed: dict[str, list[str]] = {}
    for group in ctx.optimizer.param_groups:
        if float(group.get("weight_decay", 0.0)) <= 0:
            continue
        for p in group["params"]:
            name, module, param = owners.get(id(p), ("?", None, p))
            kind = _kind(module, param) if module is not None else None
            if kind:
                decayed.setdefault(kind, []).append(name)
    l1_hits: list[str] = []
    if ctx.task.l1 > 0:
        l1_params = {id(p) for g in ctx.task.parameter_groups() if g["name"] == "decay" for p in g["params"]}
        l1_hits = [
            name
            for name, module, _, p in named_parameters_with_modules(ctx.task)
            if id(p) in l1_params and _kind(module, p)
        ]
    if not decayed and not l1_hits:
        return Finding("decay_on_norms", "ok", "weight decay and L1 reach weight matrices and kernels only")
    parts = [f"{len(v)} {k} parameter(s) ({_names(v, 2)})" for k, v in decayed.items()]
    found = "weight decay reaches " + "; ".join(parts) if parts else ""
    if l1_hits:
        found += ("; " if found else "") + (
            f"the L1 term reaches {len(l1_hits)} norm, bias or embedding parameter(s) ({_names(l1_hits, 2)})"
        )
    if set(decayed) == {"embedding"} and ctx.task.decay_embeddings:
        fix = "--model.init_args.decay_embeddings false (rare rows are pulled to zero between their updates)"
    elif type(ctx.task).should_decay is not ClassificationTask.should_decay:
        fix = (
            f"{type(ctx.task).__name__}.should_decay returns True for them: let it fall back to "
            "super().should_decay for norms, biases and embeddings"
        )
    else:
        fix = "give the optimizer task.parameter_groups() (decay / no_decay), not a flat parameter list"
    return Finding("decay_on_norms", "warn", found, fix, {k: v for k, v in decayed.items()} | {"l1": l1_hits})


def check_params_in_optimizer(ctx: Context) -> Finding:
    """Trainable parameters of the task that no optimizer group holds never change."""
    held = {id(p) for g in ctx.optimizer.param_groups for p in g["params"]}
    missing = [name for name, _, _, p in named_parameters_with_modules(ctx.task) if id(p) not in held]
    total = sum(p.numel() for _, _, _, p in named_parameters_with_modules(ctx.task))
    if not missing:
        return Finding(
            "params_in_optimizer", "ok", f"all {total} trainable parameters are in an optimizer group"
        )
    return Finding(
        "params_in_optimizer",
        "error",
        f"{len(missing)} trainable parameter tensor(s) are in no optimizer group and will never train: "
        f"{_names(missing)}",
        "build the optimizer on the whole module's parameters (parameter_groups over the task), or set "
        "requires_grad=False on what should stay fixed",
        {"missing": missing},
    )


def check_softmax_head(ctx: Context) -> Finding:
    """A Softmax/LogSoftmax at the end of the network while the loss is cross-entropy on logits:
    the loss then applies a second (log-)softmax, and gradients shrink."""
    if type(ctx.task).compute_loss is not ClassificationTask.compute_loss:
        return Finding(
            "softmax_head",
            "skip",
            f"{type(ctx.task).__name__} overrides compute_loss; its loss may want probabilities",
        )
    name, last = final_module(ctx.task.backbone, "backbone")
    if isinstance(last, _PROBABILITY_HEADS):
        return Finding(
            "softmax_head",
            "error",
            f"the network ends in {type(last).__name__} ({name}) but the loss is cross-entropy on logits, "
            "which applies log-softmax itself: the outputs are squashed twice and the gradients shrink",
            "remove the final (Log)Softmax from build_backbone; predict_step already returns probabilities",
            {"module": name, "type": type(last).__name__},
        )
    if next(last.children(), None) is not None:  # not a Sequential: its last step is not known statically
        return Finding(
            "softmax_head",
            "ok",
            f"no (Log)Softmax at the end of the module tree ({type(last).__name__}); the outputs themselves are "
            "checked on a batch (softmax_output)",
        )
    return Finding("softmax_head", "ok", f"the network ends in {type(last).__name__} ({name}): logits")


def check_saturating_stack(ctx: Context) -> Finding:
    """Four or more saturating activations (sigmoid/tanh-like, registered ones too:
    :func:`lit_dl.nn.layers.saturates`) in a row with no norm between them: gradients vanish
    (Glorot & Bengio, 2010; Ioffe & Szegedy, 2015)."""
    run: list[str] = []
    worst: list[str] = []
    for name, module in leaves(ctx.task.backbone, "backbone"):
        if isinstance(module, NORM_TYPES):
            run = []
        elif saturates(module):
            run.append(f"{name} ({type(module).__name__})")
            if len(run) > len(worst):
                worst = run[:]
    if len(worst) < SATURATING_RUN:
        return Finding(
            "saturating_stack", "ok", f"longest unnormalised run of saturating activations: {len(worst)}"
        )
    fix = (
        _opt(ctx.task, "norm", "before") or "insert a norm layer (BatchNorm/LayerNorm) before each activation"
    )
    alt = _opt(ctx.task, "activation", "relu")
    return Finding(
        "saturating_stack",
        "warn",
        f"{len(worst)} saturating activations in a row without a norm layer ({worst[0]} ... {worst[-1]}): "
        "their derivatives (at most 1/4 for sigmoid) multiply and the early layers' gradients vanish",
        fix + (f", or {alt}" if alt else ""),
        {"run": worst},
    )


def _fans(weight: torch.Tensor) -> tuple[int, int]:
    receptive = math.prod(weight.shape[2:]) if weight.ndim > 2 else 1
    return weight.shape[1] * receptive, weight.shape[0] * receptive


def _family(scheme: str) -> str:
    return scheme.split("_")[0]


def _std(scheme: str, gain: float, fan_in: int, fan_out: int, mode: str = "fan_in") -> float:
    """Standard deviation of a weight initialised by ``scheme`` (as WeightInit applies it)."""
    if _family(scheme) == "xavier":
        return gain * math.sqrt(2.0 / (fan_in + fan_out))
    if _family(scheme) == "kaiming":
        return gain / math.sqrt(fan_in if mode == "fan_in" else fan_out)
    if scheme == "orthogonal":
        return gain / math.sqrt(max(fan_in, fan_out))
    return 1.0 / math.sqrt(3.0 * fan_in)  # torch_default: kaiming_uniform_(a=sqrt(5))


def check_init_vs_activation(ctx: Context) -> Finding:
    """Weight scale vs the activation each layer feeds: He for ReLU-like, Xavier for tanh/sigmoid
    (He et al., 2015; Glorot & Bengio, 2010). Reads the configured WeightInit's plan when there is
    one, the weights' own statistics otherwise. Layers whose output is normalised before the next
    layer are left out (the norm resets the scale)."""
    backbone = ctx.task.backbone
    target = {r.layer: r for r in WeightInit(scheme="auto").plan(backbone)}
    planned = {r.layer: r for r in ctx.weight_init.plan(backbone)} if ctx.weight_init is not None else {}
    normalised = normalised_layers(backbone)
    layers = dict(leaves(backbone))
    ratios: dict[str, float] = {}  # variance of the layer's weights / the variance its activation wants
    mismatched: list[str] = []
    for name, rec in target.items():
        # gain is None for the "default" scheme only, i.e. for a layer feeding something unknown
        if rec.activation in ("none", "unknown") or name in normalised or rec.gain is None:
            continue
        weight = cast(torch.Tensor, layers[name].weight)  # a layer WeightInit plans has a weight
        fan_in, fan_out = _fans(weight)
        want = _std(rec.scheme, rec.gain, fan_in, fan_out)
        plan = planned.get(name)
        if plan is not None and plan.gain is not None and _family(plan.scheme) in _INIT_FAMILIES:
            have = _std(plan.scheme, plan.gain, fan_in, fan_out, plan.mode or "fan_in")
            if _family(plan.scheme) != _family(rec.scheme):
                mismatched.append(f"backbone.{name} ({plan.scheme} -> {rec.activation})")
        else:
            have = float(weight.detach().float().std())
        ratios[name] = max((have / want) ** 2, 1e-12)  # a zero-initialised layer stops the signal
    # Signal variance factor accumulated over unnormalised layers, checked where it enters a layer.
    worst, product = 1.0, 1.0
    chain: list[str] = []
    worst_chain: list[str] = []
    for name, module in leaves(backbone):
        if isinstance(module, NORM_TYPES):
            product, chain = 1.0, []
        elif is_weight_layer(module):
            if abs(math.log(product)) > abs(math.log(worst)):
                worst, worst_chain = product, chain[:]
            if name in ratios:
                product *= ratios[name]
                chain.append(name)
    if abs(math.log(product)) > abs(math.log(worst)):
        worst, worst_chain = product, chain[:]
    source = (
        f"WeightInit(scheme={ctx.weight_init.scheme})"
        if ctx.weight_init is not None
        else "the weights as built"
    )
    data = {"variance_ratio": ratios, "worst_factor": worst, "chain": worst_chain, "mismatched": mismatched}
    fix = (
        "use WeightInit scheme auto (configs/callbacks/default.yaml)"
        if ctx.weight_init is not None
        else "--config configs/callbacks/weight_init.yaml (He init for ReLU-like layers, Xavier for tanh/sigmoid)"
    )
    low, high = VARIANCE_BAND
    if mismatched or not low <= worst <= high:
        parts = []
        if mismatched:
            parts.append(
                f"{len(mismatched)} unnormalised layer(s) get the init of another activation: {_names(mismatched)}"
            )
        if not low <= worst <= high:
            per = ", ".join(f"{n} {ratios[n]:.2f}x" for n in worst_chain[:4])
            parts.append(
                f"with {source} the signal variance changes {worst:.3g}x over {len(worst_chain)} unnormalised "
                f"layer(s) ({per} of what their activation needs)"
            )
        return Finding("init_vs_activation", "warn", "; ".join(parts), fix, data)
    return Finding(
        "init_vs_activation",
        "ok",
        f"{source}: {len(ratios)} unnormalised layer(s) checked, worst variance factor {worst:.3g}x",
        data=data,
    )


def check_dropout_before_batchnorm(ctx: Context) -> Finding:
    """Dropout feeding a BatchNorm (only activations/pooling between): the norm's running variance,
    measured with dropout on, is wrong at test time (Li et al., 2019, "Understanding the Disharmony
    between Dropout and Batch Normalization by Variance Shift")."""
    hits = []
    for run in sequential_runs(ctx.task.backbone, "backbone"):
        for i, (name, module) in enumerate(run):
            if not isinstance(module, _DropoutNd) or module.p == 0:
                continue
            for later_name, later in run[i + 1 :]:
                if isinstance(later, _BatchNorm):
                    hits.append(f"{name} (p={module.p}) -> {later_name}")
                    break
                if not is_pass_through(later):
                    break
    if not hits:
        return Finding("dropout_before_batchnorm", "ok", "no dropout feeds a BatchNorm")
    return Finding(
        "dropout_before_batchnorm",
        "warn",
        f"{len(hits)} dropout layer(s) feed a BatchNorm, whose running variance then differs between "
        f"training and test (variance shift): {_names(hits)}",
        "move the dropout after the last BatchNorm (e.g. just before the classifier head)"
        + (f", or {_opt(ctx.task, 'dropout', 0.0)}" if _opt(ctx.task, "dropout", 0.0) else ""),
        {"pairs": hits},
    )


def check_lr_vs_batch(ctx: Context) -> Finding:
    """``lr_scaling: none`` with a global batch different from ``base_batch_size``: the LR was tuned
    for another batch (linear rule: Goyal et al., 2017; square-root rule: Krizhevsky, 2014)."""
    task = ctx.task
    if ctx.trainer is None:
        return Finding("lr_vs_batch", "skip", "needs the Trainer to know the global batch size")
    batch = ctx.global_batch_size()
    lr = ctx.peak_lrs()[0]
    if task.lr_scaling != "none":
        return Finding(
            "lr_vs_batch", "ok", f"lr_scaling={task.lr_scaling}: LR {lr:g} for the global batch {batch}"
        )
    if task.base_batch_size == ctx.default_of("base_batch_size"):
        return Finding(
            "lr_vs_batch",
            "ok",
            f"LR {lr:g} taken as tuned for the global batch {batch} (base_batch_size not set, lr_scaling none)",
        )
    ratio = batch / task.base_batch_size
    data = {"lr": lr, "global_batch": batch, "base_batch_size": task.base_batch_size, "ratio": ratio}
    if 0.5 <= ratio <= 2.0:
        return Finding(
            "lr_vs_batch",
            "ok",
            f"global batch {batch} is within 2x of base_batch_size {task.base_batch_size}",
            data=data,
        )
    factor = 1 / ratio
    direction = "high" if factor > 1 else "low"
    return Finding(
        "lr_vs_batch",
        "warn",
        f"LR {lr:g} was tuned for a global batch of {task.base_batch_size} (base_batch_size) but this run's is "
        f"{batch}, with lr_scaling none: the LR is {max(factor, 1 / factor):.3g}x too {direction} by the linear rule "
        f"(it would be {lr * ratio:.3g}; sqrt rule {lr * math.sqrt(ratio):.3g})",
        "--model.init_args.lr_scaling linear (or sqrt for Adam-type optimizers)",
        data,
    )


def check_adam_coupled_decay(ctx: Context) -> Finding:
    """Adam with ``weight_decay``: an L2 term in the gradient, rescaled by Adam's per-weight step, so
    the decay is weakest on the weights that move most; AdamW decouples it (Loshchilov & Hutter, 2019)."""
    opt = ctx.optimizer
    decays = [float(g.get("weight_decay", 0.0)) for g in opt.param_groups]
    coupled = isinstance(opt, _COUPLED_L2) and not any(
        g.get("decoupled_weight_decay") for g in opt.param_groups
    )
    if not coupled or max(decays, default=0.0) <= 0:
        return Finding(
            "adam_coupled_decay", "ok", f"{type(opt).__name__} with weight_decay {max(decays, default=0.0):g}"
        )
    return Finding(
        "adam_coupled_decay",
        "warn",
        f"{type(opt).__name__} with weight_decay={max(decays):g} adds a coupled L2 term that Adam's scaling "
        "weakens on the weights with large gradients; AdamW was probably meant",
        "--config configs/optimizer/adamw.yaml (or --model.init_args.optimizer.class_path torch.optim.AdamW)",
        {"optimizer": type(opt).__name__, "weight_decay": max(decays)},
    )


def check_num_classes(ctx: Context) -> Finding:
    """``num_classes`` of the model vs the classes the datamodule reports."""
    datamodule = getattr(ctx.trainer, "datamodule", None) if ctx.trainer is not None else None
    data_classes = getattr(datamodule, "num_classes", None)
    model_classes = ctx.task.num_classes
    if not isinstance(data_classes, int):
        return Finding(
            "num_classes", "skip", "the datamodule does not report num_classes (see the batch check)"
        )
    data = {"model": model_classes, "data": data_classes}
    fix = f"--model.init_args.num_classes {data_classes}"
    if data_classes > model_classes:
        return Finding(
            "num_classes",
            "error",
            f"model num_classes={model_classes} < {data_classes} classes in the data",
            fix,
            data,
        )
    if data_classes < model_classes:
        return Finding(
            "num_classes",
            "warn",
            f"model num_classes={model_classes} > {data_classes} classes in the data: "
            f"{model_classes - data_classes} logit(s) are never a target and the loss at init is off",
            fix,
            data,
        )
    return Finding("num_classes", "ok", f"{model_classes} classes in the model and in the data", data=data)


STATIC_CHECKS: tuple[Callable[[Context], Finding], ...] = (
    check_num_classes,
    check_softmax_head,
    check_bias_before_norm,
    check_decay_on_norms,
    check_params_in_optimizer,
    check_saturating_stack,
    check_init_vs_activation,
    check_dropout_before_batchnorm,
    check_lr_vs_batch,
    check_schedule_vs_run,
    check_adam_coupled_decay,
)
"""Every static check, in the order ``lit-dl doctor`` reports them."""


def run_static_checks(ctx: Context) -> list[Finding]:
    """Run :data:`STATIC_CHECKS` on ``ctx``.

    A check that raises becomes a ``skip`` finding under its name, with the exception as the reason:
    a check that cannot read a recipe says nothing about the recipe, so it neither hides the other
    checks nor fails the run (exit status 1 means pitfalls found).
    """
    findings = []
    for check in STATIC_CHECKS:
        name = check.__name__.removeprefix("check_")
        try:
            findings.append(check(ctx))
        except Exception as err:  # one check that cannot run must not hide the others
            findings.append(Finding(name, "skip", f"could not run: {type(err).__name__}: {err}"))
    return findings

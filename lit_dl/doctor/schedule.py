"""Schedule length vs run length, from the LR curve the built scheduler actually produces.

The scheduler is copied (sharing the parameters, not the optimizer's groups) and stepped through the
run and beyond, in the unit the Trainer steps it (epochs or optimizer steps). The curve tells whether
the schedule restarts inside the run (cosine with ``T_max`` shorter than the run), ends early and
leaves the LR at its floor, raises (``OneCycleLR`` stepped past ``total_steps``), or is cut off by
the end of the run while the LR is still high. Nothing is read from the config text.

For ``lit-dl doctor --ckpt_path`` the curve is the one ``fit --ckpt_path`` trains: the config's
schedule, fitted to the run and continued at the checkpoint's step (:mod:`lit_dl.models.resume_rule`);
the finding says where it resumes and at which LR, and a checkpoint already at the run's end is an
warning (nothing is left to train).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings

from torch.optim import lr_scheduler

from lit_dl.doctor.context import Context
from lit_dl.doctor.findings import Finding

__all__ = ["check_schedule_vs_run", "lr_curve"]

_CYCLIC = (lr_scheduler.CosineAnnealingWarmRestarts, lr_scheduler.CyclicLR)
_LENGTH_ATTRS = ("T_max", "total_steps", "total_iters")
_MAX_EXTRA_STEPS = 100_000


def lr_curve(
    scheduler: lr_scheduler.LRScheduler, steps: int, run: tuple[float, str] | None = None
) -> tuple[list[float], Exception | None]:
    """The first group's LR after 0, 1, ..., ``steps`` scheduler steps of a copy of ``scheduler``;
    stops early at the error a step raises (returned with the curve so far).

    ``run`` (length, unit) is handed to the copy's ``fit_to_run`` first, as the task does at
    ``on_train_start`` (lit_dl's schedules take their length from the run when it is left unset)."""
    params = {id(p): p for g in scheduler.optimizer.param_groups for p in g["params"]}
    shadow = copy.deepcopy(scheduler, memo=dict(params))  # the groups are copied, the tensors shared
    lrs = [float(shadow.optimizer.param_groups[0]["lr"])]
    fit = getattr(shadow, "fit_to_run", None)
    if run is not None and callable(fit):
        try:
            fit(run[0], unit=run[1])
        except ValueError as err:  # ConfigError: e.g. a warmup longer than the run
            return lrs, err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()"
        for _ in range(steps):
            try:
                shadow.step()
            except Exception as err:  # e.g. OneCycleLR past total_steps
                return lrs, err
            lrs.append(float(shadow.optimizer.param_groups[0]["lr"]))
    return lrs, None


def _fix(scheduler: lr_scheduler.LRScheduler, run: int, unit: str) -> str:
    for attr in _LENGTH_ATTRS:
        if getattr(scheduler, attr, None) is not None:
            return f"--model.init_args.lr_scheduler.init_args.{attr} {run} (the run's length in {unit})"
    return f"make the schedule as long as the run: {run} {unit}"


def check_schedule_vs_run(ctx: Context) -> Finding:
    """Does the LR schedule span the run: not shorter (restart, floor, crash), not longer (cut off)?
    With ``ctx.resume_step``: from the step a resumed fit continues it at."""
    finding = _check_schedule_vs_run(ctx)
    start = ctx.resume_step
    if not start or finding.status == "skip" or "run_length" not in finding.data:
        return finding
    run, unit = finding.data["run_length"], finding.data["unit"]
    data = {**finding.data, "resume_at": start}
    if start >= run:
        return Finding(
            finding.check,
            "warn",
            f"the checkpoint is at {unit[:-1]} {start} of the run's {run}: a resumed fit has nothing left to train",
            "lengthen the run (--trainer.max_epochs or --trainer.max_steps)",
            data,
        )
    assert ctx.scheduler is not None  # the finding has a run length
    lrs, _ = lr_curve(ctx.scheduler, start, (run, unit))
    data["lr_at_resume"] = lrs[start] if start < len(lrs) else None
    resumed = f"; resumed at {unit[:-1]} {start}" + (f" with lr {lrs[start]:.3g}" if start < len(lrs) else "")
    return dataclasses.replace(finding, found=finding.found + resumed, data=data)


def _check_schedule_vs_run(ctx: Context) -> Finding:
    name = "schedule_vs_run"
    sched = ctx.scheduler
    if sched is None:
        return Finding(name, "ok", "no LR scheduler: constant LR")
    kind = type(sched).__name__
    if isinstance(sched, lr_scheduler.ReduceLROnPlateau):
        return Finding(name, "skip", f"{kind} follows the monitored metric; it has no fixed length")
    length = ctx.run_length()
    if length is None or math.isinf(length[0]):
        return Finding(name, "skip", "the run has no fixed length (no Trainer, or no max_epochs/max_steps)")
    run, unit = math.ceil(length[0]), length[1]
    window = run + min(9 * run, _MAX_EXTRA_STEPS) + 1
    lrs, err = lr_curve(sched, window, (run, unit))
    data = {
        "scheduler": kind,
        "run_length": run,
        "unit": unit,
        "lr_start": lrs[0],
        "lr_at_run_end": lrs[min(run, len(lrs)) - 1],
    }
    if err is not None and len(lrs) - 1 < run:
        return Finding(
            name,
            "error",
            f"{kind} raises at scheduler step {len(lrs)} of the run's {run} ({unit}): {err}",
            _fix(sched, run, unit),
            data,
        )
    used = lrs[:run]  # the LR of each epoch/step of the run
    peak_at = next(t for t, lr in enumerate(used) if lr >= max(used) * (1 - 1e-6))  # first peak, ulps aside
    low_at = min(range(peak_at, len(used)), key=used.__getitem__)
    drop = used[peak_at] - used[low_at]
    climb = max(used[low_at:]) - used[low_at]
    if drop > 0 and climb > 0.1 * drop and not isinstance(sched, _CYCLIC):
        data.update(low_at=low_at, lr_low=used[low_at], lr_climbs_to=max(used[low_at:]))
        return Finding(
            name,
            "error",
            f"{kind} is shorter than the run: the LR falls to {used[low_at]:.3g} at {unit[:-1]} {low_at} of {run} "
            f"and then climbs back to {max(used[low_at:]):.3g}",
            _fix(sched, run, unit),
            data,
        )
    peak = max(lrs)
    top = next(t for t, lr in enumerate(lrs) if lr >= peak * (1 - 1e-9))  # recursive forms drift by ulps
    floor = min(lrs[top:])
    if math.isclose(floor, peak, rel_tol=1e-9):
        return Finding(name, "ok", f"{kind} never lowers the LR below its peak {peak:.3g}", data=data)
    # The schedule ends where the LR first reaches its lowest value after the peak (then stays or restarts).
    # (An LR below a millionth of the peak counts as the end: geometric decays never reach their floor.)
    end = next(t for t in range(top, len(lrs)) if lrs[t] <= max(floor * (1 + 1e-6), floor + 1e-6 * peak))
    if end == len(lrs) - 1 and err is None:
        frac = used[-1] / peak
        if frac > 0.5 or top >= run:
            return Finding(
                name,
                "warn",
                f"{kind} is longer than the run: the LR peaks at {unit[:-1]} {top}, ends the run at {frac:.0%} of "
                f"its peak and is still decaying after {len(lrs) - 1} {unit}",
                _fix(sched, run, unit),
                data,
            )
        return Finding(
            name,
            "ok",
            f"{kind} decays without a fixed end; the LR ends the run at {frac:.1%} of its peak",
            data=data,
        )
    data.update(schedule_length=end, lr_final=floor)
    if end < run and run - end > max(1, 0.05 * run):
        return Finding(
            name,
            "warn",
            f"{kind} ends at {unit[:-1]} {end} of the run's {run}: the last {run - end} {unit} run at its final "
            f"LR {floor:.3g}",
            _fix(sched, run, unit),
            data,
        )
    if end > run and (used[-1] - floor > 0.25 * (peak - floor) or top >= run):
        return Finding(
            name,
            "warn",
            f"{kind} is longer than the run: it peaks at {unit[:-1]} {top} and reaches its final LR {floor:.3g} at "
            f"{end}, but the run stops after {run} {unit} with the LR at {used[-1]:.3g} ({used[-1] / peak:.0%} of "
            "its peak)",
            _fix(sched, run, unit),
            data,
        )
    return Finding(
        name,
        "ok",
        f"{kind} spans the run ({run} {unit}; the LR reaches its final {floor:.3g} at {end})",
        data=data,
    )

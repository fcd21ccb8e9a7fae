"""The doctor's static checks as a callback: warnings at the start of every fit."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.utilities import rank_zero_warn

from lit_dl.doctor.context import Context
from lit_dl.doctor.findings import Finding
from lit_dl.doctor.static import run_static_checks
from lit_dl.models import ClassificationTask

__all__ = ["DoctorCallback"]


class DoctorCallback(L.Callback):
    """Run the static checks of ``lit-dl doctor`` at the start of ``fit`` and warn about what they find.

    At ``on_fit_start`` the model is initialised and the optimizer and scheduler are built, so the
    checks see what training will use. Rank 0 only; ``ok`` and ``skip`` findings stay silent. The
    findings of the last fit are kept in :attr:`findings`. From YAML (appends to the callbacks)::

        trainer:
          callbacks+:
            - class_path: lit_dl.doctor.DoctorCallback
    """

    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or not isinstance(pl_module, ClassificationTask):
            return
        self.findings = run_static_checks(Context.from_trainer(pl_module, trainer))
        for f in self.findings:
            if f.status in ("warn", "error"):
                rank_zero_warn(f"lit-dl doctor: {f.check} ({f.status}): {f.found}. Fix: {f.fix}")

"""``lit-dl doctor``: check a recipe for the classic training pitfalls before it spends time.

Static checks read the built model, optimizer and scheduler (:data:`STATIC_CHECKS`); batch checks run
one forward/backward pass on a copy (:data:`BATCH_CHECKS`); probes train a copy briefly (overfit one
batch, LR finder). ``lit-dl doctor`` (:func:`lit_dl.cli.doctor.diagnose`) runs them all; :class:`DoctorCallback` runs the static ones at the
start of every fit.
"""

from lit_dl.doctor.batch import BATCH_CHECKS, BatchRecord, record_batch, run_batch_checks
from lit_dl.doctor.callback import DoctorCallback
from lit_dl.doctor.context import Context, copy_task
from lit_dl.doctor.findings import STATUSES, Finding, Status, exit_status, format_json, format_table
from lit_dl.doctor.probe import check_lr_find, check_overfit_batch
from lit_dl.doctor.schedule import check_schedule_vs_run, lr_curve
from lit_dl.doctor.static import STATIC_CHECKS, run_static_checks

__all__ = [
    "BATCH_CHECKS",
    "STATIC_CHECKS",
    "STATUSES",
    "BatchRecord",
    "Context",
    "DoctorCallback",
    "Finding",
    "Status",
    "check_lr_find",
    "check_overfit_batch",
    "check_schedule_vs_run",
    "copy_task",
    "exit_status",
    "format_json",
    "format_table",
    "lr_curve",
    "record_batch",
    "run_batch_checks",
    "run_static_checks",
]

"""What a doctor check reports (:class:`Finding`), and the table and JSON views of a list of them."""

from __future__ import annotations

import json
import textwrap
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["STATUSES", "Finding", "Status", "exit_status", "format_json", "format_table"]

Status = Literal["ok", "warn", "error", "skip"]
STATUSES: tuple[str, ...] = ("ok", "warn", "error", "skip")


@dataclass(frozen=True)
class Finding:
    """The result of one check.

    Attributes:
        check: Name of the check (``bias_before_norm``, ``init_loss``, ...).
        status: ``"ok"``, ``"warn"`` (probably a mistake), ``"error"`` (training will go wrong or
            fail) or ``"skip"`` (the check does not apply or cannot run here, with the reason).
        found: What was found, with the numbers.
        fix: How to fix it: a command-line override or a config/code edit; empty when ``ok``.
        data: The numbers behind ``found``, for tools (``--format json``).
    """

    check: str
    status: Status
    found: str
    fix: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {self.status!r}")


def exit_status(findings: list[Finding]) -> int:
    """``1`` when any finding is an error, else ``0`` (the ``lit-dl doctor`` exit status)."""
    return int(any(f.status == "error" for f in findings))


def format_table(findings: list[Finding], width: int = 100) -> str:
    """A text table: one row per finding (check, status, what was found), the fix on its own line."""
    name_w = max([len("check"), *(len(f.check) for f in findings)])
    indent = " " * (name_w + 10)
    lines = [f"{'check'.ljust(name_w)}  status  found / fix"]
    for f in findings:
        body = textwrap.wrap(f.found, max(40, width - len(indent))) or [""]
        lines.append(f"{f.check.ljust(name_w)}  {f.status.ljust(6)}  {body[0]}")
        lines += [indent + line for line in body[1:]]
        if f.fix:
            fix = textwrap.wrap(f"fix: {f.fix}", max(40, width - len(indent)))
            lines += [indent + line for line in fix]
    counts = {s: sum(f.status == s for f in findings) for s in STATUSES}
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(lines)


def format_json(findings: list[Finding]) -> str:
    """``{"findings": [...], "counts": {...}, "exit_status": 0|1}`` as indented JSON."""
    counts = {s: sum(f.status == s for f in findings) for s in STATUSES}
    payload = {
        "findings": [asdict(f) for f in findings],
        "counts": counts,
        "exit_status": exit_status(findings),
    }
    return json.dumps(payload, indent=2, default=float)

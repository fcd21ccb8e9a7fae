"""The shell blocks of the README and the docs that are marked runnable, and how to run and check them.

Markers are HTML comments (invisible on GitHub and in the built site), each on the line before a
fenced block:

- ``<!-- runnable -->`` before a ``bash`` block: each command is run, in order, in the page's
  temporary folder (where ``configs`` and ``scripts`` link to the repository's). ``lit-dl ...`` runs
  in-process through :func:`lit_dl.cli.main`; anything else runs in ``bash``.
  ``<!-- runnable overrides="--trainer.max_epochs=2" -->`` appends those arguments to every
  ``lit-dl fit`` (or ``python -m lit_dl fit``) of the block, to keep a long run short in the test;
  ``process`` runs ``lit-dl`` in its own process (DDP launches re-run the command line); ``exit=1``
  expects that exit status (default 0, or 2 where the expected output is a ``lit-dl: error:``).
- ``<!-- runnable -->`` before a ``console`` block: ``$ command`` lines are run; the lines after each
  are its expected output (``…`` in an expected line stands for any text, such as a run's own file
  name).
- ``<!-- output -->`` before a plain block: what the runnable block above printed; each line must
  appear in that output, numbers to the digits shown. ``<!-- output tolerance=0.005 -->`` compares
  each decimal number to within that distance instead (a metric whose last digits depend on the
  CPU's kernels). ``<!-- output illustrative -->`` is shown for orientation and not compared (a
  timing, a run's own file names).
- ``<!-- file -->`` before a block whose first line is ``# name.py`` (or ``# name.yaml``): the block is
  written to that file in the page's folder before the page's commands run.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

MARKER = re.compile(r"^<!--\s*(runnable|output|file)\b(.*?)-->\s*$")
FENCE = re.compile(r"^(`{3,})\s*([\w-]*)")
NUMBER = re.compile(r"[-+]?\d+\.\d+(?:e[-+]?\d+)?|[-+]?\d+(?:e[-+]?\d+)?", re.IGNORECASE)


@dataclass
class Block:
    kind: str  # runnable | output | file
    options: dict[str, str]
    language: str
    text: str
    line: int  # 1-based line of the block's opening fence

    @property
    def illustrative(self) -> bool:
        return "illustrative" in self.options

    @property
    def tolerance(self) -> float | None:
        """How far a decimal number may be from the one shown (``tolerance=``), or ``None``: to the digits shown."""
        value = self.options.get("tolerance")
        return float(value) if value else None


@dataclass
class Page:
    path: Path
    blocks: list[Block] = field(default_factory=list)

    @property
    def runnable(self) -> list[Block]:
        return [b for b in self.blocks if b.kind == "runnable"]


def _options(text: str) -> dict[str, str]:
    options = {}
    for token in shlex.split(text):
        key, _, value = token.partition("=")
        options[key] = value
    return options


def parse(path: Path) -> Page:
    """The marked blocks of a Markdown file, in order."""
    lines = path.read_text().splitlines()
    page = Page(path)
    i = 0
    while i < len(lines):
        match = MARKER.match(lines[i].strip())
        if match and i + 1 < len(lines) and (fence := FENCE.match(lines[i + 1])):
            ticks, language = fence.group(1), fence.group(2)
            end = i + 2
            while end < len(lines) and not lines[end].startswith(ticks):
                end += 1
            page.blocks.append(
                Block(
                    match.group(1), _options(match.group(2)), language, "\n".join(lines[i + 2 : end]), i + 2
                )
            )
            i = end + 1
            continue
        i += 1
    return page


def commands(block: Block) -> list[tuple[str, list[str]]]:
    """``(command, expected output lines)`` of a runnable block; continuation lines joined, comments dropped."""
    result: list[tuple[str, list[str]]] = []
    pending = ""
    for raw in block.text.splitlines():
        if block.language == "console":
            if raw.startswith("$ "):
                result.append((raw[2:].strip(), []))
            elif result and raw.strip():
                result[-1][1].append(raw)
            continue
        line = raw.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        command = (pending + line.strip()).strip()
        pending = ""
        command = re.sub(r"\s+#\s.*$", "", command)  # a trailing comment
        result.append((command, []))
    overrides = block.options.get("overrides", "")
    if overrides:
        result = [(f"{cmd} {overrides}" if _is_fit(cmd) else cmd, expected) for cmd, expected in result]
    return result


def _is_fit(command: str) -> bool:
    """A ``fit`` that trains (not one that only prints its help or its config)."""
    if "--print_config" in command or ".help" in command or " -h" in command:
        return False
    words = [w for w in command.split() if "=" not in w or w.startswith("-")]
    return words[:2] == ["lit-dl", "fit"] or words[:4] == ["python", "-m", "lit_dl", "fit"]


def _normalise(line: str) -> str:
    return " ".join(line.replace("│", " ").split())


def line_matches(expected: str, actual: str, tolerance: float | None = None) -> bool:
    """Whether ``actual`` shows ``expected``: same words, each number equal to the digits shown (each
    decimal number within ``tolerance`` of the one shown, where given)."""
    want, got = _normalise(expected), _normalise(actual)
    pattern = ""
    position = 0
    numbers = list(NUMBER.finditer(want))

    def literal(text: str) -> str:
        return ".*?".join(re.escape(part) for part in text.split("…"))

    for number in numbers:
        pattern += literal(want[position : number.start()]) + f"({NUMBER.pattern})"
        position = number.end()
    pattern += literal(want[position:])
    match = re.search(pattern, got, re.IGNORECASE)
    if match is None:
        return False
    for shown, value in zip(numbers, match.groups(), strict=True):
        text = shown.group(0)
        if tolerance is not None and "." in text:
            if abs(float(value) - float(text)) > tolerance:
                return False
        elif "." in text and "e" not in text.lower():
            decimals = len(text.split(".")[1])
            if round(float(value), decimals) != round(float(text), decimals):
                return False
        elif float(value) != float(text):
            return False
    return True


def missing_lines(expected: list[str], output: str, tolerance: float | None = None) -> list[str]:
    """The expected lines that no line of ``output`` shows (see :func:`line_matches`)."""
    actual = output.splitlines()
    return [
        line
        for line in expected
        if line.strip() and not any(line_matches(line, a, tolerance) for a in actual)
    ]

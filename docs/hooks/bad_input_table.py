"""mkdocs hook: the Errors page's table of bad input, generated from the test that checks each case.

``tests/cli/test_cli_bad_input.py`` holds its cases in module-level lists of ``pytest.param(subcommand,
arguments, message)``; every such list becomes one table here, so the page shows exactly what the
suite asserts (exit 2, one line containing the message) and cannot drift from it.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

MARKER = "<!-- bad-input-cases -->"
REPO = Path(__file__).resolve().parents[2]
CASES_MODULE = "tests.cli.test_cli_bad_input"


def _tables() -> list[tuple[str, list]]:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    module = importlib.import_module(CASES_MODULE)
    tables = []
    for name, value in vars(module).items():
        if name.startswith("_") or not isinstance(value, list) or not value:
            continue
        if all(type(item).__name__ == "ParameterSet" and len(item.values) == 3 for item in value):
            tables.append((name, value))
    return tables


def _cell(text: str) -> str:
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`"


def render() -> str:
    out = []
    total = 0
    for name, cases in _tables():
        out += [
            f"### {name.replace('_', ' ').capitalize()}",
            "",
            "| case | command | the one line contains |",
            "|---|---|---|",
        ]
        for case in cases:
            subcommand, arguments, message = case.values
            # "env:NAME=value" items are environment variables: shown before the command, as a shell runs it
            env = [arg.removeprefix("env:") for arg in arguments if arg.startswith("env:")]
            arguments = [arg for arg in arguments if not arg.startswith("env:")]
            command = " ".join([*env, "lit-dl", subcommand, "--config RECIPE", *arguments])
            out.append(f"| {case.id} | {_cell(command)} | {_cell(message)} |")
            total += 1
        out.append("")
    header = (
        f"{total} cases, each run by `{CASES_MODULE.replace('.', '/')}.py`: exit status 2, one line "
        "`lit-dl: error: ...` on stderr containing the text shown, and no run folder left behind. "
        "`RECIPE` is a tiny MLP recipe on synthetic data; names in braces are files the test writes "
        "(a missing path, a directory, a named pipe, an empty, truncated, text or pickled checkpoint, the "
        "recipe's own checkpoint `trained` and variants of it with one entry changed, a checkpoint plain "
        "Lightning wrote for another model, a text recipe's CSV files, ...)."
    )
    return "\n".join([header, "", *out])


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, render())

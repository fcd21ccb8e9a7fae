"""Every shell block marked runnable in the README and the docs runs as written, and shows what it prints.

See :mod:`tests.docs.runnable` for the markers. Each page runs in its own temporary folder, its blocks
in order (a page's ``test`` may use the checkpoint its ``fit`` wrote); ``lit-dl`` commands run
in-process, other commands in ``bash``.
"""

from __future__ import annotations

import glob
import io
import logging
import os
import shlex
import subprocess
import sys

import pytest
import torch

from lit_dl.cli import main
from tests.conftest import DOCUMENTED_THREADS, REPO
from tests.docs.runnable import Block, commands, line_matches, missing_lines, parse

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUNNABLE = [page for page in map(parse, PAGES) if page.runnable]


def _run_lit_dl(argv: list[str], capfd) -> tuple[int, str]:
    # Lightning's log handlers hold the stream they were made with, which fd capture does not see
    records = io.StringIO()
    handler = logging.StreamHandler(records)
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    for logger in loggers:
        logger.addHandler(handler)
    code = 0
    threads = torch.get_num_threads()
    torch.set_num_threads(DOCUMENTED_THREADS)  # as the page's numbers were measured
    try:
        main(argv)
    except SystemExit as exit_info:
        code = exit_info.code if isinstance(exit_info.code, int) else 1
    finally:
        torch.set_num_threads(threads)
        for logger in loggers:
            logger.removeHandler(handler)
    out, err = capfd.readouterr()
    return code, out + err + records.getvalue()


def _run(command: str, capfd, monkeypatch, in_process: bool = True) -> tuple[int, str]:
    tokens = shlex.split(command)
    env = {}
    while tokens and "=" in tokens[0] and not tokens[0].startswith("-"):
        key, _, value = tokens.pop(0).partition("=")
        env[key] = value
    simple = (
        in_process
        and tokens
        and tokens[0] == "lit-dl"
        and not any(t in ("&&", "|", ";", "||") for t in tokens)
    )
    if not simple:
        result = subprocess.run(
            ["bash", "-c", command],
            capture_output=True,
            text=True,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(REPO), os.getcwd()]),
                "OMP_NUM_THREADS": str(DOCUMENTED_THREADS),
            },
            timeout=900,
        )
        return result.returncode, result.stdout + result.stderr
    with monkeypatch.context() as patch:
        for key, value in env.items():
            if key == "PYTHONPATH":
                for entry in value.split(os.pathsep):
                    patch.syspath_prepend(os.path.abspath(entry))
            else:
                patch.setenv(key, value)
        argv = []
        for token in tokens[1:]:
            matches = sorted(glob.glob(token)) if any(c in token for c in "*?[") else []
            argv += matches or [token]
        return _run_lit_dl(argv, capfd)


def _expect_error(expected: list[str]) -> bool:
    return any(line.startswith("lit-dl: error:") for line in expected)


@pytest.mark.parametrize("page", RUNNABLE, ids=[p.path.relative_to(REPO).as_posix() for p in RUNNABLE])
def test_marked_commands_run_and_print_what_the_page_shows(page, tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").symlink_to(REPO / "configs")
    (tmp_path / "scripts").symlink_to(REPO / "scripts")
    (tmp_path / "tests").symlink_to(REPO / "tests")
    for block in page.blocks:
        if block.kind == "file":
            name = block.text.splitlines()[0].lstrip("# ").strip()
            (tmp_path / name).write_text(block.text + "\n")
    sys.modules.pop("my_project", None)
    output = ""
    for block in page.blocks:
        where = f"{page.path.name}:{block.line}"
        if block.kind == "runnable":
            output = ""
            for command, expected in commands(block):
                code, printed = _run(command, capfd, monkeypatch, in_process="process" not in block.options)
                output += printed
                wanted = int(block.options.get("exit") or (2 if _expect_error(expected) else 0))
                assert code == wanted, (
                    f"{where}: `{command}` exited {code}, expected {wanted}:\n{printed[-3000:]}"
                )
                missing = missing_lines(expected, printed)
                assert not missing, f"{where}: `{command}` did not print {missing}:\n{printed[-3000:]}"
        elif block.kind == "output" and not block.illustrative:
            missing = missing_lines(block.text.splitlines(), output, block.tolerance)
            assert not missing, f"{where}: the block above did not print {missing}:\n{output[-3000:]}"


def test_the_pages_mark_commands_to_run():
    assert sum(len(page.runnable) for page in RUNNABLE) >= 15


@pytest.mark.parametrize(
    ("expected", "actual", "matches"),
    [
        ("test/acc 0.967", "│ test/acc │ 0.9666666388511658 │", True),
        ("test/acc 0.968", "│ test/acc │ 0.9666666388511658 │", False),
        ("ratio 1.10x", "ratio 1.1049x", True),
        ("epochs=3 done", "epochs=4 done", False),
        ("lit-dl: error: lr=0.0, must be", "lit-dl: error: lr=0.0, must be a finite number > 0", True),
        ("checkpoint '…/epoch=….ckpt' was", "checkpoint 'a/b/epoch=4-step=95.ckpt' was", True),
    ],
    ids=["digits-shown", "other-digits", "trailing-word", "integer", "words", "ellipsis"],
)
def test_a_shown_line_matches_numbers_to_the_digits_shown(expected, actual, matches):
    assert line_matches(expected, actual) is matches


@pytest.mark.parametrize(
    ("expected", "actual", "matches"),
    [
        ("test/acc 0.975", "│ test/acc │ 0.9722222089767456 │", True),
        ("test/acc 0.975", "│ test/acc │ 0.9777777791023254 │", True),
        ("test/acc 0.975", "│ test/acc │ 0.9694444537162781 │", False),
        ("epochs=3 done", "epochs=4 done", False),  # integers stay exact
        ("test/acc 0.975", "│ test/f1 │ 0.975 │", False),
    ],
    ids=["below-within", "above-within", "outside", "integer", "other-words"],
)
def test_a_tolerance_compares_decimal_numbers_within_it(expected, actual, matches):
    assert line_matches(expected, actual, tolerance=0.005) is matches


def test_commands_join_continuations_drop_comments_and_take_overrides():
    block = Block(
        "runnable",
        {"overrides": "--trainer.max_epochs=1"},
        "bash",
        "# a comment\nlit-dl fit --config a.yaml \\\n    --x=1   # why\nlit-dl test --config a.yaml",
        1,
    )
    assert commands(block) == [
        ("lit-dl fit --config a.yaml --x=1 --trainer.max_epochs=1", []),
        ("lit-dl test --config a.yaml", []),
    ]

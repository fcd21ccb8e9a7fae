"""The README stays a front door and the docs pages stay in the site's navigation."""

from __future__ import annotations

import re

import yaml

from tests.conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_the_readme_is_a_front_door_of_at_most_12_kb():
    readme = (REPO / "README.md").read_text()
    assert len(readme.encode()) <= 12 * 1024
    for heading in ("## Two commands", "## A short tour", "## Documentation", "## Layout"):
        assert heading in readme
    assert 'pip install torch==2.13.0 -e ".[test]" && python -m pytest -q' in readme


def test_every_page_is_in_the_navigation_and_every_navigation_entry_exists():
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())

    def entries(nav):
        for item in nav:
            for value in item.values():
                yield from entries(value) if isinstance(value, list) else [value]

    listed = set(entries(config["nav"]))
    pages = {p.relative_to(REPO / "docs").as_posix() for p in (REPO / "docs").rglob("*.md")}
    pages -= {p for p in pages if p.startswith(("hooks/", "images/"))}
    assert listed == pages


def test_no_page_names_a_checkpoint_file_of_one_particular_run():
    # a command that names epoch=21-step=418.ckpt fails on every other run: use a glob or last.ckpt
    for page in PAGES:
        assert not re.search(r"epoch=\d+-step=\d+\.ckpt", page.read_text()), page.name

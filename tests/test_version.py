"""lit_dl's version has one source: pyproject.toml, read back through the installed package's metadata."""

from importlib.metadata import version

import tomllib

import lit_dl
from tests.conftest import REPO


def test_version_comes_from_the_package_metadata_which_pyproject_sets():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert lit_dl.__version__ == version("lit-dl") == project["version"]


def test_the_changelog_has_a_section_for_the_current_version():
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert f"## [{lit_dl.__version__}]" in changelog
    assert "## [Unreleased]" in changelog

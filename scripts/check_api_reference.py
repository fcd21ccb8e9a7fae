"""Check that the built docs' API reference documents every public name of lit_dl.

Public means a class or function listed in the ``__all__`` of a module the reference pages render (``docs/reference/*.md``,
one ``::: module`` each). Reads the site's ``objects.inv`` (written by mkdocstrings) and exits 1
listing what is missing.

    mkdocs build --strict && python scripts/check_api_reference.py site
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import sys
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def documented(site: Path) -> set[str]:
    """The object names in ``site/objects.inv`` (Sphinx inventory v2: four header lines, then zlib)."""
    raw = (site / "objects.inv").read_bytes()
    body = raw.split(b"\n", 4)[4]
    names = set()
    for line in zlib.decompress(body).decode().splitlines():
        names.add(line.split(" ", 1)[0])
    return names


def rendered_modules() -> list[str]:
    modules = []
    for page in sorted((REPO / "docs" / "reference").glob("*.md")):
        modules += re.findall(r"^::: ([\w.]+)\s*$", page.read_text(), re.MULTILINE)
    return modules


def public_names(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    return [
        f"{module_name}.{name}"
        for name in getattr(module, "__all__", [])
        if inspect.isclass(getattr(module, name)) or inspect.isfunction(getattr(module, name))
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the built site folder (mkdocs' site_dir)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    names = documented(args.site)
    modules = rendered_modules()
    expected = [name for module in modules for name in public_names(module)]
    missing = [name for name in expected if name not in names]
    for name in missing:
        print(f"not in the API reference: {name}")
    print(
        f"{len(expected) - len(missing)} of {len(expected)} public classes and functions of {len(modules)} modules documented"
    )
    return 1 if missing or not expected else 0


if __name__ == "__main__":
    sys.exit(main())

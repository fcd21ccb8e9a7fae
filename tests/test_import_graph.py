"""lit_dl's import graph: no cycle (function-local imports included), and the package root holds only
packages and the few modules the design names."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import lit_dl

PACKAGE = Path(lit_dl.__file__).parent
ROOT_MODULES = {"__init__.py", "__main__.py", "errors.py", "_lightning.py"}
# Private names of Lightning objects that only lit_dl/_lightning.py may reach.
PRIVATE_LIGHTNING = re.compile(
    r"\.(_logger_connector|_combined_loader|_save_checkpoint|_save_last_checkpoint|"
    r"_should_skip_saving_checkpoint|_should_save_on_train_epoch_end|_monitor_candidates|"
    r"_last_global_step_saved|_last_checkpoint_saved|_every_n_train_steps|_train_time_interval|"
    r"_every_n_epochs|_parse_ckpt_path|_trainer|_results|_checkpoint_connector|_data_connector|"
    r"_run_subcommand|_prepare_subcommand_parser)\b|\bbatch_progress\b"
)


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _edges(modules: dict[str, Path]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                if target in modules and target != name and not name.startswith(target + "."):
                    edges[name].add(target)
    return edges


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt, [*path, nxt])):
                return found
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_no_import_cycle():
    # a package's __init__ importing its own submodules is not a cycle; anything else is
    edges = _edges(_modules())
    for name in edges:
        edges[name] = {t for t in edges[name] if not t.startswith(name + ".")}
    assert _cycle(edges) is None, " -> ".join(_cycle(edges) or [])


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_package_root_holds_packages_and_the_named_modules_only():
    loose = {p.name for p in PACKAGE.glob("*.py")} - ROOT_MODULES
    assert not loose, f"modules at the package root: {sorted(loose)}"


def test_private_lightning_names_only_in_the_shim():
    hits = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "_lightning.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if "``" not in code and PRIVATE_LIGHTNING.search(code):
                hits.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert not hits, "\n".join(hits)

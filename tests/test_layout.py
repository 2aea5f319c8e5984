"""The code's layers: imports only go down, the ENN side needs neither SB3 nor W&B, every package ships."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO

# Lower layers first; a module may import its own layer and those before it, never a later one.
LAYERS = [
    ("gi_envs",),
    ("agents.seeds", "agents.report", "agents.config_files", "agents.configs", "agents.errors", "agents.outputs"),
    ("agents.enn",),
    ("agents.rl",),
    ("agents.experiments",),
    ("agents.cli", "agents.commands", "agents"),
]


def layer_of(module: str) -> int:
    """Index of the most specific layer prefix that `module` falls under."""
    best, length = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                best, length = index, len(prefix)
    return best


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in ("gi_envs", "agents"):
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imported_modules(path: Path) -> set[str]:
    """Every absolute module an import statement names, the lazy ones inside functions included."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def module_imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Each project module -> the project modules it imports (a name imported from a package counts as its
    submodule when there is one)."""
    graph = {}
    for module, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names if alias.name in modules}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module in modules:
                subs = {f"{node.module}.{alias.name}" for alias in node.names} & set(modules)
                targets |= subs or {node.module}
        graph[module] = targets - {module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the import graph (as a path that returns to its start), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_inside_a_subpackage() -> None:
    graph = {"agents.x.engine.matrix": {"agents.x.engine.local"}, "agents.x.engine.local": {"agents.x.engine.matrix"},
             "agents.x.engine.run": {"agents.x.engine.local"}}
    assert find_cycle(graph) == ["agents.x.engine.local", "agents.x.engine.matrix", "agents.x.engine.local"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_imports_itself_back_through_others() -> None:
    graph = module_imports({m: p for m, p in project_modules().items() if m != "agents"})  # the front door is lazy
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph) or [])}"


def test_only_the_command_line_layer_names_command_line_flags() -> None:
    """Library errors and docs name parameters; `agents.cli` maps them to flags (`agents.errors`)."""
    import argparse
    import re

    from agents.cli import build_parser

    subcommands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    flags = {flag for sub in subcommands.choices.values() for action in sub._actions for flag in action.option_strings
             if flag.startswith("--")}
    assert {"--out", "--resume", "--mlp-index", "--env-kwargs"} <= flags
    pattern = re.compile("|".join(rf"(?<![\w-]){re.escape(f)}(?![\w-])" for f in sorted(flags, key=len, reverse=True)))
    found = [f"{module}: {match.group()}" for module, path in project_modules().items()
             if module not in ("agents.cli", "agents.commands") for match in pattern.finditer(path.read_text())]
    assert not found, found


def test_imports_only_go_down() -> None:
    upward = []
    for module, path in project_modules().items():
        own = layer_of(module)
        assert own >= 0, f"{module} belongs to no layer of tests/test_layout.py"
        if module == "agents":  # the package's front door re-exports every layer (lazily above the ENN side)
            continue
        for imported in imported_modules(path):
            if imported.split(".")[0] in ("gi_envs", "agents") and imported != "agents" and layer_of(imported) > own:
                upward.append(f"{module} imports {imported}")
    assert not upward, upward


@pytest.mark.parametrize("forbidden", ["stable_baselines3", "sb3_contrib", "wandb"])
def test_the_enn_side_imports_neither_sb3_nor_wandb(forbidden: str) -> None:
    enn_modules = sorted(m for m in project_modules() if m == "agents.enn" or m.startswith("agents.enn."))
    assert len(enn_modules) >= 6
    for module, path in project_modules().items():
        if module in enn_modules:
            assert not any(name.split(".")[0] == forbidden for name in imported_modules(path)), module
    code = (f"import sys\nimport {', '.join(enn_modules)}\nfrom agents import ENN, ENNGuidance\n"
            f"print({forbidden!r} in sys.modules)")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "False", f"importing the ENN side loaded {forbidden}"


def test_every_package_is_listed_for_installation() -> None:
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {m for m, p in project_modules().items() if p.name == "__init__.py"} | {"agents.configs"}
    assert listed == found


def test_the_public_names_resolve() -> None:
    import agents

    for name in agents.__all__:
        assert getattr(agents, name) is not None, name
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        agents.nope  # noqa: B018

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
    ("agents.seeds", "agents.report", "agents.config_files", "agents.configs", "agents.errors"),
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

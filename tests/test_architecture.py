"""The package's structure: no import cycles, prediction without Lightning, a light top level."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import brainage

SRC = Path(brainage.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _import_graph() -> dict[str, set[str]]:
    """Module -> brainage modules it imports anywhere (top level or inside functions)."""
    mods = _modules()

    def owner(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in mods
                         else node.module for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                target = owner(name) if name.startswith("brainage") else None
                if target and target != mod:
                    graph[mod].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while (w := stack.pop()) != v:
                comp.append(w)
            if comp:
                found.append(sorted([v, *comp]))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))
    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    graph = _import_graph()
    assert len(graph) > 80 and "brainage.training.fit" in graph["brainage.api._training"]
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\n"
                          "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_prediction_and_the_run_format_load_no_lightning():
    loaded = _loaded_after("import brainage.inference.predictor, brainage.runs, brainage.api")
    assert "torch" in loaded and "lightning" not in loaded and "pytorch_lightning" not in loaded


def test_import_brainage_is_light():
    loaded = _loaded_after("import brainage")
    assert not {"torch", "lightning", "ants", "nibabel", "pandas"} & loaded



def test_the_command_line_loads_no_pandas():
    """``brainage --help`` stays instant: the argv rewrite (labels, BIDS App) is light too."""
    loaded = _loaded_after("import brainage.cli.main")
    assert not {"torch", "pandas", "numpy", "nibabel"} & loaded


def _readme_layers() -> list[str]:
    readme = (SRC.parents[1] / "README.md").read_text()
    block = readme.split("### Layers", 1)[1].split("```\n", 2)[1]
    return [re.split(r"\s{2,}", line.strip())[0] for line in block.splitlines() if line.strip()]


def _contract_layers() -> list[str]:
    config = tomllib.loads((SRC.parents[1] / "pyproject.toml").read_text())
    layers = next(c for c in config["tool"]["importlinter"]["contracts"]
                  if c["type"] == "layers")["layers"]
    return [layer.replace("brainage.", "") for layer in layers]


def test_readme_layer_diagram_is_the_enforced_one():
    readme, contract = _readme_layers(), _contract_layers()
    assert contract[0] == "cli" and contract[-1] == "errors" and len(contract) > 10
    assert readme == contract


def test_every_subpackage_and_top_level_module_has_a_layer():
    """A new package or module outside the contract would not be checked at all."""
    named = {n.strip() for layer in _contract_layers() for n in layer.split("|")}
    tops = {p.stem for p in SRC.glob("*.py") if p.stem not in {"__init__", "__main__"}}
    packages = {p.parent.name for p in SRC.glob("*/__init__.py")}
    assert (tops | packages) - named == set()

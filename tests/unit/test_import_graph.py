"""No import cycles inside verify/, visible or hidden.

Every import counts: at the top, inside functions (the usual way to hide a cycle) and under
TYPE_CHECKING. The graph is between modules; a package's __init__ is the package's module.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "verify"


def module_names(root: Path) -> dict[str, Path]:
    """Dotted name -> file for every module under the package folder `root`."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that module `name` imports, wherever the import statement is."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            # `import verify.a.b` binds verify but loads (and depends on) verify.a.b.
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                # `from verify.x import y`: the submodule y when there is one, else x itself.
                found.add(submodule if submodule in modules else base)
    return {target for target in found if target in modules and target != name}


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = module_names(root)
    return {name: imported(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return [*stack[stack.index(target) :], target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_verify_has_no_import_cycle():
    graph = import_graph(PACKAGE)
    assert {"verify", "verify.checks", "verify.workloads.runner"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def write(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "pkg"


def test_the_graph_sees_hidden_and_relative_imports(tmp_path):
    root = write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/sub/__init__.py": "from . import leaf\nCONSTANT = 1\n",
            "pkg/sub/leaf.py": "from ..sub import CONSTANT\n",
            "pkg/model.py": "def save():\n    from pkg.view import render\n",
            "pkg/view.py": "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    import pkg.model\n",
            "pkg/other.py": "from pkg import sub, model\nimport pkg.sub.leaf\n",
        },
    )
    graph = import_graph(root)
    assert graph["pkg.sub"] == {"pkg.sub.leaf"}
    assert graph["pkg.sub.leaf"] == {"pkg.sub"}
    assert graph["pkg.model"] == {"pkg.view"}
    assert graph["pkg.view"] == {"pkg.model"}
    assert graph["pkg.other"] == {"pkg.sub", "pkg.model", "pkg.sub.leaf"}
    cycle = find_cycle(graph)
    assert cycle in (
        ["pkg.model", "pkg.view", "pkg.model"],
        ["pkg.sub", "pkg.sub.leaf", "pkg.sub"],
    )
    del graph["pkg.sub.leaf"]
    graph["pkg.sub"] = set()
    graph["pkg.other"].discard("pkg.sub.leaf")
    assert find_cycle(graph) == ["pkg.model", "pkg.view", "pkg.model"]

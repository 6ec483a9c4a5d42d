"""The package's import graph, read with `ast`: layers import only downwards, and no module imports itself back.

Layers, bottom up: `models` (the networks), `pipelines` (sampling), then `training`, `evaluation` and `commands`.
Every import counts, those inside functions too (a lazy import is still a dependency); only `if __name__ ==
"__main__":` blocks are left out, since they run when a file is executed as a script, never when it is imported.
"""

import ast
from pathlib import Path
from typing import Dict, List, Set

import pytest

PACKAGE = "srdiff_diffusers"
ROOT = Path(__file__).resolve().parents[1] / "src" / PACKAGE


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_main_guard(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
    )


def _imports(tree: ast.AST):
    """Every Import / ImportFrom node, outside `if __name__ == "__main__":` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if _is_main_guard(node):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph(root: Path = ROOT) -> Dict[str, Set[str]]:
    """Module -> the package's modules it imports (a `from package import name` names the submodule if one exists)."""
    files = {module_name(p): p for p in root.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = package.split(".")
                if node.level:
                    base = base[: len(base) - node.level + 1]
                    base = ".".join(base + ([node.module] if node.module else []))
                else:
                    base = node.module
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base for alias in node.names]
            for target in targets:
                while target and target not in files:  # `import a.b.c` of a name inside a module
                    target = target.rpartition(".")[0]
                if target and target.startswith(PACKAGE) and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def find_cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """One import cycle as `[a, b, ..., a]`, or `[]` when there is none (depth-first search)."""
    state, path = {}, []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        state[node] = "done"
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def reachable(graph: Dict[str, Set[str]], start: str) -> Set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


GRAPH = import_graph()


def test_the_graph_sees_relative_lazy_and_package_imports():
    # relative, aliased submodule and function-level imports all become edges
    assert "srdiff_diffusers.pipelines.srdiff_formulas" in GRAPH["srdiff_diffusers.pipelines.pipeline_srdiff"]
    assert "srdiff_diffusers.loading" in GRAPH["srdiff_diffusers.commands.upscale"]
    assert "srdiff_diffusers.training" in GRAPH["srdiff_diffusers.commands.train"]  # inside `run`


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    assert find_cycle(GRAPH) == []


@pytest.mark.parametrize(
    "layer, forbidden",
    [
        ("models", ("pipelines", "training", "evaluation", "loading", "commands", "demo")),
        ("pipelines", ("training", "evaluation", "loading", "commands", "demo")),
        ("training", ("loading", "commands", "demo")),  # validation uses the evaluation metrics
        ("evaluation", ("training", "loading", "commands", "demo")),
        ("loading", ("training", "evaluation", "commands", "demo")),
        # the command line and the demo are siblings over `loading`: neither imports the other's code
        ("demo", ("commands", "training")),
    ],
)
def test_layers_import_only_downwards(layer, forbidden):
    prefixes = tuple(f"{PACKAGE}.{name}" for name in forbidden)
    for module in (m for m in GRAPH if m.startswith(f"{PACKAGE}.{layer}")):
        bad = sorted(m for m in reachable(GRAPH, module) if m.startswith(prefixes))
        assert not bad, f"{module} imports (directly or through others) {bad}"

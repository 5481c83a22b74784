"""The package's import graph in figures: modules, import edges between them, and circles.

    python tests/tools/import_graph.py [SRC]        # SRC: the folder holding letterbench/ (default src)

An edge is a module importing another of the package (``from letterbench.x import y`` and
``import letterbench.x``, at any depth in the file, so lazy imports count); a name imported from a
package counts as the package's ``__init__`` unless it is itself a module. A circle is a strongly
connected group of two or more modules.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def modules(src: Path) -> dict[str, Path]:
    found = {}
    for path in sorted((src / "letterbench").rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def edges(src: Path) -> set[tuple[str, str]]:
    found = modules(src)
    out = set()
    for name, path in found.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("letterbench"):
                targets = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("letterbench")]
            for target in targets:
                if target in found and target != name:
                    out.add((name, target))
                    break
    return out


def circles(graph: set[tuple[str, str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module."""
    succ: dict[str, list[str]] = {}
    for a, b in graph:
        succ.setdefault(a, []).append(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in succ.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(succ):
        if v not in index:
            visit(v)
    return groups


def main() -> None:
    src = Path(sys.argv[1] if len(sys.argv) > 1 else "src")
    found, graph = modules(src), edges(src)
    top = sorted(n for n in found if n.count(".") == 1)
    print(f"modules {len(found)} (at the top level: {len(top)})")
    print(f"import edges {len(graph)}")
    groups = circles(graph)
    print(f"circles {len(groups)}" + "".join(f"\n  {' <-> '.join(g)}" for g in groups))


if __name__ == "__main__":
    main()

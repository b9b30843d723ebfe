"""The package's layout keeps its promises (docs/architecture.md): no import cycles between its files and folders,
the library never imports the experiment harness, no module over 300 lines, the Trainer class within 170."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "prefopt"


def _room(module: str) -> str | None:
    """The file or top-level folder of the package that `module` names (folders count as one room)."""
    parts = module.split(".")
    if parts[0] != "prefopt" or len(parts) < 2:
        return None
    if (PACKAGE / parts[1]).is_dir():
        return parts[1] + "/"
    return parts[1] + ".py" if (PACKAGE / f"{parts[1]}.py").exists() else None


def imports() -> dict[str, set[str]]:
    """room -> the rooms it imports, at module level or inside functions alike."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).parts
        room = relative[0] + "/" if len(relative) > 1 else relative[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module + "." + alias.name for alias in node.names]
                names += [node.module] if node.module != "prefopt" else []
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            graph.setdefault(room, set()).update(r for r in map(_room, names) if r and r != room)
    return graph


def test_the_import_graph_has_no_cycle():
    graph = imports()
    assert {"loop.py", "data/", "steps.py"} <= set(graph)  # the reader sees the package
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(room: str, path: list[str]) -> None:
        state[room] = 1
        for target in sorted(graph.get(room, ())):
            assert state.get(target) != 1, "import cycle: " + " -> ".join(path[path.index(target):] + [room, target])
            if target not in state:
                visit(target, path + [room])
        state[room] = 2

    for room in sorted(graph):
        if room not in state:
            visit(room, [])


def test_the_library_never_imports_the_experiment_harness():
    assert not [room for room, targets in imports().items() if "experiments/" in targets and room != "experiments/"]


def test_modules_stay_small():
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert not {name: n for name, n in sizes.items() if n > 300}
    loop = ast.parse((PACKAGE / "loop.py").read_text())
    (trainer,) = [node for node in loop.body if isinstance(node, ast.ClassDef) and node.name == "Trainer"]
    assert trainer.end_lineno - trainer.lineno + 1 <= 170

"""The package's import layering: the simulated cluster is a leaf the product reaches only from `demo`.

Read from the source (ast), so a new import that breaks the layering fails here, not in a user's
PyInstaller build or start-up time.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "kubectl_waypoint"
ALLOWED_TO_START_THE_SIM = {"kubectl_waypoint.demo"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level) for each import, relative ones resolved; TYPE_CHECKING skipped."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []

    def visit(nodes, top: bool):
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import):
                found.extend((alias.name, top) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                found.extend((f"{target}.{alias.name}", top) for alias in node.names)
            for field in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(node, field, None)
                if isinstance(children, list) and not isinstance(node, (ast.Import, ast.ImportFrom)):
                    visit(children, top and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                      ast.ClassDef, ast.Lambda)))

    visit(ast.parse(path.read_text(encoding="utf-8")).body, True)
    return found


def test_only_demo_starts_the_simulated_cluster_and_never_at_import_time():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        if name.startswith("kubectl_waypoint.sim"):
            continue
        for target, top in imports(path):
            if target.startswith("kubectl_waypoint.sim") and (top or name not in ALLOWED_TO_START_THE_SIM):
                offenders.append(f"{name} imports {target}{' at module level' if top else ''}")
    assert offenders == []


def test_no_module_level_import_cycle():
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        for target, top in imports(path):
            # `from pkg import x` needs the submodule pkg.x when there is one, else pkg itself.
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if top and target and target != name:
                graph[name].add(target)
    state: dict[str, str] = {}
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_product_modules_log_through_lazy_loggers():
    """`import logging` at module level would put it back on every start (kubectl_waypoint/logs.py)."""
    offenders = [module_name(path) for path in sorted(PACKAGE.rglob("*.py"))
                 if not module_name(path).startswith("kubectl_waypoint.sim")
                 and ("logging", True) in imports(path)]
    assert offenders == []

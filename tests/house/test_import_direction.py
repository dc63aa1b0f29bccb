"""The layers import one way: errors -> utils -> config -> physics -> data -> networks -> training -> evaluation
-> the task layer (tasks, cli, ...). An AST walk over src/hyco finds every `import` (at module level or inside a
function, `TYPE_CHECKING` blocks included) and fails on an upward one or a cycle between layers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import hyco

SRC = Path(hyco.__file__).parent
LAYERS = ("errors", "utils", "config", "physics", "data", "networks", "training", "evaluation", "tasks")
# modules named outside the packages of their layer
PLACED = {"hyco.errors": "errors", "hyco.version": "errors"}


def layer(module: str) -> str | None:
    """The layer of a `hyco...` module name; everything not below is the task layer at the top."""
    parts = module.split(".")
    if parts[0] != "hyco":
        return None
    for prefix, name in PLACED.items():
        if module == prefix or module.startswith(prefix + "."):
            return name
    if len(parts) > 1 and parts[1] in LAYERS:
        return parts[1]
    return "tasks"


def module_name(path: Path, root: Path) -> str:
    parts = ("hyco", *path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(root: Path, module: str) -> bool:
    relative = Path(*module.split(".")[1:])
    return (root / relative).with_suffix(".py").exists() or (root / relative / "__init__.py").exists()


def imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, imported module) of every import in the file; relative imports resolved."""
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            out.append((node.lineno, module))
            # `from hyco import tasks` imports the submodule hyco.tasks
            out += [(node.lineno, f"{module}.{alias.name}") for alias in node.names
                    if _is_module(root, f"{module}.{alias.name}")]
    return out


def upward_imports(root: Path = SRC) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        source = module_name(path, root)
        for line, target in imports(path, root):
            dst = layer(target)
            if dst is not None and LAYERS.index(dst) > LAYERS.index(layer(source)):
                found.append(f"{path.relative_to(root.parent)}:{line}: {source} ({layer(source)}) imports "
                             f"{target} ({dst})")
    return found


def test_no_module_imports_a_higher_layer():
    assert upward_imports() == []


def test_the_walk_sees_upward_imports_of_every_kind(tmp_path):
    """The checker itself: a deferred, a relative and a TYPE_CHECKING import upward are each reported."""
    package = tmp_path / "hyco"
    for folder in ("physics", "training", "utils", "tasks"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "physics" / "model.py").write_text("def f():\n    from hyco.tasks import run\n")
    (package / "training" / "loop.py").write_text("from ..tasks import experiment\n")
    (package / "utils" / "io.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import hyco.config.schema\n")
    (package / "tasks" / "run.py").write_text("from hyco.physics import model\nimport numpy\n")
    found = upward_imports(package)
    assert [line.split(": ", 1)[1] for line in found] == [
        "hyco.physics.model (physics) imports hyco.tasks (tasks)",
        "hyco.physics.model (physics) imports hyco.tasks.run (tasks)",
        "hyco.training.loop (training) imports hyco.tasks (tasks)",
        "hyco.utils.io (utils) imports hyco.config.schema (config)",
    ]


@pytest.mark.parametrize(("module", "expected"), [
    ("hyco.config.registry", "config"), ("hyco.registry", "tasks"), ("hyco.errors", "errors"),
    ("hyco.config.omegaconf_errors", "config"),
    ("hyco.physics.convert", "physics"), ("hyco.cli", "tasks"), ("hyco", "tasks"), ("numpy", None),
])
def test_layer_of_a_module(module, expected):
    assert layer(module) == expected


def module_level_imports(path: Path, root: Path) -> set[str]:
    """The hyco modules a file imports when it is imported: statements at module level (not in a function,
    not under `if TYPE_CHECKING:`), each name resolved to the module file it loads."""
    tree = ast.parse(path.read_text(), str(path))
    statements = []
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        statements += [n for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))
                       and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    lines = {n.lineno for n in statements}
    return {target for line, target in imports(path, root) if line in lines and target.startswith("hyco")
            and _is_module(root, target)}


def import_cycles(root: Path = SRC) -> list[list[str]]:
    """Cycles of module-level imports between hyco modules (a package's `__init__` excluded as a target: it
    runs first whatever is imported below it)."""
    graph = {module_name(p, root): module_level_imports(p, root) for p in sorted(root.rglob("*.py"))}
    packages = {module_name(p, root) for p in root.rglob("__init__.py")}
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if target in packages:
                continue
            if state.get(target) == "open":
                cycles.append([*stack[stack.index(target):], target])
            elif target not in state:
                visit(target, [*stack, target])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return cycles


def test_no_import_cycles_between_modules():
    assert import_cycles() == []


def test_the_cycle_search_finds_one(tmp_path):
    package = tmp_path / "hyco"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "data" / "__init__.py").write_text("")
    (package / "data" / "a.py").write_text("from hyco.data import b\n")
    (package / "data" / "b.py").write_text("import hyco.data.c\n")
    (package / "data" / "c.py").write_text("from hyco.data.a import x\ndef f():\n    import hyco.data.b\n")
    assert import_cycles(package) == [["hyco.data.a", "hyco.data.b", "hyco.data.c", "hyco.data.a"]]

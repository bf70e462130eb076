"""The house by stage: every module of the package sits on a floor, imports run only downwards
(or across one floor), and the import graph has no circle.

The floors, top to bottom (README.md, "Layout of the code", draws the same map):

====  ==========================================  =============================================
 6    public faces and modules                    ``dict_minimize/*.py`` but the ground
 5    model helpers, many problems, comparing     ``_models``, ``_scale``, ``_compare``
 4    entry points                                ``_solvers``
 3    the flat problem SciPy sees, and back       ``_problem``
 2    one backend per framework                   ``backends``
 1    what x0 looks like                          ``_structure``
 0    the ground                                  ``_errors``, ``_threads``, ``_version``
====  ==========================================  =============================================

Every import counts for the floors, also one inside a function or under ``TYPE_CHECKING``;
the folders of floor 5 are siblings that never import each other. The circle check takes the
imports that run (``TYPE_CHECKING`` blocks left out: they never execute).
"""

from __future__ import annotations

import ast
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "dict_minimize"
GROUND = {"_errors", "_threads", "_version"}
FOLDERS = {"_structure": 1, "backends": 2, "_problem": 3, "_solvers": 4}
SIBLINGS = {"_models", "_scale", "_compare"}  # floor 5


def module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def floor(name: str) -> tuple[int, str]:
    """(floor, the folder that owns it) of a module of the package."""
    parts = name.split(".")
    if len(parts) == 1:
        return 6, ""
    top = parts[1]
    if top in GROUND:
        return 0, top
    if top in FOLDERS:
        return FOLDERS[top], top
    if top in SIBLINGS:
        return 5, top
    return 6, ""


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(name: str, path: Path) -> list[tuple[str, int, bool]]:
    """(imported module of the package, line, runs at import time or call) for each import
    in the module; ``from pkg import sub`` names the submodule when there is one."""
    known = modules()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, runs: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for sub in child.body:
                    visit_one(sub, False)
                for sub in child.orelse:
                    visit_one(sub, runs)
                continue
            visit_one(child, runs)

    def visit_one(node: ast.AST, runs: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "dict_minimize":
                    found.append((alias.name, node.lineno, runs))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.split(".")[0] == "dict_minimize":
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    found.append((sub if sub in known else target, node.lineno, runs))
        visit(node, runs)

    visit(tree, True)
    return found


def test_every_module_has_a_floor() -> None:
    loose = [
        n for n in modules() if n.count(".") > 1 and n.split(".")[1] not in {*FOLDERS, *SIBLINGS}
    ]
    assert loose == [], f"modules in a folder that is no floor: {loose}"


def test_every_folder_says_what_it_does() -> None:
    for folder in [*FOLDERS, *SIBLINGS]:
        doc = ast.get_docstring(ast.parse((PKG / folder / "__init__.py").read_text()))
        assert doc and "import" in doc.lower(), (
            f"{folder}/__init__.py needs a docstring with its rule"
        )


def test_imports_run_downwards() -> None:
    upward = []
    for name, path in modules().items():
        mine, folder = floor(name)
        for target, line, _ in imports(name, path):
            theirs, other = floor(target)
            if theirs > mine or (mine == theirs == 5 and folder != other):
                upward.append(f"{path.relative_to(PKG.parent)}:{line} imports {target}")
    assert upward == [], "imports that run upwards:\n" + "\n".join(upward)


def test_no_import_circle() -> None:
    graph: dict[str, set[str]] = {}
    for name, path in modules().items():
        graph[name] = {t for t, _, runs in imports(name, path) if runs and t != name}
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := walk(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (circle := walk(node)):
            pytest.fail("import circle: " + " -> ".join(circle))


def test_a_jax_layout_unpickles_in_a_fresh_process() -> None:
    """Structure never imports a backend: a layout's devices cross a pickle by the functions
    its backend registered, which unpickling imports by reference."""
    pytest.importorskip("jax")
    import jax.numpy as jnp

    from dict_minimize._problem.prepare import prepare_x0

    _, layout, _ = prepare_x0({"w": jnp.zeros(3)}, None, False)
    code = (
        "import pickle, sys\n"
        "lay = pickle.loads(sys.stdin.buffer.read())\n"
        "print(type(lay.devices[0]).__name__, lay.n, 'jax' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        input=pickle.dumps(layout),
        capture_output=True,
        timeout=300,
        check=True,
    )
    name, n, imported = proc.stdout.decode().split()
    assert name == type(layout.devices[0]).__name__ and n == "3" and imported == "True"


def test_the_readme_and_the_docs_draw_the_same_map() -> None:
    """The map of the code is written twice (README for a contributor's first look, the docs
    page for the site); both name every folder of the package."""
    root = PKG.parent

    def the_map(text: str) -> str:
        start = text.index("```\ndict_minimize/")
        return text[start : text.index("```", start + 4)]

    readme = the_map((root / "README.md").read_text(encoding="utf-8"))
    assert readme == the_map((root / "docs" / "architecture.md").read_text(encoding="utf-8"))
    folders = {p.name for p in PKG.iterdir() if (p / "__init__.py").exists()}
    missing = sorted(f for f in folders if f"{f}/" not in readme)
    assert missing == [], f"the map misses {missing}"

"""Straight-line Python for the two per-evaluation walks of a nested layout.

:meth:`Node.build <dict_minimize._structure.tree.Node.build>` (the structure from the leaves) and
:func:`~dict_minimize._structure.tree.leaves_of` (a gradient's leaves, matched by path) walk the
tree node by node. For the trees people hold (dicts, lists, tuples and namedtuples of tensors) both
walks are generated once per layout as one Python function each: the builder is a single
nested display (``{'layer_0': {'w': v[0], 'b': v[1]}, ...}``), the getter one expression per
leaf behind cheap type and length checks. On any surprise the getter raises, and the caller
falls back to the checking walk, which either succeeds (a Mapping that is not a dict) or raises
the error that names the path. Trees with JAX pytree nodes or empty subtrees, and very deep
ones, keep the walks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dict_minimize._structure.tree import LIST, MAPPING, NAMEDTUPLE, TUPLE, Node

__all__ = ["Mismatch", "Source", "compile_builder", "compile_getter", "define"]

#: deeper trees keep the walks (Python's compiler recurses on nested displays)
MAX_DEPTH = 40
#: keys written as literals in the generated source; other keys are bound by name
_LITERAL_TYPES = (str, int)


class Mismatch(Exception):
    """The value does not have the layout's exact shape: use the checking walk."""


class Source:
    """Names for the constants the generated code refers to."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {"Mismatch": Mismatch}
        self._names: dict[int, str] = {}

    def const(self, value: Any) -> str:
        if type(value) in _LITERAL_TYPES:
            return repr(value)
        name = self._names.get(id(value))
        if name is None:
            name = self._names[id(value)] = f"c{len(self._names)}"
            self.namespace[name] = value
        return name


def _supported(node: Node, depth: int = 0) -> bool:
    if depth > MAX_DEPTH or node.kind not in (MAPPING, LIST, TUPLE, NAMEDTUPLE):
        return False
    return all(c is None or _supported(c, depth + 1) for c in node.children)


def compile_builder(tree: Node) -> Callable[[list[Any]], Any] | None:
    """``build(values)``: the structure with ``values[i]`` at leaf i; None if not supported."""
    if not _supported(tree):
        return None
    src = Source()
    count = 0

    def expr(node: Node) -> str:
        nonlocal count
        parts = []
        for child in node.children:
            if child is None:
                parts.append(f"v[{count}]")
                count += 1
            else:
                parts.append(expr(child))
        if node.kind == MAPPING:
            keys = [src.const(k) for k in node.keys]
            if node.cls is dict:
                return "{" + ", ".join(f"{k}: {p}" for k, p in zip(keys, parts, strict=True)) + "}"
            assert node.factory is not None
            items = "".join(f"({k}, {p}), " for k, p in zip(keys, parts, strict=True))
            return f"{src.const(node.factory)}(({items}))"
        if node.kind == NAMEDTUPLE:
            return f"{src.const(node.cls)}({', '.join(parts)})"
        if node.kind == TUPLE:
            return "(" + "".join(p + ", " for p in parts) + ")"
        return "[" + ", ".join(parts) + "]"

    body = expr(tree)
    return define(f"def build(v):\n    return {body}\n", "build", src)


def compile_getter(tree: Node) -> Callable[[Any], list[Any]] | None:
    """``get(d)``: the leaves of ``d`` in layout order, if ``d`` has exactly the layout's
    plain shape (dicts where x0 has dicts, lists or tuples of the same lengths); raises
    :class:`Mismatch`, ``KeyError`` or ``TypeError`` otherwise (a Mapping of another type
    than x0's or dict there, for one). None if not supported."""
    if not _supported(tree):
        return None
    src = Source()
    lines: list[str] = []
    leaves: list[str] = []
    seq = src.const((list, tuple))

    def visit(node: Node, name: str) -> None:
        n = len(node.keys)
        if node.kind == MAPPING:
            t = "" if node.cls is dict else f" and type({name}) is not {src.const(node.cls)}"
            lines.append(
                f"    if type({name}) is not dict{t} or len({name}) != {n}: raise Mismatch"
            )
            access = [f"{name}[{src.const(k)}]" for k in node.keys]
        else:
            lines.append(
                f"    if not isinstance({name}, {seq}) or len({name}) != {n}: raise Mismatch"
            )
            access = [f"{name}[{i}]" for i in range(n)]
        for child, item in zip(node.children, access, strict=True):
            if child is None:
                leaves.append(item)
            else:
                sub = f"n{len(lines)}"
                lines.append(f"    {sub} = {item}")
                visit(child, sub)

    visit(tree, "d")
    body = "\n".join(lines)
    return define(f"def get(d):\n{body}\n    return [{', '.join(leaves)}]\n", "get", src)


def define(source: str, name: str, src: Source, label: str = "nested") -> Any:
    """Compile ``source`` in ``src``'s namespace and return its function ``name`` (None if
    Python's compiler cannot take it)."""
    try:
        code = compile(source, f"<dict_minimize {label} {name}>", "exec")
    except (RecursionError, MemoryError, SyntaxError):  # pragma: no cover - guarded by depth
        return None
    exec(code, src.namespace)
    return src.namespace[name]

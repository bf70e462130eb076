"""Nested parameters: Mappings, lists, tuples and namedtuples of tensors, to any depth.

The structure of a nested ``x0`` is captured once, as a :class:`Node` tree, and its leaves are
named by :class:`Path`. The layout then treats the leaves as a flat dict keyed by their paths,
so the hot path (one flat float64 vector, one codec) is the same as for a flat dict; only
:meth:`Node.build` (the structure back, once per evaluation) and :func:`leaves_of` (a gradient
matched by path) know about the nesting.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from dict_minimize._errors import Path, type_name

__all__ = ["Node", "Path", "is_container", "leaves_of", "make_tree", "partial_leaves"]

#: node kinds
MAPPING, LIST, TUPLE, NAMEDTUPLE, LEAF = "mapping", "list", "tuple", "namedtuple", "leaf"


def is_container(value: Any) -> bool:
    """A node of the tree (Mapping, list, tuple, namedtuple), not a leaf."""
    return isinstance(value, (Mapping, list, tuple))


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return MAPPING
    if isinstance(value, tuple) and hasattr(type(value), "_fields"):
        return NAMEDTUPLE
    if isinstance(value, tuple):
        return TUPLE
    if isinstance(value, list):
        return LIST
    return LEAF


@dataclass(frozen=True)
class Node:
    """One container of the tree: its kind, type, keys and children (None for a leaf)."""

    kind: str
    cls: type | None
    keys: tuple[Hashable, ...]
    children: tuple[Node | None, ...]
    factory: Callable[[Any], Any] | None = field(default=None, compare=False)
    #: where the node sits, for messages
    path: tuple = ()
    #: every child is a leaf (a layer's {"w", "b"}): built from one slice of the values
    flat: bool = False

    def build(self, values: Iterator[Any]) -> Any:
        """The structure again, with the next values of ``values`` at the leaves."""
        if self.flat:
            if self.kind == MAPPING:  # the common case (a layer's {"w", "b"}): no list
                assert self.factory is not None
                return self.factory(zip(self.keys, islice(values, len(self.keys)), strict=False))
            parts = list(islice(values, len(self.keys)))
        else:
            parts = [next(values) if c is None else c.build(values) for c in self.children]
        if self.kind == MAPPING:
            assert self.factory is not None
            return self.factory(zip(self.keys, parts, strict=False))  # sizes match by construction
        if self.kind == NAMEDTUPLE:
            assert self.cls is not None
            return self.cls(*parts)
        return tuple(parts) if self.kind == TUPLE else parts


def make_tree(
    x0: Any, factory_of: Callable[[Mapping], Callable], where: str = "x0"
) -> tuple[Node, list[Path], list[Any]]:
    """The tree of a nested ``x0`` (a Mapping at the root), its leaf paths and leaves."""
    paths: list[Path] = []
    leaves: list[Any] = []

    def walk(value: Any, path: tuple) -> Node:
        kind = _kind(value)
        items = list(value.items()) if kind == MAPPING else list(enumerate(value))
        if not items:
            raise ValueError(f"{where}[{Path(path)!r}] is an empty {type_name(value)}")
        children: list[Node | None] = []
        for key, child in items:
            sub = (*path, key)
            if is_container(child):
                children.append(walk(child, sub))
            else:
                paths.append(Path(sub))
                leaves.append(child)
                children.append(None)
        return Node(
            kind,
            type(value),
            tuple(k for k, _ in items),
            tuple(children),
            factory_of(value) if kind == MAPPING else None,
            path,
            all(c is None for c in children),
        )

    return walk(x0, ()), paths, leaves


def leaves_of(d: Any, tree: Node, what: str) -> list[Any]:
    """The leaves of ``d`` (e.g. a gradient) at ``tree``'s leaf positions, matched by path.

    Mappings match by key, whatever their type or order (JAX sorts dict keys); lists and tuples
    by position. Raises naming the path where ``d`` differs from x0's structure.
    """
    out: list[Any] = []
    extend, append = out.extend, out.append

    def walk(value: Any, node: Node) -> None:
        keys = node.keys
        if node.kind == MAPPING:
            if not (type(value) is dict or isinstance(value, Mapping)) or len(value) != len(keys):
                _mismatch(value, node, what)
            try:
                if node.flat:
                    extend(map(value.__getitem__, keys))
                    return
                values = [value[k] for k in keys]
            except KeyError:
                _mismatch(value, node, what)
        else:
            if not isinstance(value, (list, tuple)) or len(value) != len(keys):
                _mismatch(value, node, what)
            values = value
        if node.flat:
            extend(values)
            return
        for child, v in zip(node.children, values, strict=True):
            if child is None:
                append(v)
            else:
                walk(v, child)

    walk(d, tree)
    return out


def _mismatch(value: Any, node: Node, what: str) -> None:
    """Raise the error for ``value`` where ``node`` is expected (``leaves_of``)."""
    here = f"the {what}" + (f"[{Path(node.path)!r}]" if node.path else "")
    if node.kind == MAPPING:
        if not isinstance(value, Mapping):
            raise TypeError(f"{here} must be a dict like x0 there; got a {type_name(value)}")
        missing = [k for k in node.keys if k not in value]
        known = set(node.keys)
        extra = [k for k in value if k not in known]
        detail = f"is missing key(s) {missing!r}" if missing else f"has extra key(s) {extra!r}"
        raise ValueError(f"{here} {detail}; it must have the keys of x0 there")
    got = type_name(value) + (
        f" of length {len(value)}" if isinstance(value, (list, tuple)) else ""
    )
    raise TypeError(
        f"{here} must be a list or tuple of length {len(node.keys)}, like x0; got a {got}"
    )


def partial_leaves(d: Any, tree: Node, what: str, broadcast: bool) -> dict[Path, Any]:
    """A partial nested ``d`` (bounds, constraint blocks) as ``{path: value}`` for its leaves.

    Keys may be left out (no entry for the leaves below). With ``broadcast``, a value that is
    not a container at an inner node (a scalar bound) applies to every leaf below it.
    """
    out: dict[Path, Any] = {}

    def fill(value: Any, node: Node | None, path: tuple) -> None:
        if node is None:
            out[Path(path)] = value
            return
        if not is_container(value):
            if not broadcast:
                raise TypeError(
                    f"{what}[{Path(path)!r}] is a {type_name(value)}, where x0 has a "
                    f"{node.cls.__name__ if node.cls else 'container'}: give a value per leaf"
                )
            for key, child in zip(node.keys, node.children, strict=True):
                fill(value, child, (*path, key))
            return
        if node.kind == MAPPING:
            if not isinstance(value, Mapping):
                raise TypeError(
                    f"{what}[{Path(path)!r}] is a {type_name(value)}; x0 has a mapping there"
                )
            pos = dict(zip(node.keys, node.children, strict=True))
            unknown = [k for k in value if k not in pos]
            if unknown:
                where = f"{what}[{Path(path)!r}]" if path else what
                raise ValueError(
                    f"{where} has key(s) {unknown!r} that x0 does not have there; x0's keys "
                    f"there are {list(node.keys)!r}"
                )
            for key, v in value.items():
                fill(v, pos[key], (*path, key))
            return
        if isinstance(value, Mapping) or len(value) != len(node.keys):
            raise TypeError(
                f"{what}[{Path(path)!r}] must be a list or tuple of length {len(node.keys)} "
                f"(None where unbounded), like x0; got a {type_name(value)}"
            )
        for key, child, v in zip(node.keys, node.children, value, strict=True):
            if v is not None:
                fill(v, child, (*path, key))

    fill(d, tree, ())
    return out

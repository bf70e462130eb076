"""Nested parameters: Mappings, lists, tuples, namedtuples and JAX pytree nodes, to any depth.

The structure of a nested ``x0`` is captured once, as a :class:`Node` tree, and its leaves are
named by :class:`Path`. The layout then treats the leaves as a flat dict keyed by their paths,
so the hot path (one flat float64 vector, one codec) is the same as for a flat dict; only
:meth:`Node.build` (the structure back, once per evaluation) and :func:`leaves_of` (a gradient
matched by path) know about the nesting.

Besides our own containers, any registered JAX pytree node (an Equinox module, a
``flax.struct`` dataclass, an ``nnx.Variable``, a ``register_pytree_node`` class) is a node,
recognised only when JAX is already imported: it is flattened one level by JAX itself, its
children are named by their JAX keys (``.layers``, ``[0]``, ``['w']``) and it is rebuilt from
the one-level treedef. Inside such a node (``nnx.State`` and ``FrozenDict`` included) ``None``
and empty containers are empty subtrees, as in JAX: no leaves, and they come back as they were.
In plain dicts and lists they stay errors (a None there is usually a forgotten entry).
"""

from __future__ import annotations

import sys
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from dict_minimize._errors import Attr, Path, a_class, at, type_name

__all__ = [
    "Attr",
    "Node",
    "Path",
    "is_container",
    "is_pytree_node",
    "jax_territory",
    "leaves_of",
    "make_tree",
    "partial_leaves",
]

#: node kinds (PYTREE: a registered JAX pytree node; NONE: an empty subtree, ``None``)
MAPPING, LIST, TUPLE, NAMEDTUPLE, PYTREE, NONE, LEAF = (
    "mapping",
    "list",
    "tuple",
    "namedtuple",
    "pytree",
    "none",
    "leaf",
)
#: containers JAX registers that are plain Python (not "JAX territory" for None)
_PLAIN = (dict, OrderedDict, defaultdict, list, tuple)


def _tree_util() -> Any:
    """``jax.tree_util`` if JAX is imported (never importing it), else None."""
    jax = sys.modules.get("jax")
    return None if jax is None else getattr(jax, "tree_util", None)


def _registered(cls: type) -> bool:
    """``cls`` is a registered JAX pytree node type (JAX is imported)."""
    tu = _tree_util()
    if tu is None:
        return False
    is_node = getattr(tu, "is_tree_node", None)
    if is_node is not None:
        return bool(is_node(cls))
    return False  # pragma: no cover - JAX without is_tree_node: see is_pytree_node


def is_pytree_node(value: Any) -> bool:
    """A registered JAX pytree node that is none of our kinds (not a Mapping, list, tuple or
    None): an Equinox module, a ``flax.struct`` dataclass, ``register_pytree_node`` classes.
    False whenever JAX was never imported: such a node cannot exist then."""
    if value is None or isinstance(value, (Mapping, list, tuple)):
        return False
    tu = _tree_util()
    if tu is None:
        return False
    if getattr(tu, "is_tree_node", None) is not None:
        return bool(tu.is_tree_node(type(value)))
    # older JAX: a node is what does not flatten to a single leaf at one level
    return not tu.treedef_is_leaf(tu.tree_structure(value, is_leaf=lambda c: c is not value))


def is_container(value: Any) -> bool:
    """A node of the tree (Mapping, list, tuple, namedtuple, JAX pytree node), not a leaf."""
    return isinstance(value, (Mapping, list, tuple)) or is_pytree_node(value)


def jax_territory(value: Any) -> bool:
    """Below ``value``, None and empty containers are empty subtrees (JAX's view): a JAX pytree
    node, or a Mapping type JAX registers that is not a plain dict (``nnx.State``)."""
    if isinstance(value, Mapping):
        return type(value) not in _PLAIN and _registered(type(value))
    return is_pytree_node(value)


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        # a Mapping JAX registers (nnx.State, FrozenDict) is rebuilt by JAX, exactly as JAX
        # flattens it (nnx.State hands out its inner dicts wrapped as States)
        return PYTREE if jax_territory(value) else MAPPING
    if isinstance(value, tuple) and hasattr(type(value), "_fields"):
        return NAMEDTUPLE
    if isinstance(value, tuple):
        return TUPLE
    if isinstance(value, list):
        return LIST
    if is_pytree_node(value):
        return PYTREE
    return LEAF


def _key(entry: Any, tu: Any) -> Hashable:
    """A JAX key entry as a part of our :class:`Path`: ``['w']``, ``[0]`` or ``.name``."""
    if isinstance(entry, tu.GetAttrKey):
        return Attr(entry.name)
    if isinstance(entry, tu.DictKey):
        return entry.key
    if isinstance(entry, tu.SequenceKey):
        return entry.idx
    if isinstance(entry, tu.FlattenedIndexKey):
        return entry.key
    return entry  # a custom key (register_pytree_with_keys): shown as [repr]


def one_level(value: Any) -> tuple[tuple[Hashable, ...], list[Any], Any]:
    """(keys, children, treedef) of a JAX pytree node, flattened one level by JAX itself.

    ``None`` children are kept (they are children here, not empty subtrees), and
    ``treedef.unflatten(children)`` rebuilds the node.
    """
    tu = _tree_util()
    pairs, treedef = tu.tree_flatten_with_path(value, is_leaf=lambda c: c is not value)
    keys = tuple(_key(path[0], tu) for path, _ in pairs)
    return keys, [child for _, child in pairs], treedef


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
    #: a JAX pytree node's one-level treedef (its type and static data), which rebuilds it
    treedef: Any = None

    def build(self, values: Iterator[Any]) -> Any:
        """The structure again, with the next values of ``values`` at the leaves."""
        if self.flat:
            if self.kind == MAPPING:  # the common case (a layer's {"w", "b"}): no list
                assert self.factory is not None
                return self.factory(zip(self.keys, islice(values, len(self.keys)), strict=False))
            parts = list(islice(values, len(self.keys)))
        else:
            parts = [next(values) if c is None else c.build(values) for c in self.children]
        kind = self.kind
        if kind == MAPPING:
            assert self.factory is not None
            return self.factory(zip(self.keys, parts, strict=False))  # sizes match by construction
        if kind == NAMEDTUPLE:
            assert self.cls is not None
            return self.cls(*parts)
        if kind == TUPLE:
            return tuple(parts)
        if kind == LIST:
            return parts
        if kind == PYTREE:
            return self.treedef.unflatten(parts)
        return None  # NONE: an empty subtree


def make_tree(
    x0: Any, factory_of: Callable[[Mapping], Callable], where: str = "x0"
) -> tuple[Node, list[Path], list[Any]]:
    """The tree of a nested ``x0`` (a Mapping or a JAX pytree node at the root), its leaf paths
    and leaves."""
    paths: list[Path] = []
    leaves: list[Any] = []
    containers: dict[type, bool] = {}  # being a container depends on the type alone

    def walk(value: Any, path: tuple, jaxy: bool) -> Node:
        kind = _kind(value)
        treedef = None
        if kind == PYTREE:
            keys, values, treedef = one_level(value)
            items = list(zip(keys, values, strict=True))
            jaxy = True
        else:
            items = list(value.items()) if kind == MAPPING else list(enumerate(value))
            jaxy = jaxy or (kind == MAPPING and jax_territory(value))
            if not items and not jaxy:
                raise ValueError(f"{at(where, Path(path))} is an empty {type_name(value)}")
        children: list[Node | None] = []
        for key, child in items:
            sub = (*path, key)
            if child is None and jaxy:  # an empty subtree, as JAX sees it
                children.append(Node(NONE, None, (), (), path=sub))
            elif (
                containers[type(child)]
                if type(child) in containers
                else containers.setdefault(type(child), is_container(child))
            ):
                children.append(walk(child, sub, jaxy))
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
            treedef,
        )

    tree = walk(x0, (), jax_territory(x0))
    if not leaves:
        raise ValueError(
            f"{where} has no leaves (only None and empty subtrees): nothing to optimize"
        )
    return tree, paths, leaves


def leaves_of(d: Any, tree: Node, what: str) -> list[Any]:
    """The leaves of ``d`` (e.g. a gradient) at ``tree``'s leaf positions, matched by path.

    Mappings match by key, whatever their type or order (JAX sorts dict keys); lists and tuples
    by position; a JAX pytree node must have x0's type there, its children matched by their JAX
    keys; an empty subtree (None in x0) must be None. Raises naming the path where ``d``
    differs from x0's structure.
    """
    out: list[Any] = []
    extend, append = out.extend, out.append

    def walk(value: Any, node: Node) -> None:
        keys = node.keys
        kind = node.kind
        if kind == MAPPING:
            if not (type(value) is dict or isinstance(value, Mapping)) or len(value) != len(keys):
                _mismatch(value, node, what)
            try:
                if node.flat:
                    extend(map(value.__getitem__, keys))
                    return
                values = [value[k] for k in keys]
            except KeyError:
                _mismatch(value, node, what)
        elif kind == PYTREE:
            values = _children_of(value, node, what)
        elif kind == NONE:
            if value is not None:
                _mismatch(value, node, what)
            return
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


def _mapping_node(node: Node) -> bool:
    """A JAX pytree node that is a Mapping (nnx.State): any Mapping with its keys matches it."""
    return node.cls is not None and issubclass(node.cls, Mapping)


def _children_of(value: Any, node: Node, what: str) -> list[Any]:
    """The children of ``value`` in the order of the JAX pytree node ``node``, by key."""
    if type(value) is not node.cls:
        if not (_mapping_node(node) and isinstance(value, Mapping)):
            _mismatch(value, node, what)
        try:
            if len(value) != len(node.keys):
                _mismatch(value, node, what)
            return [value[k] for k in node.keys]
        except KeyError:
            _mismatch(value, node, what)
    keys, children, _ = one_level(value)
    if keys == node.keys:
        return children
    by_key = dict(zip(keys, children, strict=True))
    if len(by_key) != len(node.keys) or any(k not in by_key for k in node.keys):
        _mismatch(value, node, what)
    return [by_key[k] for k in node.keys]


def _fields(keys: Any) -> str:
    """Keys of a node as they read after a path: ``['.bias', "['w']"]``."""
    return "[" + ", ".join(Path((k,)).suffix() for k in keys) + "]"


def _node_name(node: Node) -> str:
    """``'a dict'``, ``'an equinox.MLP'``: the node's type with its article, for messages."""
    return a_class(node.cls) if node.cls is not None else "a container"


def _mismatch(value: Any, node: Node, what: str) -> None:
    """Raise the error for ``value`` where ``node`` is expected (``leaves_of``)."""
    here = at(f"the {what}", Path(node.path))
    if node.kind == MAPPING or (_mapping_node(node) and isinstance(value, Mapping)):
        if not isinstance(value, Mapping):
            raise TypeError(f"{here} must be a dict like x0 there; got a {type_name(value)}")
        missing = [k for k in node.keys if k not in value]
        known = set(node.keys)
        extra = [k for k in value if k not in known]
        detail = f"is missing key(s) {missing!r}" if missing else f"has extra key(s) {extra!r}"
        raise ValueError(f"{here} {detail}; it must have the keys of x0 there")
    if node.kind == NONE:
        raise TypeError(
            f"{here} must be None, as x0 is there (an empty subtree); got a {type_name(value)}"
        )
    if node.kind == PYTREE:
        name = _node_name(node)
        if type(value) is not node.cls:
            raise TypeError(f"{here} must be {name}, like x0 there; got a {type_name(value)}")
        keys = one_level(value)[0]
        missing = [k for k in node.keys if k not in keys]
        extra = [k for k in keys if k not in node.keys]
        detail = (
            f"is missing field(s) {_fields(missing)}"
            if missing
            else f"has extra field(s) {_fields(extra)}"
        )
        raise ValueError(f"{here} {detail}; it must have the fields x0 has there")
    got = type_name(value) + (
        f" of length {len(value)}" if isinstance(value, (list, tuple)) else ""
    )
    raise TypeError(
        f"{here} must be a list or tuple of length {len(node.keys)}, like x0; got a {got}"
    )


def partial_leaves(d: Any, tree: Node, what: str, broadcast: bool) -> dict[Path, Any]:
    """A partial nested ``d`` (bounds, constraint blocks) as ``{path: value}`` for its leaves.

    Keys may be left out (no entry for the leaves below). With ``broadcast``, a value that is
    not a container at an inner node (a scalar bound) applies to every leaf below it. At a JAX
    pytree node ``d`` has x0's type there, with None where unbounded (as ``eqx.partition``
    leaves it); an empty subtree of x0 takes None (a scalar spread from above skips it).
    """
    out: dict[Path, Any] = {}

    def fill(value: Any, node: Node | None, path: tuple) -> None:
        if node is None:
            out[Path(path)] = value
            return
        here = at(what, Path(path))
        if node.kind == NONE:
            if value is not None:
                raise ValueError(
                    f"{here} is a {type_name(value)}, where x0 has None (an empty subtree, "
                    "nothing to bound): give None there"
                )
            return
        if not is_container(value):
            if not broadcast:
                raise TypeError(
                    f"{here} is a {type_name(value)}, where x0 has {_node_name(node)}: give a "
                    "value per leaf"
                )
            for key, child in zip(node.keys, node.children, strict=True):
                if child is None or child.kind != NONE:
                    fill(value, child, (*path, key))
            return
        mapping = node.kind == MAPPING or (
            type(value) is not node.cls and _mapping_node(node) and isinstance(value, Mapping)
        )
        if mapping:
            if not isinstance(value, Mapping):
                raise TypeError(f"{here} is a {type_name(value)}; x0 has a mapping there")
            pos = dict(zip(node.keys, node.children, strict=True))
            unknown = [k for k in value if k not in pos]
            if unknown:
                raise ValueError(
                    f"{here} has key(s) {unknown!r} that x0 does not have there; x0's keys "
                    f"there are {list(node.keys)!r}"
                )
            for key, v in value.items():
                fill(v, pos[key], (*path, key))
            return
        if node.kind == PYTREE:
            if type(value) is not node.cls:
                name = _node_name(node)
                raise TypeError(
                    f"{here} is a {type_name(value)}; x0 has {name} there: give {name} (None "
                    f"where unbounded){' or a scalar' * broadcast}"
                )
            keys, values, _ = one_level(value)
            pos = dict(zip(node.keys, node.children, strict=True))
            unknown = [k for k in keys if k not in pos]
            if unknown:
                raise ValueError(
                    f"{here} has field(s) {_fields(unknown)} that x0 does not have there; "
                    f"x0's are {_fields(node.keys)}"
                )
            for key, v in zip(keys, values, strict=True):
                if v is not None:
                    fill(v, pos[key], (*path, key))
            return
        if not isinstance(value, (list, tuple)) or len(value) != len(node.keys):
            raise TypeError(
                f"{here} must be a list or tuple of length {len(node.keys)} "
                f"(None where unbounded), like x0; got a {type_name(value)}"
            )
        for key, child, v in zip(node.keys, node.children, value, strict=True):
            if v is not None:
                fill(v, child, (*path, key))

    fill(d, tree, ())
    return out

"""The layout: the structure of ``x0`` captured once, before SciPy starts.

Everything the hot path needs to know about the dict (keys, order, shapes, sizes, offsets,
dtypes, devices, the mapping type to hand back) lives in one immutable, picklable record.
"""

from __future__ import annotations

import copy
import functools
import math
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dict_minimize._errors import TENSOR_NAMES, at, fmt_key, fmt_keys, type_name
from dict_minimize._structure.tree import (
    PYTREE,
    Node,
    Path,
    is_container,
    is_pytree_node,
    jax_territory,
    leaves_of,
    make_tree,
)
from dict_minimize._structure.tree_compile import Mismatch, compile_builder, compile_getter

if TYPE_CHECKING:
    from dict_minimize._structure.types import Backend


def _mapping_factory(x0: Mapping) -> Callable[[Iterable[tuple[Hashable, Any]]], Mapping]:
    """How to build a mapping of x0's type from (key, value) pairs, decided once."""
    cls = type(x0)
    if cls is dict or cls is OrderedDict:
        return cls
    keys = list(x0.keys())
    try:
        probe = cls(list(x0.items()))  # type: ignore[call-arg]
        if list(probe.keys()) == keys:
            return cls
    except Exception:
        pass
    if not isinstance(x0, dict):
        # a shallow copy of another Mapping may share x0's storage (a view or a wrapper):
        # writing into it would overwrite x0's entries
        return dict
    try:
        template = copy.copy(x0)  # a dict subclass (defaultdict, ...): the copy owns its items
        for k in keys:
            template[k] = x0[k]

        def build(pairs: Iterable[tuple[Hashable, Any]]) -> Mapping:
            out = copy.copy(x0)
            for k, v in pairs:
                out[k] = v
            return out

        return build
    except Exception:
        return dict


#: how a backend's devices cross a pickle: backend name -> (to a portable form, back to this
#: process's devices). The backends register theirs (this floor imports none of them); a
#: backend that registers nothing has devices that pickle as they are.
DEVICE_PICKLING: dict[
    str,
    tuple[
        Callable[[tuple[Any, ...]], tuple[Any, ...]], Callable[[tuple[Any, ...]], tuple[Any, ...]]
    ],
] = {}


@dataclass(frozen=True)
class Layout:
    """Keys, shapes, dtypes and offsets of a dict of tensors, in the dict's order.

    Example:
        >>> import numpy as np
        >>> from dict_minimize.backends import get_backend
        >>> lay = make_layout({"a": np.zeros((2, 3)), "b": np.float32(1.0)}, get_backend("numpy"))
        >>> lay.n, lay.offsets, lay.shapes
        (7, (0, 6, 7), ((2, 3), ()))
    """

    keys: tuple[Hashable, ...]
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[Any, ...]
    np_dtypes: tuple[np.dtype | None, ...]
    devices: tuple[Any, ...]
    offsets: tuple[int, ...]
    backend_name: str
    factory: Callable[[Iterable[tuple[Hashable, Any]]], Mapping] = field(compare=False)
    #: the structure of a nested x0 (keys are then the leaves' paths); None for a flat one
    tree: Node | None = None
    #: the tree's two per-evaluation walks as generated code (see _tree_compile), or None
    fast_build: Callable[[list[Any]], Any] | None = field(default=None, compare=False, repr=False)
    fast_leaves: Callable[[Any], list[Any]] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.tree is not None and self.fast_build is None:
            object.__setattr__(self, "fast_build", compile_builder(self.tree))
            object.__setattr__(self, "fast_leaves", compile_getter(self.tree))

    def __getstate__(self) -> dict[str, Any]:
        """What a pickle holds: the record without its generated walks (regenerated when
        unpickled), devices in the portable form their backend registered in
        :data:`DEVICE_PICKLING` (JAX shardings as (platform, device id))."""
        state = dict(self.__dict__)
        state["fast_build"] = state["fast_leaves"] = None
        pickling = DEVICE_PICKLING.get(self.backend_name)
        if pickling is not None:
            state["devices"] = pickling[0](self.devices)
            # pickled by reference: unpickling imports the backend that registered it
            state["_local_devices"] = pickling[1]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        to_local = state.pop("_local_devices", None)
        if to_local is not None:
            state["devices"] = to_local(state["devices"])
        for name, value in state.items():
            object.__setattr__(self, name, value)
        self.__post_init__()

    @functools.cached_property
    def low_precision(self) -> bool:
        """True when some entry is stored with less precision than float64."""
        return any(dt is None or dt.itemsize < 8 for dt in self.np_dtypes)

    @property
    def n(self) -> int:
        """Total number of scalars."""
        return self.offsets[-1]

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(b - a for a, b in zip(self.offsets[:-1], self.offsets[1:], strict=True))

    def slice_of(self, i: int) -> slice:
        return slice(self.offsets[i], self.offsets[i + 1])

    def build(self, values: Iterable[Any]) -> Mapping:
        """A mapping of x0's type (and nesting) from values in layout order."""
        if self.tree is not None:
            fast = self.fast_build
            if fast is not None:
                return fast(values if isinstance(values, list) else list(values))
            return self.tree.build(iter(values))
        return self.factory(zip(self.keys, values, strict=True))

    def split_numpy(self, vec: np.ndarray) -> list[np.ndarray]:
        """Views of a flat NumPy vector, one per key, reshaped (no copy)."""
        return [
            vec[a:b].reshape(s)
            for a, b, s in zip(self.offsets[:-1], self.offsets[1:], self.shapes, strict=True)
        ]


def x0_items(x0: Any, where: str = "x0") -> tuple[Node | None, list[Hashable], list[Any]]:
    """(tree, keys, leaves) of ``x0``: the tree is None for a flat dict (keys are its keys),
    else the nesting, with the leaves' :class:`~dict_minimize._structure.tree.Path` as keys.
    ``x0`` is a Mapping or (nested parameters only) a JAX pytree node such as an Equinox module."""
    if isinstance(x0, Mapping):
        by_type: dict[type, Any] = {}  # being a container depends on the type alone
        for v in x0.values():
            by_type.setdefault(type(v), v)
        # in a Mapping JAX registers (nnx.State), None is an empty subtree, not an entry
        if not any(is_container(v) for v in by_type.values()) and not (
            type(None) in by_type and jax_territory(x0)
        ):
            return None, list(x0.keys()), list(x0.values())
    tree, paths, leaves = make_tree(x0, _mapping_factory, where)
    return tree, list(paths), leaves


def make_layout(
    x0: Any,
    backend: Backend,
    *,
    where: str = "x0",
    items: tuple[Node | None, list[Hashable], list[Any]] | None = None,
) -> Layout:
    """Validate ``x0`` and capture its structure. Raises TypeError/ValueError naming the key.

    ``items``: :func:`x0_items` of ``x0`` when the caller has it (with leaves it converted).
    """
    if not isinstance(x0, Mapping) and not is_pytree_node(x0):
        raise TypeError(
            f"{where} must be a dict (or other Mapping) of tensors; got a {type_name(x0)}. "
            "Wrap a single tensor as {'x': tensor}."
        )
    if isinstance(x0, Mapping) and len(x0) == 0:
        raise ValueError(f"{where} is empty: there is nothing to optimize")
    tree, key_list, values = x0_items(x0, where) if items is None else items
    keys = tuple(key_list)
    owned: dict[type, bool] = {}  # every backend's owns() depends on the type alone
    for k, v in zip(keys, values, strict=True):
        t = type(v)
        ok = owned.get(t)
        if ok is None:
            ok = owned[t] = backend.owns(v)
        if not ok:
            raise TypeError(
                f"{at(where, k)} is a {type_name(v)}; expected a "
                f"{TENSOR_NAMES[backend.name]}, like every entry of {where} "
                f"(backend {backend.name!r})"
            )
    infos = [backend.describe(k, v) for k, v in zip(keys, values, strict=True)]
    offsets = [0]
    for info in infos:
        offsets.append(offsets[-1] + math.prod(info.shape))
    if offsets[-1] == 0:
        raise ValueError(
            f"every entry of {where} is empty (size 0): keys {fmt_keys(keys)}; "
            "there is nothing to optimize"
        )
    return Layout(
        keys=keys,
        shapes=tuple(i.shape for i in infos),
        dtypes=tuple(i.dtype for i in infos),
        np_dtypes=tuple(i.np_dtype for i in infos),
        devices=tuple(i.device for i in infos),
        offsets=tuple(offsets),
        backend_name=backend.name,
        factory=_mapping_factory(x0) if isinstance(x0, Mapping) else dict,
        tree=tree,
    )


def keyed_like_x0(value: Any, layout: Layout) -> bool:
    """``value`` is given per entry of x0 (a dict of blocks), not as one array: a Mapping, or a
    node of x0's type when x0 is a JAX pytree node (an Equinox module)."""
    if isinstance(value, Mapping):
        return True
    tree = layout.tree
    return tree is not None and tree.kind == PYTREE and type(value) is tree.cls


def values_by_key(d: Any, layout: Layout, *, what: str = "gradient") -> list[Any]:
    """The values of ``d`` in layout order, matched by key (never by position)."""
    if layout.tree is not None:
        fast = layout.fast_leaves
        if fast is not None:
            try:
                return fast(d)
            except (Mismatch, LookupError, TypeError):
                pass  # not exactly x0's plain shape: the checking walk matches or names the path
        return leaves_of(d, layout.tree, what)
    if not isinstance(d, Mapping):
        raise TypeError(f"the {what} must be a dict with the keys of x0; got a {type_name(d)}")
    try:
        values = [d[k] for k in layout.keys]
    except KeyError:
        missing = [k for k in layout.keys if k not in d]
        raise ValueError(
            f"the {what} dict is missing key(s) {fmt_keys(missing)}; it must have exactly the "
            "keys of x0"
        ) from None
    if len(d) != len(layout.keys):
        known = set(layout.keys)
        extra = [k for k in d if k not in known]
        raise ValueError(
            f"the {what} dict has key(s) {fmt_keys(extra)} that x0 does not have; "
            f"x0's keys are {fmt_keys(layout.keys)}"
        )
    return values


__all__ = [
    "Layout",
    "Path",
    "fmt_key",
    "keyed_like_x0",
    "make_layout",
    "values_by_key",
    "x0_items",
]

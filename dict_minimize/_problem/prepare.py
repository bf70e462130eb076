"""The preparation every entry point shares, before SciPy starts.

``minimize``, ``least_squares`` and ``root`` (and the helpers built on them) check their common
arguments, lay out ``x0`` (backend, layout, codec, the float64 start vector) and flatten the
bounds here, once, in one way.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
from scipy.optimize import Bounds

from dict_minimize._errors import fmt_key, type_name
from dict_minimize._problem.bounds import make_bounds
from dict_minimize._structure.layout import Layout, make_layout, x0_items
from dict_minimize._structure.tree import is_container, is_pytree_node
from dict_minimize._structure.types import Backend, Codec
from dict_minimize.backends import detect, float_leaf, get_backend
from dict_minimize.backends._common import FLOAT_SCALARS


class Prepared(NamedTuple):
    """x0 laid out: its backend, layout, codec, leaves and float64 vector; the bounds."""

    backend: Backend
    layout: Layout
    codec: Codec
    leaves: list[Any]
    x0_flat: np.ndarray
    bounds: Bounds | None


def check_common(
    fun: Any, x0: Any, args: Any, backend: Any, jit: Any, *, compat: bool = False
) -> tuple:
    """The checks every entry point makes first; returns ``args`` as a tuple."""
    if not callable(fun):
        raise TypeError(f"fun must be callable; got a {type_name(fun)}")
    if not isinstance(x0, Mapping) and (compat or not is_pytree_node(x0)):
        raise TypeError(
            f"x0 must be a dict (or other Mapping) of tensors; got a {type_name(x0)}. "
            "Wrap a single tensor as {'x': tensor}."
        )
    if backend is not None and not isinstance(backend, str):
        raise TypeError(f"backend must be a string; got a {type_name(backend)}")
    if jit is not None and not isinstance(jit, bool):
        raise TypeError(f"jit must be None, True or False; got a {type_name(jit)}")
    if isinstance(x0, Mapping) and len(x0) == 0:
        raise ValueError("x0 is empty: there is nothing to optimize")
    return args if isinstance(args, tuple) else (args,)


#: the most layouts (and bound vectors) kept for repeated solves
_CACHE_SIZE = 64
#: flat NumPy x0 signature -> (backend, layout, codec)
_LAYOUTS: dict[Any, tuple[Backend, Layout, Codec]] = {}
#: (signature, lower, upper) with scalar bounds -> (backend, layout, codec, Bounds or None)
_PREPARED: dict[Any, tuple[Backend, Layout, Codec, Bounds | None]] = {}
_PLAIN_MAPPINGS = (dict, OrderedDict)


def _numpy_signature(x0: Any, backend: str | None, compat: bool) -> Any:
    """What a flat dict of NumPy arrays and floats is laid out from, or None for any other x0.

    Thousands of small solves of one structure (``minimize_many``, a loop of fits) then lay
    out x0 once: the layout and codec depend only on this signature (the mapping type, the
    keys in order, each entry's type, shape and dtype), never on the values.
    """
    if type(x0) not in _PLAIN_MAPPINGS or backend not in (None, "numpy"):
        return None
    parts: list[Any] = [type(x0), compat, tuple(x0)]
    for v in x0.values():
        t = type(v)
        if t in FLOAT_SCALARS or (t is float and not compat):  # the type says shape and dtype
            parts.append(t)
        elif t is np.ndarray:
            parts.append((v.shape, v.dtype))
        elif isinstance(v, np.generic) and t.__module__ == "numpy":
            parts.append((t, v.shape, v.dtype))
        else:
            return None
    return tuple(parts)


def _bound_signature(bounds: Any) -> Any:
    """A flat dict of scalar bounds as a hashable key; None when it is not one (or is None)."""
    if bounds is None:
        return ()
    if type(bounds) is not dict:
        return None
    for v in bounds.values():
        if not (v is None or type(v) is float or type(v) is int):
            return None
    return tuple(bounds.items())


def _remember(cache: dict, key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.pop(next(iter(cache)))
    cache[key] = value


def prepare(
    x0: Any, backend: str | None, lb_dict: Any, ub_dict: Any, *, compat: bool = False
) -> Prepared:
    """Lay out ``x0`` and flatten the bounds (``x0`` is only read).

    A flat dict of NumPy arrays and floats reuses the layout and codec of the last x0 of the
    same structure, and scalar bounds their flattened vectors (see :func:`_numpy_signature`).
    """
    key = _numpy_signature(x0, backend, compat)
    full = None
    if key is not None:
        lb_key, ub_key = _bound_signature(lb_dict), _bound_signature(ub_dict)
        if lb_key is not None and ub_key is not None:
            full = (key, lb_key, ub_key)
    hit = None if full is None else _PREPARED.get(full)
    cached: tuple[Backend, Layout, Codec] | None = None
    if hit is not None:
        cached = hit[:3]
    elif key is not None:
        cached = _LAYOUTS.get(key)
    if cached is None:
        be, layout, leaves = prepare_x0(x0, backend, compat)
        codec = be.make_codec(layout)
        if key is not None:
            _remember(_LAYOUTS, key, (be, layout, codec))
    else:
        be, layout, codec = cached
        leaves = [np.asarray(v, dtype=np.float64) if type(v) is float else v for v in x0.values()]
    if hit is not None:
        bounds = hit[3]
    else:
        bounds = make_bounds(lb_dict, ub_dict, layout, be)
        if full is not None:
            if bounds is not None:  # shared by later solves: nobody may write into it
                bounds.lb.flags.writeable = False
                bounds.ub.flags.writeable = False
            _remember(_PREPARED, full, (be, layout, codec, bounds))
    # x0 -> float64 through the codec: one transfer, and x0 itself is only read
    _, x0_flat = codec.flatten(None, leaves)
    return Prepared(be, layout, codec, leaves, x0_flat, bounds)


def prepare_x0(x0: Any, backend: str | None, compat: bool) -> tuple[Any, Layout, list]:
    """(backend, layout, leaves) of ``x0``, nested or flat; Python floats become 0-d tensors."""
    tree, keys, leaves = x0_items(x0)
    if compat and tree is not None:
        k = next(k for k, v in x0.items() if is_container(v))
        raise TypeError(
            f"x0_dict[{fmt_key(k)}] is a {type_name(x0[k])}: the drop-in minimize takes a flat "
            "dict of tensors, as the original did; for nested parameters use "
            "dict_minimize.minimize"
        )
    floats = [] if compat else [i for i, v in enumerate(leaves) if type(v) is float]
    if backend is not None:
        be = get_backend(backend)
    else:
        skip = set(floats)
        tensors = {k: leaves[i] for i, k in enumerate(keys) if i not in skip}
        be = detect(tensors) if tensors else get_backend("numpy")
    if floats:
        leaves = list(leaves)
        for i in floats:
            leaves[i] = float_leaf(be.name, leaves[i])
    layout = make_layout(x0, be, items=(tree, keys, leaves))
    return be, layout, leaves

"""Bounds given as dicts -> one ``scipy.optimize.Bounds`` of float64 arrays.

``lb_dict`` and ``ub_dict`` are each optional and may name only some keys (the rest are
unbounded). A value may be a scalar (broadcast to the key's shape), an array or tensor of the
key's shape, ``None`` or +-inf.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.optimize import Bounds

from dict_minimize._errors import (
    TENSOR_NAMES,
    a_class,
    at,
    fmt_dtype,
    fmt_keys,
    fmt_shape,
    type_name,
)
from dict_minimize._structure.layout import Layout
from dict_minimize._structure.tree import MAPPING, is_container, partial_leaves
from dict_minimize._structure.types import Backend
from dict_minimize.backends import _owner
from dict_minimize.backends._common import is_real_dtype

#: SciPy's words for it (users search for them)
_LOWER_ABOVE = "An upper bound is less than the corresponding lower bound"


def _bound_array(
    value: Any, key: Any, shape: tuple[int, ...], fill: float, which: str, backend: Backend
) -> np.ndarray | float:
    if value is None:
        return fill
    if type(value) is float or type(value) is int:  # the common case, checked cheaply
        if value != value:
            raise ValueError(f"{at(which, key)} contains NaN; use -inf/inf or None for 'none'")
        return float(value)
    where = at(which, key)

    def wrong_kind() -> TypeError:
        return TypeError(
            f"{where} is a {type_name(value)}; expected a number, None, or an array of shape "
            f"{fmt_shape(shape)}"
        )

    if isinstance(value, (bool, str, bytes)):
        raise wrong_kind()
    owner = _owner(value)
    if owner is not None and owner not in ("numpy", backend.name):
        own = TENSOR_NAMES[backend.name]
        kinds = "a list or a NumPy array" if own == "NumPy array" else f"a NumPy array or a {own}"
        raise TypeError(
            f"{where} is a {TENSOR_NAMES[owner]}, but x0 holds {own}s; a bound is a number, "
            f"None, {kinds} of shape {fmt_shape(shape)}"
        )
    # the dtype is checked before any conversion, which would drop imaginary parts silently
    dtype = getattr(value, "dtype", None)
    if dtype is not None and not is_real_dtype(dtype):
        raise TypeError(f"{where} has dtype {fmt_dtype(dtype)}; expected real numbers")
    if owner == backend.name and owner != "numpy":
        arr = backend.to_numpy(value)
    else:
        try:
            arr = np.asarray(value)  # numbers, lists and NumPy arrays
        except (TypeError, ValueError, RuntimeError) as exc:  # ragged lists, odd objects
            raise wrong_kind() from exc
        if not is_real_dtype(arr.dtype):
            raise TypeError(f"{where} has dtype {fmt_dtype(arr.dtype)}; expected real numbers")
        arr = arr.astype(np.float64, copy=False)
    if arr.shape not in ((), shape):
        raise ValueError(
            f"{where} has shape {fmt_shape(arr.shape)}, expected {fmt_shape(shape)} (the shape "
            f"of {at('x0', key)}) or a scalar"
        )
    if np.isnan(arr).any():
        raise ValueError(f"{where} contains NaN; use -inf/inf or None for 'none'")
    return arr


def _round_inward(lb: np.ndarray, ub: np.ndarray, np_dtype: np.dtype | None) -> None:
    """Move bounds to values representable in the entry's dtype, inside the interval.

    The objective sees ``x`` cast to the entry's dtype; with bounds representable in that dtype,
    rounding to nearest never takes ``x`` outside them (``log(x)`` with ``lb=1e-9`` in float16).
    """
    if np_dtype is None or np_dtype == np.float64:
        return
    try:
        with np.errstate(over="ignore"):  # bounds beyond the dtype's range: see `ok` below
            lo = lb.astype(np_dtype)
            hi = ub.astype(np_dtype)
            lo_up = np.where(
                lo.astype(np.float64) < lb, np.nextafter(lo, np.asarray(np.inf, np_dtype)), lo
            )
            hi_dn = np.where(
                hi.astype(np.float64) > ub, np.nextafter(hi, np.asarray(-np.inf, np_dtype)), hi
            )
    except (TypeError, ValueError):  # dtype without nextafter support: keep float64 bounds
        return
    new_lb, new_ub = lo_up.astype(np.float64), hi_dn.astype(np.float64)
    # an interval with no representable point keeps its float64 bounds, and so does a finite
    # bound beyond the dtype's range on the outward side (lb=7e4 in float16 would become inf)
    ok = (
        (new_lb <= new_ub)
        & (np.isfinite(new_lb) == np.isfinite(lb))
        & (np.isfinite(new_ub) == np.isfinite(ub))
    )
    lb[ok] = new_lb[ok]
    ub[ok] = new_ub[ok]


def _check_keys(d: Any, which: str, layout: Layout) -> Mapping:
    if not isinstance(d, Mapping):
        raise TypeError(f"{which} must be a dict keyed like x0; got a {type_name(d)}")
    known = set(layout.keys)
    unknown = [k for k in d if k not in known]
    if unknown:
        raise ValueError(
            f"{which} has bound(s) for unknown key(s) {fmt_keys(unknown)}; "
            f"x0's keys are {fmt_keys(layout.keys)}"
        )
    return d


def _by_path(d: Any, which: str, layout: Layout) -> Mapping:
    tree = layout.tree
    assert tree is not None
    if tree.kind == MAPPING and not isinstance(d, Mapping):
        raise TypeError(f"{which} must be a dict keyed like x0; got a {type_name(d)}")
    if not is_container(d):  # x0 is a JAX pytree node (an Equinox module)
        raise TypeError(
            f"{which} must be {a_class(tree.cls or object)} like x0, with None where "
            f"unbounded and scalars for whole subtrees; got a {type_name(d)}"
        )
    return partial_leaves(d, tree, which, broadcast=True)


def make_bounds(lb_dict: Any, ub_dict: Any, layout: Layout, backend: Backend) -> Bounds | None:
    """Flatten per-key bounds into one float64 ``Bounds``; None when neither dict is given.

    Example:
        >>> import numpy as np
        >>> from dict_minimize._structure.layout import make_layout
        >>> from dict_minimize.backends import get_backend
        >>> be = get_backend("numpy")
        >>> lay = make_layout({"a": np.zeros(2), "b": np.zeros(())}, be)
        >>> b = make_bounds({"a": 0.0}, {"b": 1.0}, lay, be)
        >>> b.lb, b.ub
        (array([  0.,   0., -inf]), array([inf, inf,  1.]))
    """
    if lb_dict is None and ub_dict is None:
        return None
    if layout.tree is not None:  # nested: per-leaf bounds by path; scalars at inner nodes spread
        lb_dict = None if lb_dict is None else _by_path(lb_dict, "lb_dict", layout)
        ub_dict = None if ub_dict is None else _by_path(ub_dict, "ub_dict", layout)
    lbs = _check_keys({} if lb_dict is None else lb_dict, "lb_dict", layout)
    ubs = _check_keys({} if ub_dict is None else ub_dict, "ub_dict", layout)
    lb = np.full(layout.n, -np.inf)
    ub = np.full(layout.n, np.inf)
    for i, key in enumerate(layout.keys):
        if key not in lbs and key not in ubs:
            continue
        sl, shape = layout.slice_of(i), layout.shapes[i]
        lo = _bound_array(lbs.get(key), key, shape, -np.inf, "lb_dict", backend)
        hi = _bound_array(ubs.get(key), key, shape, np.inf, "ub_dict", backend)
        lb[sl] = lo if type(lo) is float else np.ravel(lo)
        ub[sl] = hi if type(hi) is float else np.ravel(hi)
        if type(lo) is float and type(hi) is float:
            if lo > hi and sl.stop > sl.start:
                raise ValueError(
                    f"{_LOWER_ABOVE}: {at('lb_dict', key)} > {at('ub_dict', key)} at index "
                    f"{(0,) * len(shape)}: {lo} > {hi}"
                )
        else:
            bad = lb[sl] > ub[sl]
            if bad.any():
                j = int(np.flatnonzero(bad)[0])
                index = tuple(int(i) for i in np.unravel_index(j, shape)) if shape else ()
                raise ValueError(
                    f"{_LOWER_ABOVE}: {at('lb_dict', key)} > {at('ub_dict', key)} at index "
                    f"{index}: {lb[sl][j]} > {ub[sl][j]}"
                )
        np_dtype = layout.np_dtypes[i]
        if np_dtype is None or np_dtype != np.float64:  # slices are views: edits in place
            _round_inward(lb[sl], ub[sl], np_dtype)
    return Bounds(lb, ub)

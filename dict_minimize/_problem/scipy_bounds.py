"""SciPy's ``bounds=`` keyword, as a SciPy user types it, over a dict ``x0``.

Accepted forms (each side may be given per key or over the flat vector):

- a ``scipy.optimize.Bounds`` whose ``lb`` / ``ub`` are dicts keyed like ``x0`` (missing keys
  unbounded), or scalars / arrays over the flat vector (``x0``'s keys in order, as SciPy sees
  it);
- a dict of ``(lb, ub)`` pairs per key (a side may be None);
- least_squares' 2-tuple ``(lb, ub)``, each side a dict keyed like ``x0``, a scalar, or an
  array over the flat vector.

The result is one float64 ``Bounds`` over the flat vector. The checks that differ between
SciPy's entry points (strict ``lb < ub`` for least_squares, ``x0`` inside) stay with them;
:func:`flat_name` names a flat index by its key for their messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.optimize import Bounds

from dict_minimize._errors import at, fmt_key, type_name
from dict_minimize._problem.bounds import make_bounds
from dict_minimize._structure.layout import Layout
from dict_minimize._structure.types import Backend


def flat_name(layout: Layout, j: int, where: str = "x0") -> str:
    """Flat index ``j`` as its entry and index: ``x0['w'][(1, 0)]`` (``x0['b']`` for a scalar)."""
    i = int(np.searchsorted(np.asarray(layout.offsets), j, side="right")) - 1
    shape = layout.shapes[i]
    name = at(where, layout.keys[i])
    if not shape:
        return name
    index = tuple(int(k) for k in np.unravel_index(j - layout.offsets[i], shape))
    return f"{name} at index {index}"


def _flat_side(value: Any, layout: Layout, fill: float) -> np.ndarray:
    if value is None:
        return np.full(layout.n, fill)
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"a bound over the flat vector must be a number or an array of numbers; got a "
            f"{type_name(value)}"
        ) from exc
    if arr.ndim == 0:
        return np.full(layout.n, float(arr))
    if arr.shape != (layout.n,):
        raise ValueError(
            "Inconsistent shapes between bounds and `x0`: a bound over the flat vector has "
            f"shape {arr.shape}, and x0 has {layout.n} scalars in all (keys "
            f"{', '.join(fmt_key(k) for k in layout.keys)}, in this order); give a scalar, "
            "that many values, or a dict keyed like x0"
        )
    return arr.copy()


def _unwrap(side: Any) -> Any:
    """A dict side of a ``Bounds``: SciPy stores it as an object array of that dict."""
    if isinstance(side, np.ndarray) and side.dtype == object and side.size:
        first = side.flat[0]
        if isinstance(first, Mapping) and all(v is first for v in side.flat):
            return first
    return side


def _sides(lb: Any, ub: Any, layout: Layout, backend: Backend) -> Bounds:
    """One Bounds from two sides, each per key (a dict) or over the flat vector."""
    lb, ub = _unwrap(lb), _unwrap(ub)
    # Bounds({"a": 0.0}, 3.0) broadcasts the scalar with the dict's 1-element object array
    if isinstance(lb, Mapping) and isinstance(ub, np.ndarray) and ub.size == 1:
        ub = ub.reshape(())
    if isinstance(ub, Mapping) and isinstance(lb, np.ndarray) and lb.size == 1:
        lb = lb.reshape(())
    lo_dict = lb if isinstance(lb, Mapping) else None
    hi_dict = ub if isinstance(ub, Mapping) else None
    keyed = make_bounds(lo_dict, hi_dict, layout, backend)
    lo = keyed.lb.copy() if lo_dict is not None and keyed is not None else None
    hi = keyed.ub.copy() if hi_dict is not None and keyed is not None else None
    if lo is None:
        lo = _flat_side(lb, layout, -np.inf)
    if hi is None:
        hi = _flat_side(ub, layout, np.inf)
    return Bounds(lo, hi)


def _pairs(bounds: Mapping, layout: Layout, backend: Backend) -> Bounds:
    lbs: dict[Any, Any] = {}
    ubs: dict[Any, Any] = {}
    for key, pair in bounds.items():
        if pair is None:
            continue
        if isinstance(pair, (str, bytes)) or not hasattr(pair, "__len__") or len(pair) != 2:
            raise TypeError(f"{at('bounds', key)} must be a (lb, ub) pair; got a {type_name(pair)}")
        lbs[key], ubs[key] = pair
    out = make_bounds(lbs, ubs, layout, backend)
    assert out is not None
    return out


def least_squares_bounds(bounds: Any, layout: Layout, backend: Backend) -> Bounds | None:
    """SciPy's ``bounds=`` of least_squares over ``x0``'s layout; None when unbounded.

    Example:
        >>> import numpy as np
        >>> from dict_minimize._structure.layout import make_layout
        >>> from dict_minimize.backends import get_backend
        >>> be = get_backend("numpy")
        >>> lay = make_layout({"a": np.zeros(2), "b": np.zeros(())}, be)
        >>> b = least_squares_bounds({"a": (0.0, 1.0)}, lay, be)
        >>> b.lb, b.ub
        (array([  0.,   0., -inf]), array([ 1.,  1., inf]))
        >>> least_squares_bounds(Bounds({"b": 2.0}, 3.0), lay, be).lb
        array([-inf, -inf,   2.])
    """
    if bounds is None:
        return None
    if isinstance(bounds, Bounds):
        out = _sides(bounds.lb, bounds.ub, layout, backend)
    elif isinstance(bounds, Mapping):
        out = _pairs(bounds, layout, backend)
    else:
        if isinstance(bounds, (str, bytes)) or not hasattr(bounds, "__len__"):
            raise TypeError(
                f"bounds must be (lb, ub), a scipy.optimize.Bounds, or a dict of (lb, ub) "
                f"pairs keyed like x0; got a {type_name(bounds)}"
            )
        if len(bounds) != 2:
            raise ValueError(
                f"`bounds` must contain 2 elements: (lb, ub); got {len(bounds)}. Per key, give "
                "a dict of (lb, ub) pairs"
            )
        out = _sides(bounds[0], bounds[1], layout, backend)
    if np.isnan(out.lb).any() or np.isnan(out.ub).any():
        side = out.lb if np.isnan(out.lb).any() else out.ub
        j = int(np.flatnonzero(np.isnan(side))[0])
        raise ValueError(f"the bound for {flat_name(layout, j)} is NaN; use -inf/inf or None")
    if np.all(out.lb == -np.inf) and np.all(out.ub == np.inf):
        return None
    return out


__all__ = ["flat_name", "least_squares_bounds"]

"""SciPy's ``bounds=`` keyword, as a SciPy user types it, over a dict ``x0``.

Accepted forms (each side may be given per key or over the flat vector):

- a ``scipy.optimize.Bounds`` whose ``lb`` / ``ub`` are dicts keyed like ``x0`` (missing keys
  unbounded), or scalars / arrays over the flat vector (``x0``'s keys in order, as SciPy sees
  it);
- a dict of ``(lb, ub)`` pairs per key (a side may be None);
- least_squares' 2-tuple ``(lb, ub)``, each side a dict keyed like ``x0``, a scalar, or an
  array over the flat vector.

:func:`make_scipy_bounds` takes minimize's forms (the per-key ones above, and SciPy's flat
sequence of ``n`` pairs, which goes to SciPy unchanged); :func:`least_squares_bounds` takes
least_squares'. The result is one float64 ``Bounds`` over the flat vector. The checks that
differ between SciPy's entry points (strict ``lb < ub`` for least_squares, ``x0`` inside) stay
with them; :func:`flat_name` names a flat index by its key for their messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.optimize import Bounds

from dict_minimize._errors import at, fmt_key, fmt_keys, type_name
from dict_minimize._problem.bounds import _check_keys, make_bounds
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
    """A dict of ``(lb, ub)`` pairs per key (a pair may be None: unbounded) as one Bounds."""
    _check_keys(bounds, "bounds", layout)
    lbs: dict[Any, Any] = {}
    ubs: dict[Any, Any] = {}
    for key, pair in bounds.items():
        if pair is None:
            continue
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise TypeError(
                f"{at('bounds', key)} is a {type_name(pair)}; expected an (lb, ub) pair "
                "(a number, None or an array of the key's shape each)"
            )
        lbs[key], ubs[key] = pair
    out = make_bounds(lbs, ubs, layout, backend)
    return out if out is not None else Bounds(np.full(layout.n, -np.inf), np.full(layout.n, np.inf))


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


def _flat_feasible(keep: Any, layout: Layout) -> Any:
    """``Bounds.keep_feasible`` beside per-key bounds: one bool, or one per scalar of x0."""
    arr = np.asarray(keep, dtype=bool).reshape(-1)
    if arr.size == 1:
        return bool(arr[0])
    if arr.size != layout.n:
        raise ValueError(
            f"bounds.keep_feasible has {arr.size} values; expected one bool, or one per scalar "
            f"of x0 ({layout.n}) in key order"
        )
    return arr


def make_scipy_bounds(bounds: Any, layout: Layout, backend: Backend) -> Any:
    """SciPy's ``bounds=`` argument over a dict ``x0``, as what SciPy gets.

    Per-key forms (a ``Bounds`` of dicts, a dict of ``(lb, ub)`` pairs) become one flat
    ``Bounds`` as ``lb_dict``/``ub_dict`` do; flat forms (a ``Bounds`` of arrays, a sequence of
    ``n`` pairs) go to SciPy unchanged, checked only for their length, with SciPy's message.

    Example:
        >>> import numpy as np
        >>> from dict_minimize._structure.layout import make_layout
        >>> from dict_minimize.backends import get_backend
        >>> be = get_backend("numpy")
        >>> lay = make_layout({"a": np.zeros(2), "b": np.zeros(())}, be)
        >>> make_scipy_bounds({"a": (0, None)}, lay, be).lb
        array([  0.,   0., -inf])
    """
    if bounds is None:
        return None
    if isinstance(bounds, Bounds):
        lb, ub = _unwrap(bounds.lb), _unwrap(bounds.ub)
        lb, ub = (side if isinstance(side, Mapping) else None for side in (lb, ub))
        if lb is None and ub is None:
            return bounds  # flat arrays: SciPy checks them, in its words
        out = make_bounds(
            lb if lb is not None else _scalar_bound(bounds.lb, "lb", layout),
            ub if ub is not None else _scalar_bound(bounds.ub, "ub", layout),
            layout,
            backend,
        )
        assert out is not None
        keep = _flat_feasible(bounds.keep_feasible, layout)
        return Bounds(out.lb, out.ub, keep_feasible=keep)
    if isinstance(bounds, Mapping):
        return _pairs(bounds, layout, backend)
    if isinstance(bounds, (str, bytes)) or not hasattr(bounds, "__len__"):
        raise TypeError(
            f"bounds is a {type_name(bounds)}; expected a scipy.optimize.Bounds, a dict of "
            "(lb, ub) pairs per key, or a sequence of (lb, ub) pairs, one per scalar of x0"
        )
    if len(bounds) != layout.n:
        raise ValueError(
            "The number of bounds is not compatible with the length of `x0`: bounds has "
            f"{len(bounds)} (lb, ub) pair(s) and x0 has {layout.n} scalar(s) (keys "
            f"{fmt_keys(layout.keys)}). Give one pair per scalar of x0 in key order, a dict "
            "{key: (lb, ub)} (a scalar pair bounds a whole key), or lb_dict/ub_dict"
        )
    return bounds


def _scalar_bound(value: Any, which: str, layout: Layout) -> Any:
    """The side of a ``Bounds`` of dicts that is not a dict: one number for every key."""
    arr = np.asarray(value)
    if arr.dtype != object and arr.size == 1:
        arr = arr.reshape(())
    if arr.shape == () and arr.dtype != object and np.isinf(arr):
        return None
    if arr.shape != () or arr.dtype == object or layout.tree is not None:
        raise TypeError(
            f"bounds.{which} must be a dict keyed like x0 (or a number for every key) when the "
            f"other side is a dict; got a {type_name(value)}"
        )
    return dict.fromkeys(layout.keys, float(arr))


__all__ = ["flat_name", "least_squares_bounds", "make_scipy_bounds"]

"""The bounds of a batch of problems (``minimize_batched``): shared or per problem.

A bound whose shape is ``x0[key].shape`` (the leading axis B included) gives each problem its
own row; any other bound is shared and broadcasts over one problem's shape, exactly as
``minimize`` reads it (:func:`dict_minimize._problem.bounds.make_bounds`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.optimize import Bounds

from dict_minimize._errors import at
from dict_minimize._problem.bounds import (
    _LOWER_ABOVE,
    _bound_array,
    _by_path,
    _round_inward,
    make_bounds,
)
from dict_minimize._structure.layout import Layout
from dict_minimize._structure.types import Backend


def _shape(value: Any) -> tuple[int, ...] | None:
    shape = getattr(value, "shape", None)
    if shape is None and isinstance(value, list):
        try:
            shape = np.shape(value)
        except ValueError:  # ragged
            return None
    return None if shape is None else tuple(int(s) for s in shape)


def _split(d: Any, row: Layout, B: int) -> tuple[Any, dict[Any, Any]]:
    """(the shared bounds, the per-problem ones) of one of lb_dict / ub_dict."""
    if not isinstance(d, Mapping):
        return d, {}
    where = {k: i for i, k in enumerate(row.keys)}
    per = {
        k: v
        for k, v in d.items()
        if k in where and row.shapes[where[k]] and _shape(v) == (B, *row.shapes[where[k]])
    }
    per.update(
        {
            k: v
            for k, v in d.items()
            if k in where and not row.shapes[where[k]] and _shape(v) == (B,)
        }
    )
    return {k: v for k, v in d.items() if k not in per}, per


def problem_bounds(
    lb_dict: Any, ub_dict: Any, row: Layout, be: Backend, B: int
) -> list[Bounds | None] | None:
    """Each problem's ``Bounds`` (None: no bounds were given).

    Example:
        >>> import numpy as np
        >>> from dict_minimize._structure.layout import make_layout
        >>> from dict_minimize.backends import get_backend
        >>> be = get_backend("numpy")
        >>> row = make_layout({"a": np.zeros(2)}, be)
        >>> bs = problem_bounds({"a": np.array([[0.0, 1.0], [2.0, 3.0]])}, {"a": 5.0}, row, be, 2)
        >>> bs[1].lb, bs[1].ub
        (array([2., 3.]), array([5., 5.]))
    """
    if lb_dict is None and ub_dict is None:
        return None
    if row.tree is not None:  # nested: per-leaf bounds by path, then read as a flat dict of paths
        lb_dict = None if lb_dict is None else _by_path(lb_dict, "lb_dict", row)
        ub_dict = None if ub_dict is None else _by_path(ub_dict, "ub_dict", row)
        row = dataclasses.replace(row, tree=None)
    lb_shared, lb_per = _split(lb_dict, row, B)
    ub_shared, ub_per = _split(ub_dict, row, B)
    shared = make_bounds(
        {} if lb_shared is None and ub_shared is None else lb_shared, ub_shared, row, be
    )
    assert shared is not None
    if not lb_per and not ub_per:
        shared.lb.flags.writeable = False
        shared.ub.flags.writeable = False
        return [shared] * B
    LB = np.tile(np.asarray(shared.lb, dtype=np.float64), (B, 1))
    UB = np.tile(np.asarray(shared.ub, dtype=np.float64), (B, 1))
    for i, key in enumerate(row.keys):
        if key not in lb_per and key not in ub_per:
            continue
        sl, big = row.slice_of(i), (B, *row.shapes[i])
        for which, per, M, fill in (
            ("lb_dict", lb_per, LB, -np.inf),
            ("ub_dict", ub_per, UB, np.inf),
        ):
            if key in per:
                M[:, sl] = np.reshape(_bound_array(per[key], key, big, fill, which, be), (B, -1))
        bad = LB[:, sl] > UB[:, sl]
        if bad.any():
            p, j = (int(v[0]) for v in np.nonzero(bad))
            index = (
                tuple(int(v) for v in np.unravel_index(j, row.shapes[i])) if row.shapes[i] else ()
            )
            raise ValueError(
                f"{_LOWER_ABOVE}: {at('lb_dict', key)} > {at('ub_dict', key)} for problem {p} at "
                f"index {index}: {LB[p, sl][j]} > {UB[p, sl][j]}"
            )
        np_dtype = row.np_dtypes[i]
        if np_dtype is None or np_dtype != np.float64:
            _round_inward(LB[:, sl], UB[:, sl], np_dtype)
    return [Bounds(LB[p], UB[p]) for p in range(B)]

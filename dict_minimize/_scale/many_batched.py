"""``minimize_many(..., batched=True)`` (and ``multistart``): the problems as ONE batch of
:func:`dict_minimize._solvers.batched.solve_batched`, each problem prepared exactly as
``minimize`` prepares it (its layout, start vector and bounds), so results equal the unbatched
ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dict_minimize._errors import unknown_keyword
from dict_minimize._problem.prepare import prepare
from dict_minimize._problem.result import OptimizeResult
from dict_minimize._solvers.batched import solve_batched
from dict_minimize.backends._batch import stack_values

#: minimize's keywords the batch takes, with minimize's defaults
_DEFAULTS: dict[str, Any] = {
    "method": None,
    "jac": True,
    "hess": None,
    "hessp": None,
    "tol": None,
    "callback": None,
    "options": None,
    "jit": None,
    "nonfinite": "inf",
    "trace": False,
    "time_limit": None,
    "threads": "auto",
    "vectorized": False,
    "max_rows": None,
}


def solve_many_batched(
    fun: Callable,
    starts: list[Any],
    per_args: list[tuple] | None,
    shared_args: tuple,
    lbs: list[Any],
    ubs: list[Any],
    options: dict[str, Any],
    progress: Any,
) -> list[OptimizeResult]:
    """Every problem's result (``per_args``: one args tuple per problem, or None when
    ``shared_args`` serve them all)."""
    options = dict(options)
    backend = options.pop("backend", None)
    for name in ("constraints", "bounds"):
        if name in options:
            raise TypeError(
                f"minimize_many(batched=True) does not take {name}= (lb_dict/ub_dict for bounds; "
                "batched=False for constraints)"
            )
    unknown = {k: v for k, v in options.items() if k not in _DEFAULTS}
    if unknown:
        raise unknown_keyword(unknown)
    kw = {**_DEFAULTS, **options}
    if not starts:
        return []
    prepared = [prepare(x0, backend, lb, ub) for x0, lb, ub in zip(starts, lbs, ubs, strict=True)]
    be, layout = prepared[0].backend, prepared[0].layout
    for i, p in enumerate(prepared):
        if p.layout != layout:
            raise ValueError(
                "minimize_many(batched=True) solves problems of one structure (the same keys, "
                f"shapes, dtypes and devices); x0s[{i}] differs from x0s[0]: pass batched=False"
            )
    has = [p.bounds is not None for p in prepared]
    if any(has) and not all(has):
        raise ValueError(
            "minimize_many(batched=True): give every problem bounds or none (problem "
            f"{has.index(not has[0])} differs from problem 0), or pass batched=False"
        )
    batch_args: tuple = ()
    if per_args is not None:
        if len({len(a) for a in per_args}) > 1:
            raise ValueError("minimize_many(batched=True): every problem's args have one length")
        batch_args = tuple(
            stack_values([a[j] for a in per_args], be.name) for j in range(len(per_args[0]))
        )
    results, _, _ = solve_batched(
        fun,
        be,
        layout,
        np.stack([p.x0_flat for p in prepared]),
        [p.bounds for p in prepared] if all(has) else None,
        batch_args=batch_args,
        args=shared_args,
        progress=progress,
        **kw,
    )
    return results

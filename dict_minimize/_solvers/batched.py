"""Many problems of one structure, each with its own SciPy state, one vectorized call per round.

:func:`minimize_batched` lays out ONE problem (x0's leaves without their leading axis) and runs
every problem's solve through the steps :func:`dict_minimize._solvers.minimize.solve` runs
(``_make_objective``, ``_flat_functions``, ``_call_scipy``, ``_finish``), each as a coroutine
(a greenlet) whose objective pauses at each evaluation request. The driver gathers the pending
requests of all live problems, evaluates them in one call of the backend's batched evaluator
(:class:`~dict_minimize._structure.types.BatchEval`), and resumes each problem with its row.
A problem's SciPy run sees exactly the values and gradients it would see alone, so its
iterations, counts, messages, traces and non-finite handling are those of ``minimize``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from dict_minimize._errors import at, fmt_shape, type_name, unknown_keyword
from dict_minimize._problem.prepare import check_common, prepare
from dict_minimize._problem.result import OptimizeResult
from dict_minimize._problem.trace import check_time_limit, check_trace_arg
from dict_minimize._problem.trace import problems_bar as _bar
from dict_minimize._solvers import batched_fast
from dict_minimize._solvers.batched_bounds import problem_bounds
from dict_minimize._solvers.batched_drive import Driver
from dict_minimize._solvers.batched_rows import _Plan, _task
from dict_minimize._solvers.minimize_steps import (
    _check_hessians,
    _is_autodiff,
    _jac_mode,
    _normalize_method,
)
from dict_minimize._structure.layout import Layout, values_by_key, x0_items
from dict_minimize._threads import check_threads, solve_threads

__all__ = ["BatchedResult", "minimize_batched"]

#: the methods the batched driver runs (gradient methods; Hessians as products only)
BATCHED_METHODS = (
    "l-bfgs-b",
    "bfgs",
    "cg",
    "tnc",
    "slsqp",
    "trust-constr",
    "newton-cg",
    "trust-ncg",
    "trust-krylov",
)


class BatchedResult(OptimizeResult):
    """The result of :func:`minimize_batched`.

    ``results``: one ``OptimizeResult`` per problem, in order (as ``minimize`` returns it);
    ``x``: the solutions stacked, a dict like ``x0`` (leading axis B, x0's dtypes and device);
    ``fun``, ``success``, ``status``, ``nit``, ``nfev``, ``njev``: (B,) NumPy arrays of the
    per-problem fields; ``calls``: how many batched calls of ``fun`` ran (``rows``: their row
    counts, in order); ``path``: ``'fast'`` (SciPy's compiled L-BFGS-B core driven for the whole
    batch) or ``'generic'`` (each problem's ``scipy.optimize.minimize`` as a coroutine).

    Example:
        >>> import numpy as np
        >>> from dict_minimize import minimize_batched
        >>> res = minimize_batched(lambda x, idx: ((x["v"] - 1) ** 2, {"v": 2 * (x["v"] - 1)}),
        ...                        {"v": np.zeros(4)}, jac=True, vectorized=True)
        >>> len(res.results), res.x["v"].round(6).tolist(), res.calls
        (4, [1.0, 1.0, 1.0, 1.0], 2)
    """


def _row_layout(layout: Layout) -> tuple[Layout, int]:
    """The layout of one problem (every leaf without its leading axis) and the batch size."""
    sizes = set()
    for key, shape in zip(layout.keys, layout.shapes, strict=True):
        if len(shape) == 0:
            raise ValueError(
                f"{at('x0', key)} is 0-d; every leaf of x0 has a leading axis of length B (the "
                "number of problems): a scalar parameter per problem is an array of shape (B,)"
            )
        sizes.add(shape[0])
    if len(sizes) > 1:
        found = ", ".join(
            f"{at('x0', k)}: {fmt_shape(s)}"
            for k, s in zip(layout.keys, layout.shapes, strict=False)
        )
        raise ValueError(
            "every leaf of x0 has the same leading axis (the number of problems B); got " + found
        )
    shapes = tuple(s[1:] for s in layout.shapes)
    offsets = [0]
    for s in shapes:
        offsets.append(offsets[-1] + math.prod(s))
    row = dataclasses.replace(layout, shapes=shapes, offsets=tuple(offsets))
    return row, sizes.pop()


#: the integer fields of the stacked result
_COUNTS = ("nit", "nfev", "njev", "status")


def _empty_batch(x0: Any) -> bool:
    """Every leaf of x0 has a leading axis of length 0 (B = 0)."""
    _, _, leaves = x0_items(x0)
    shapes = [getattr(v, "shape", None) for v in leaves]
    return bool(shapes) and all(s is not None and len(s) > 0 and s[0] == 0 for s in shapes)


def _matrix(flat: np.ndarray, big: Layout, row: Layout, B: int) -> np.ndarray:
    """The stacked flat vector of x0 as the (B, n) matrix of the problems' start points."""
    blocks = [
        flat[a:b].reshape(B, -1) for a, b in zip(big.offsets[:-1], big.offsets[1:], strict=False)
    ]
    X = np.empty((B, row.n))
    for blk, (a, b) in zip(
        blocks, zip(row.offsets[:-1], row.offsets[1:], strict=True), strict=False
    ):
        X[:, a:b] = blk
    return X


def _check_batch_args(batch_args: Any, B: int) -> tuple:
    batch_args = batch_args if isinstance(batch_args, tuple) else (batch_args,)
    for j, a in enumerate(batch_args):
        shape = getattr(a, "shape", None)
        if shape is not None and (len(shape) == 0 or int(shape[0]) != B):
            raise ValueError(
                f"batch_args[{j}] has shape {fmt_shape(tuple(shape))}; per-problem data has the "
                f"leading axis of x0 ({B} problems): pass data shared by every problem in args"
            )
    return batch_args


def _check_keywords(unknown: dict[str, Any]) -> None:
    for name in ("constraints", "bounds"):
        if name in unknown:
            raise TypeError(
                f"minimize_batched does not take {name}= (use lb_dict/ub_dict for bounds; solve "
                "constrained problems with minimize_many)"
            )
    if unknown:
        raise unknown_keyword(unknown)


def _check_mode(mode: str, be: Any, vectorized: bool, name: str, hess: Any, hessp: Any) -> None:
    if mode not in ("pair", "autodiff"):
        raise ValueError(
            "minimize_batched needs jac='autodiff' (fun returns the value) or jac=True (fun "
            "returns (value, grad_dict)); finite differences and jac callables are not batched"
        )
    if be.batch is None:  # pragma: no cover - every backend has one
        raise ValueError(f"the {be.name} backend has no batched evaluation")
    if be.scalar_ad is None and not vectorized:
        raise ValueError(
            f"{be.name} arrays cannot be vectorized automatically: pass vectorized=True with "
            "fun(x_active, idx, *batch_args_active, *args) evaluating the stacked problems"
        )
    if mode == "autodiff" and be.scalar_ad is None:
        raise ValueError(
            f"jac='autodiff' needs a framework with automatic differentiation, and x0 holds "
            f"{be.name} arrays: pass jac=True and return (values, stacked grad_dict)"
        )
    if name not in BATCHED_METHODS:
        raise ValueError(
            f"method {name!r} is not batched; minimize_batched runs "
            f"{', '.join(BATCHED_METHODS)} (use minimize_many for the others)"
        )
    if hess is not None or not (hessp is None or _is_autodiff(hessp)):
        raise ValueError(
            "minimize_batched takes only hessp='autodiff' (the default for Newton-CG, trust-ncg, "
            "trust-krylov and trust-constr under jac='autodiff'); hess and hess/hessp callables "
            "are not batched"
        )


def _collect(
    results: list[OptimizeResult], layout: Layout, evaluator: Any, big: Layout, driver: Any
) -> BatchedResult:
    B, n, codec = len(results), layout.n, None
    X = driver.flat if driver.flat is not None else np.empty((B, n))
    for i, r in enumerate(results if driver.flat is None else ()):
        if codec is None:
            from dict_minimize.backends import get_backend

            codec = get_backend(layout.backend_name).make_codec(layout)
        X[i] = codec.flatten(None, values_by_key(r.x, layout))[1]
    out = BatchedResult(results=results, x=big.build(evaluator.stack(X)))
    for field in ("fun", *_COUNTS):
        dtype = np.float64 if field == "fun" else np.int64
        out[field] = np.array([r.get(field, 0) for r in results], dtype=dtype)
    out["success"] = np.array([bool(r.success) for r in results], dtype=bool)
    out["path"] = driver.path
    out["calls"] = len(driver.rows)
    out["rows"] = list(driver.rows)
    return out


def minimize_batched(
    fun: Callable,
    x0: Any,
    *,
    batch_args: Any = (),
    args: Any = (),
    method: str = "L-BFGS-B",
    jac: bool | str = "autodiff",
    lb_dict: Mapping[Any, Any] | None = None,
    ub_dict: Mapping[Any, Any] | None = None,
    vectorized: bool = False,
    max_rows: int | None = None,
    hessp: str | None = None,
    hess: None = None,
    tol: float | None = None,
    callback: Callable | None = None,
    options: Mapping[str, Any] | None = None,
    backend: str | None = None,
    jit: bool | None = None,
    nonfinite: str = "inf",
    trace: bool | str = False,
    progress: bool | Mapping[str, Any] = False,
    time_limit: float | None = None,
    threads: int | str | None = "auto",
    **unknown: Any,
) -> BatchedResult:
    """Solve B problems of one structure at once: each its own SciPy run, one call per round.

    Every leaf of ``x0`` has a leading axis of length B: problem ``i`` starts at
    ``{key: x0[key][i]}``. Each problem runs ``scipy.optimize.minimize`` as
    :func:`~dict_minimize.minimize` would run it alone (the same defaults, counts, messages,
    traces and non-finite handling), but its evaluations are gathered: at each round the
    objective is called ONCE for all unfinished problems that need an evaluation, and a
    problem leaves the batch as soon as it finishes. The problems are never summed into one
    objective. See [Batched solves](guide/batched.md).

    Args:
        fun: with ``vectorized=False`` (the default), ONE problem's objective,
            ``fun(x_i, *batch_args_i, *args)``, which the framework vectorizes over the active
            problems (PyTorch ``torch.func.vmap``, JAX ``jax.vmap`` under ``jax.jit``,
            TensorFlow ``tf.vectorized_map``). With ``vectorized=True`` (the only form for
            NumPy), ``fun(x_active, idx, *batch_args_active, *args)`` takes the stacked points of
            the active problems (leading axis k), their indices into the batch (an int64 array:
            NumPy for NumPy and PyTorch, a traced JAX array under ``jax.jit``, a TensorFlow
            tensor) and the rows of ``batch_args`` for them, and returns the k values (with
            ``jac=True``: the k values and the stacked gradient dict). Under JAX's ``jit`` the
            rows are padded to a power of two with copies of the first active row.
        x0: the start points, a dict (or pytree) of tensors each with the leading axis B.
        batch_args: per-problem data, a tuple of tensors (or nested tuples/dicts of them) with
            the same leading axis B.
        args: data shared by every problem.
        method: ``'L-BFGS-B'`` (the default), ``'BFGS'``, ``'CG'``, ``'TNC'``, ``'SLSQP'``,
            ``'trust-constr'``, or ``'Newton-CG'``, ``'trust-ncg'``, ``'trust-krylov'`` (with
            batched autodiff Hessian-vector products).
        jac: ``'autodiff'`` (the default; ``fun`` returns only the value) or ``True`` (``fun``
            returns ``(value, grad_dict)``). PyTorch with ``jac=True`` and
            ``vectorized=False``: a ``fun`` that calls ``torch.autograd.grad`` cannot run
            under ``vmap``, and is then called once per problem (correct, not faster); one that
            differentiates itself with ``jax.grad`` or a ``tf.GradientTape`` is vectorized.
        lb_dict: lower bounds. A bound whose shape is ``x0[key].shape`` (leading axis
            included) gives each problem its own; anything else is shared, read as
            :func:`~dict_minimize.minimize` reads it for one problem.
        ub_dict: upper bounds, the same way.
        vectorized: whether ``fun`` is already batched (see ``fun``).
        max_rows: at most this many problems per call of ``fun`` (None: all active ones).
        hessp: ``'autodiff'`` or None (the default, which is ``'autodiff'`` for Newton-CG,
            trust-ncg, trust-krylov and trust-constr under ``jac='autodiff'``, as in minimize).
        hess: only None (dense Hessians are not batched).
        tol: as in :func:`~dict_minimize.minimize`.
        callback: as in :func:`~dict_minimize.minimize`, called with each problem's own
            iterate (a dict of one problem).
        options: SciPy's method options, the same for every problem.
        backend: force a backend, as in :func:`~dict_minimize.minimize`.
        jit: JAX and TensorFlow: compile the batched evaluation (the default; JAX pads each
            call's rows to a power of two with copies of an active row, so a shrinking batch
            compiles O(log B) times). False runs it eagerly.
        nonfinite: as in :func:`~dict_minimize.minimize`, per problem.
        trace: ``True``/``'x'``: each problem's result gets its own ``trace``.
        progress: a tqdm bar counting finished problems (``[progress]`` extra).
        time_limit: seconds; each problem stops at its first iteration that ends after the
            limit, as :func:`~dict_minimize.minimize` stops, with its point and message.
        threads: as in :func:`~dict_minimize.minimize`, for the whole batch.

    Returns:
        BatchedResult: ``results`` (one ``OptimizeResult`` per problem, in order, as
            :func:`~dict_minimize.minimize_many` returns them: a problem whose solve raised —
            ``fun`` raised for its row, its objective is not finite at its x0 — has
            ``success=False``, ``status=-1`` and the exception in ``message`` and
            ``exception``, and the others are unaffected); ``x`` (the solutions stacked like
            ``x0``, on its device and dtypes); ``fun``, ``success``, ``status``, ``nit``,
            ``nfev``, ``njev`` as (B,) arrays; ``calls`` and ``rows`` (the batched calls of
            ``fun`` and the row count of each); ``path``: ``'fast'`` where SciPy's compiled
            L-BFGS-B core was driven for the whole batch, ``'generic'`` otherwise.

    Raises:
        TypeError, ValueError: malformed arguments, a leaf without the leading axis B, a
            method or ``jac`` that is not batched; ImportError without greenlet (the
            ``[batched]`` extra).

    Example:
        >>> import numpy as np
        >>> from dict_minimize import minimize_batched
        >>> def fun(x, idx, target):  # vectorized: x["w"] is (k, 2), target (k,)
        ...     r = x["w"] - target[:, None]
        ...     return (r**2).sum(axis=1), {"w": 2 * r}
        >>> res = minimize_batched(fun, {"w": np.zeros((3, 2))}, batch_args=(np.arange(3.0),),
        ...                        jac=True, vectorized=True)
        >>> res.x["w"].round(6).tolist(), bool(res.success.all())
        ([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]], True)
    """
    _check_keywords(unknown)
    args = check_common(fun, x0, args, backend, jit)
    if not isinstance(method, str):
        raise TypeError(f"method must be a string; got a {type_name(method)}")
    if _empty_batch(x0):  # B = 0: nothing to solve, fun never called
        return BatchedResult(
            results=[], x=copy.copy(x0), path="none", calls=0, rows=[], fun=np.zeros(0),
            success=np.zeros(0, bool), **{f: np.zeros(0, np.int64) for f in _COUNTS},
        )  # fmt: skip
    be, big, _, _, flat, _ = prepare(x0, backend, None, None)
    layout, B = _row_layout(big)
    bounds = problem_bounds(lb_dict, ub_dict, layout, be, B)
    results, driver, evaluator = solve_batched(
        fun,
        be,
        layout,
        _matrix(flat, big, layout, B),
        bounds,
        batch_args=batch_args,
        args=args,
        method=method,
        jac=jac,
        hess=hess,
        hessp=hessp,
        vectorized=vectorized,
        max_rows=max_rows,
        tol=tol,
        callback=callback,
        options=options,
        jit=jit,
        nonfinite=nonfinite,
        trace=trace,
        progress=progress,
        time_limit=time_limit,
        threads=threads,
    )
    return _collect(results, layout, evaluator, big, driver)


def solve_batched(
    fun: Callable,
    be: Any,
    layout: Layout,
    X0: np.ndarray,
    bounds: list[Any] | None,
    *,
    batch_args: Any,
    args: tuple,
    method: str | None,
    jac: Any,
    hess: Any,
    hessp: Any,
    vectorized: bool,
    max_rows: int | None,
    tol: Any,
    callback: Any,
    options: Any,
    jit: bool | None,
    nonfinite: str,
    trace: Any,
    progress: Any,
    time_limit: Any,
    threads: Any,
    fast: bool = True,
) -> tuple[list[OptimizeResult], Driver, Any]:
    """The batch of ``X0``'s rows (one problem each, of ``layout``) with per-problem ``bounds``:
    the results in order, the driver (its call counts) and the evaluator. ``minimize_batched``
    and ``minimize_many(..., batched=True)`` share it."""
    threads = check_threads(threads)
    if not isinstance(vectorized, bool):
        raise TypeError(f"vectorized must be True or False; got a {type_name(vectorized)}")
    if max_rows is not None and (
        isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1
    ):
        raise ValueError(f"max_rows must be None or a positive int; got {max_rows!r}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable; got a {type_name(callback)}")
    if options is not None and not isinstance(options, Mapping):
        raise TypeError(f"options must be a dict; got a {type_name(options)}")
    if nonfinite not in ("inf", "raise", "pass"):
        raise ValueError(f"nonfinite must be 'inf', 'raise' or 'pass'; got {nonfinite!r}")
    record, keep_x = check_trace_arg(trace)
    limit = check_time_limit(time_limit)
    B = X0.shape[0]
    name = _normalize_method(method, bounds is not None, False)
    mode = _jac_mode(jac)
    hess_, hessp = _check_hessians(
        name, mode, hess, hessp, layout.n, method, be.scalar_ad is not None
    )
    _check_mode(mode, be, vectorized, name, hess_, hessp)
    batch_args = _check_batch_args(batch_args, B)
    evaluator = be.batch(layout, fun, args, batch_args, mode=mode, vectorized=vectorized, jit=jit)
    plan = _Plan(
        fun,
        args,
        layout,
        be.make_codec(layout),
        mode,
        jac,
        hessp,
        name,
        name if method is None else method,
        jit,
        nonfinite,
        tol,
        callback,
        None if options is None else dict(options),
        record,
        keep_x,
        limit,
        X0,
        bounds,
    )
    bar = _bar(progress, B)
    driver = Driver(evaluator, max_rows, bar)
    try:
        with solve_threads(threads, layout.n, be):
            if fast and batched_fast.available(plan, progress):
                driver.path = "fast"
                results, driver.flat = batched_fast.run(plan, driver)
            else:
                results = driver.run([_task(plan, i, driver) for i in range(B)])
    finally:
        if bar is not None:
            bar.close()
    return results, driver, evaluator

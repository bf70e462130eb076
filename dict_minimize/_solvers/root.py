"""``scipy.optimize.root`` over a dict of tensors (the residual conventions of
:func:`~dict_minimize.least_squares`)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from scipy.optimize import root as scipy_root

from dict_minimize._errors import type_name
from dict_minimize._problem.prepare import check_common, prepare
from dict_minimize._problem.result import OptimizeResult
from dict_minimize._solvers.least_squares import (
    ResidualProblem,
    refuse_conveniences,
    user_jacobian,
)
from dict_minimize._threads import check_threads, solve_threads, timed_first

#: every method of ``scipy.optimize.root``
ROOT_METHODS = (
    "hybr",
    "lm",
    "broyden1",
    "broyden2",
    "anderson",
    "linearmixing",
    "diagbroyden",
    "excitingmixing",
    "krylov",
    "df-sane",
)
#: the methods that use a Jacobian
JAC_METHODS = ("hybr", "lm")


class _Combined:
    """``fun`` returning ``(residuals, jacobian)`` (SciPy's ``jac=True``): the residuals for
    SciPy, the Jacobian kept for the same point."""

    def __init__(self, fun: Callable) -> None:
        self.fun = fun
        self.jac_out: Any = None

    def __call__(self, x_dict: Any, *args: Any) -> Any:
        out = self.fun(x_dict, *args)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError(
                f"with jac=True, fun must return (residuals, jacobian); got a {type_name(out)}"
            )
        self.jac_out = out[1]
        return out[0]


def root(
    fun: Callable,
    x0: Mapping[Any, Any],
    args: tuple = (),
    method: str = "hybr",
    jac: Any = "autodiff",
    tol: float | None = None,
    callback: Callable | None = None,
    options: Mapping[str, Any] | None = None,
    *,
    backend: str | None = None,
    jit: bool | None = None,
    threads: int | str | None = "auto",
    maximize: bool = False,
    error_handling: str = "raise",
) -> OptimizeResult:
    """``scipy.optimize.root`` with ``x0`` (and the result) a dict of tensors.

    Solves ``fun(x_dict, *args) == 0``, where ``fun`` returns a tensor of any shape or a dict of
    residual tensors (concatenated in the dict's key order at its first call) with as many
    values in all as ``x0`` has scalars.

    Args:
        fun: ``fun(x_dict, *args)`` returns the residuals.
        x0: the start, a dict (or nested dict) of tensors; only read.
        jac: used by ``'hybr'`` and ``'lm'`` only (the other methods ignore it and, as SciPy
            does, warn with a RuntimeWarning when one is given): ``'autodiff'`` (the
            framework's Jacobian; NumPy arrays cannot), a callable giving the ``(m, n)``
            Jacobian or blocks keyed like ``x0`` (see :func:`~dict_minimize.least_squares`),
            True (``fun`` returns the residuals and that Jacobian, as in SciPy), or None /
            False for SciPy's finite differences.
        args: extra positional arguments for ``fun`` and ``jac``.
        method: any method of ``scipy.optimize.root``.
        tol: as for SciPy.
        callback: ``callback(x_dict, f)`` with ``f`` the residuals in the user's shape; SciPy
            calls it for the methods other than ``'hybr'`` and ``'lm'``.
        options: as for SciPy.
        backend: force a backend by name; by default the one of ``x0``'s tensors.
        jit: compile the autodiff residuals (JAX, TensorFlow); None for the backend's default.
        threads: threads during the solve, as in :func:`~dict_minimize.minimize`; with
            ``"auto"`` a slow first evaluation lifts SciPy's cap too (its LAPACK work on the
            Jacobian grows with the residuals).

        maximize: only ``False`` (a root has nothing to maximize).
        error_handling: only ``'raise'``: SciPy's root methods need every residual finite.

    Returns:
        OptimizeResult: SciPy's fields, with ``x`` a dict like ``x0`` and ``fun`` the residuals
        at ``x`` (float64 NumPy arrays in the user's shape, a dict when ``fun`` returns one).

    Example:
        >>> import numpy as np
        >>> from dict_minimize import root
        >>> res = root(lambda d: np.stack([d["x"] ** 2 + d["y"] ** 2 - 4, d["x"] * d["y"] - 1]),
        ...            {"x": np.array(2.0), "y": np.array(0.5)}, jac=None)
        >>> res.success, round(float(res.x["x"] * res.x["y"]), 9)
        (True, 1.0)
    """
    args = check_common(fun, x0, args, backend, jit)
    threads = check_threads(threads)
    refuse_conveniences("root", maximize, error_handling)
    if not isinstance(method, str) or method.lower() not in ROOT_METHODS:
        raise ValueError(f"method must be one of {ROOT_METHODS}; got {method!r}")
    method = method.lower()  # as SciPy takes it
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable; got a {type_name(callback)}")
    if options is not None and not isinstance(options, Mapping):
        raise TypeError(f"options must be a dict; got a {type_name(options)}")
    uses_jac = method in JAC_METHODS
    if not (
        jac is None
        or isinstance(jac, bool)
        or callable(jac)
        or (isinstance(jac, str) and jac == "autodiff")
    ):
        raise ValueError(f"jac must be 'autodiff', a callable, True, None or False; got {jac!r}")
    prep = prepare(x0, backend, None, None)
    if not uses_jac and jac is not None and not (isinstance(jac, str) and jac == "autodiff"):
        warnings.warn(f"Method {method} does not use the jacobian (jac).", RuntimeWarning, 2)
    combined = _Combined(fun) if jac is True else None
    if combined is not None:
        fun = combined
    use = jac if uses_jac and jac is not None and not isinstance(jac, bool) else None
    prob = ResidualProblem(fun, args, prep, use, jit, "fun")
    n = prep.layout.n
    last_x: list[np.ndarray] = []

    def value(x: np.ndarray) -> np.ndarray:
        r = prob.value(x)
        if r.size != n:
            raise ValueError(
                f"fun returned {r.size} residual values, but x0 has {n} scalars: root needs as "
                "many equations as unknowns (use least_squares for other counts)"
            )
        if combined is not None:
            last_x[:] = [np.array(x, copy=True)]
        return r

    def combined_jacobian(x: np.ndarray) -> np.ndarray:
        assert combined is not None
        if not last_x or not np.array_equal(last_x[0], x):
            value(x)
        return user_jacobian(combined.jac_out, prob.res, prob.layout, prob.backend)

    kwargs: dict[str, Any] = {}
    if use is not None:
        kwargs["jac"] = prob.jacobian
    elif combined is not None and uses_jac:
        kwargs["jac"] = combined_jacobian
    if callback is not None:
        kwargs["callback"] = lambda x, f: callback(prob.as_dict(x), prob.res.shaped(f))
    caps = solve_threads(threads, prep.layout.n, prep.backend, lift_scipy=True)
    with caps:
        raw = scipy_root(
            timed_first(value, caps),
            prep.x0_flat,
            method=method,
            tol=tol,
            options=dict(options) if options is not None else None,
            **kwargs,
        )
    out = OptimizeResult(raw)
    out["x"] = prob.as_dict(np.asarray(raw.x, dtype=np.float64).reshape(-1))
    out["fun"] = prob.res.shaped(np.asarray(raw.fun, dtype=np.float64).reshape(-1))
    out["success"] = bool(raw.get("success", False))
    out["status"] = int(raw.get("status", 0))
    out["message"] = str(raw.get("message", ""))
    return out


__all__ = ["ROOT_METHODS", "root"]

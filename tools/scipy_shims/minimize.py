"""SciPy's ``minimize`` tests through ``dict_minimize.minimize``: the thin conversion.

What a SciPy user does who swaps the import: the flat ``x0`` becomes the one-key dict
``{"x": x0}``; ``fun``, ``jac``, ``hess``, ``hessp``, the constraints' functions and the callback
take (and return) that dict; ``res.x`` and ``res.jac`` are flattened back. Everything else
(``bounds``, ``options``, ``tol``, ``method``, SciPy's constraint and ``Bounds`` objects) passes
unchanged: the package takes SciPy's keywords as SciPy does.

``patch()`` replaces ``scipy.optimize.minimize`` (and ``scipy.optimize._minimize.minimize``) by
:func:`minimize` below; the package's own calls into SciPy reach the original (a per-thread
guard), so only the user-facing call is routed.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

TEST_FILES = [
    "test_optimize.py",
    "test_minimize_constrained.py",
    "test_lbfgsb_hessinv.py",
    "test_lbfgsb_setulb.py",
    "test_tnc.py",
    "test_slsqp.py",
    "test_cobyla.py",
    "test_cobyqa.py",
    "test_trustregion.py",
    "test_constraint_conversion.py",
]

#: tests that pass with plain SciPy and fail through the package on purpose: node id -> the
#: reason, each one a row of docs/guide/scipy-differences.md
KNOWN: dict[str, str] = {
    "test_optimize.py::TestOptimizeSimple::test_ndim_error": (
        "x0 entries keep their shape: a 2-D x0 is a 2-D entry, not SciPy's "
        "\"'x0' must only have one dimension\" error"
    ),
    "test_optimize.py::TestOptimizeSimple::test_finite_differences_hess": (
        "complex-step differentiation ('cs') is refused: fun gets real tensors of x0's dtypes"
    ),
    "test_optimize.py::TestOptimizeSimple::test_gh10771": (
        "a custom method gets bounds and constraints converted to the flat vector (an "
        "unrecognised constraint, here a string, is an error), not the objects given"
    ),
}

#: the one-line switch the differences table gives for SciPy's handling of NaN and inf
#: (the package's default raises at a non-finite x0 and substitutes later ones; the tests
#: check SciPy's behaviour, so the suite runs with the documented switch)
NONFINITE = "pass"

_ORIGINAL: dict[str, Callable] = {}
_inside = threading.local()


class _Fun:
    """``fun(x, *args)`` as a function of the dict; with ``jac=True`` the gradient as a dict.

    (Classes, not closures: SciPy's ``workers`` option pickles what it maps.)
    """

    def __init__(self, fun: Callable, pair: bool) -> None:
        self.fun, self.pair = fun, pair

    def __call__(self, d: Mapping, *args: Any) -> Any:
        out = self.fun(d["x"], *args)
        if self.pair and isinstance(out, tuple) and len(out) == 2:
            return out[0], {"x": out[1]}
        return out


class _Grad:
    """``jac(x, *args)`` as a function of the dict returning a dict."""

    def __init__(self, jac: Callable) -> None:
        self.jac = jac

    def __call__(self, d: Mapping, *args: Any) -> Any:
        return {"x": self.jac(d["x"], *args)}


class _Hessp:
    """``hessp(x, p, *args)`` over dicts."""

    def __init__(self, hessp: Callable) -> None:
        self.hessp = hessp

    def __call__(self, d: Mapping, p: Mapping, *args: Any) -> Any:
        return {"x": self.hessp(d["x"], p["x"], *args)}


def _wrap_grad(jac: Any) -> Any:
    return _Grad(jac) if callable(jac) else jac


def _wrap_matrix(fn: Any) -> Any:
    """A function returning a value or a flat matrix (Hessian, constraint Jacobian)."""
    if not callable(fn) or _is_update_strategy(fn):
        return fn
    return _Fun(fn, pair=False)


def _wrap_hessp(hessp: Any) -> Any:
    return _Hessp(hessp) if callable(hessp) else hessp


def _is_update_strategy(value: Any) -> bool:
    import scipy.optimize

    return isinstance(value, scipy.optimize.HessianUpdateStrategy)


def _wrap_constraint(con: Any) -> Any:
    import scipy.optimize

    if isinstance(con, Mapping):
        out = dict(con)
        if "fun" in out:
            out["fun"] = _wrap_matrix(out["fun"])
        if "jac" in out:
            out["jac"] = _wrap_matrix(out["jac"])
        return out
    if isinstance(con, scipy.optimize.NonlinearConstraint):
        return scipy.optimize.NonlinearConstraint(
            _wrap_matrix(con.fun),
            con.lb,
            con.ub,
            jac=_wrap_matrix(con.jac),
            hess=_wrap_matrix(con.hess),
            keep_feasible=con.keep_feasible,
            finite_diff_rel_step=con.finite_diff_rel_step,
            finite_diff_jac_sparsity=con.finite_diff_jac_sparsity,
        )
    return con  # LinearConstraint (flat coefficients), or anything for the package to judge


def _wrap_constraints(constraints: Any) -> Any:
    if isinstance(constraints, (list, tuple)):
        return [_wrap_constraint(c) for c in constraints]
    return _wrap_constraint(constraints)


def _wrap_callback(callback: Any) -> Any:
    if not callable(callback):
        return callback
    try:
        new_style = set(inspect.signature(callback).parameters) == {"intermediate_result"}
    except (TypeError, ValueError):
        new_style = False
    if new_style:

        def cb_result(intermediate_result: Any) -> Any:
            res = intermediate_result
            res["x"] = np.asarray(res["x"]["x"])
            return callback(intermediate_result=res)

        return cb_result

    def cb(x: Mapping, *state: Any) -> Any:  # (trust-constr: callback(xk, state))
        if state:
            state[0]["x"] = np.asarray(state[0]["x"]["x"])
        return callback(np.asarray(x["x"]), *state)

    return cb


def _flat_result(res: Any) -> Any:
    res["x"] = np.asarray(res["x"]["x"])
    jac = res.get("jac")
    if isinstance(jac, Mapping):
        res["jac"] = np.asarray(jac["x"])
    if "constr_jac" in res:  # trust-constr: SciPy's jac holds the constraints' Jacobians
        res["jac"] = res.pop("constr_jac")
    return res


def minimize(
    fun: Callable,
    x0: Any,
    args: Any = (),
    method: Any = None,
    jac: Any = None,
    hess: Any = None,
    hessp: Any = None,
    bounds: Any = None,
    constraints: Any = (),
    tol: Any = None,
    callback: Any = None,
    options: Any = None,
) -> Any:
    """SciPy's ``minimize`` signature, run by ``dict_minimize.minimize`` on ``{"x": x0}``."""
    if getattr(_inside, "depth", 0):  # the package calling SciPy: the original
        return _ORIGINAL["minimize"](
            fun,
            x0,
            args=args,
            method=method,
            jac=jac,
            hess=hess,
            hessp=hessp,
            bounds=bounds,
            constraints=constraints,
            tol=tol,
            callback=callback,
            options=options,
        )
    import dict_minimize

    x = np.atleast_1d(np.asarray(x0))  # SciPy's own first step
    x = x.astype(np.float64) if x.dtype.kind in "biu" else x
    kwargs: dict[str, Any] = {}
    if hess is not None:
        kwargs["hess"] = _wrap_matrix(hess)
    if hessp is not None:
        kwargs["hessp"] = _wrap_hessp(hessp)
    if bounds is not None:
        kwargs["bounds"] = bounds
    _inside.depth = getattr(_inside, "depth", 0) + 1
    try:
        res = dict_minimize.minimize(
            _Fun(fun, pair=jac is True),
            {"x": x},
            args=args,
            method=method,
            jac=_wrap_grad(jac),
            constraints=_wrap_constraints(constraints),
            tol=tol,
            callback=_wrap_callback(callback),
            options=options,
            nonfinite=NONFINITE,
            **kwargs,
        )
    finally:
        _inside.depth -= 1
    return _flat_result(res)


def patch() -> None:
    """Route ``scipy.optimize.minimize`` (both names the tests import) through the package."""
    import scipy.optimize
    import scipy.optimize._minimize

    if "minimize" not in _ORIGINAL:
        _ORIGINAL["minimize"] = scipy.optimize.minimize
    scipy.optimize.minimize = minimize
    scipy.optimize._minimize.minimize = minimize  # type: ignore[attr-defined]

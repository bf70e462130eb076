""":func:`~dict_minimize._solvers.minimize.solve`'s steps around the objective: the arguments
checked, bounds and method chosen, the derivatives decided, the solver picked (SciPy, NLopt or
Ipopt) and the sparsity report added. Each is one call in ``solve``; none imports a framework.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
import scipy.optimize

from dict_minimize._errors import type_name
from dict_minimize._problem.constraints import _as_list
from dict_minimize._problem.history import check_log_arg
from dict_minimize._problem.methods import NLOPT_PREFIX
from dict_minimize._problem.prepare import check_common, prepare
from dict_minimize._problem.result import OptimizeResult
from dict_minimize._problem.scipy_bounds import make_scipy_bounds
from dict_minimize._problem.sparsity import constraint_report
from dict_minimize._problem.trace import check_time_limit, check_trace_arg
from dict_minimize._solvers.ipopt import check_ipopt_args, default_hess, ipopt_solver
from dict_minimize._solvers.minimize_steps import (
    BOUNDED,
    METHODS,
    _check_hessians,
    _jac_mode,
    _normalize_method,
    _sparse_hess_args,
)
from dict_minimize._threads import check_threads


class Checked(NamedTuple):
    """The arguments of ``solve`` that need no x0, checked once."""

    args: Any
    threads: Any
    record: bool
    keep_x: bool
    limit: float | None
    log_path: Any


def check_arguments(
    fun: Callable,
    x0: Any,
    *,
    args: Any,
    backend: str | None,
    jit: bool | None,
    compat: bool,
    threads: Any,
    blas_threads: int | None,
    callback: Any,
    options: Any,
    nonfinite: str,
    error_handling: str,
    maximize: Any,
    trace: Any,
    time_limit: Any,
    log: Any,
) -> Checked:
    """Every argument check that does not need the prepared x0; a clear error for each."""
    args = check_common(fun, x0, args, backend, jit, compat=compat)
    threads = check_threads(threads, blas_threads)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable; got a {type_name(callback)}")
    if options is not None and not isinstance(options, Mapping):
        raise TypeError(f"options must be a dict; got a {type_name(options)}")
    if nonfinite not in ("inf", "raise", "pass"):
        raise ValueError(f"nonfinite must be 'inf', 'raise' or 'pass'; got {nonfinite!r}")
    if error_handling not in ("raise", "continue"):
        raise ValueError(f"error_handling must be 'raise' or 'continue'; got {error_handling!r}")
    if not isinstance(maximize, (bool, np.bool_)):
        raise TypeError(f"maximize must be True or False; got a {type_name(maximize)}")
    record, keep_x = check_trace_arg(trace)
    return Checked(
        args, threads, record, keep_x, check_time_limit(time_limit), check_log_arg(log)
    )


class Chosen(NamedTuple):
    """x0 prepared, its bounds, and the method that will run."""

    be: Any
    layout: Any
    codec: Any
    x0_flat: np.ndarray
    bounds: Any
    has_constraints: bool
    meth: Any
    name: str


def choose_bounds_and_method(
    x0: Any,
    *,
    backend: str | None,
    lb_dict: Any,
    ub_dict: Any,
    scipy_bounds: Any,
    constraints: Any,
    method: Any,
    compat: bool,
) -> Chosen:
    """x0 laid out (``prepare``), the bounds in SciPy's form, and the method SciPy's default
    rule picks; the drop-in's ``compat`` drops bounds a method ignores, with a warning."""
    be, layout, codec, _, x0_flat, bounds = prepare(x0, backend, lb_dict, ub_dict, compat=compat)
    if scipy_bounds is not None:
        if lb_dict is not None or ub_dict is not None:
            raise TypeError(
                "pass bounds=... or lb_dict/ub_dict, not both (bounds takes SciPy's forms: a "
                "Bounds, (lb, ub) pairs, or a dict of (lb, ub) pairs per key)"
            )
        bounds = make_scipy_bounds(scipy_bounds, layout, be)
    has_constraints = constraints is not None and not (
        isinstance(constraints, (list, tuple)) and len(constraints) == 0
    )
    meth = _normalize_method(method, bounds is not None, has_constraints)
    name = meth if isinstance(meth, str) else "_custom"
    if bounds is not None and name != "_custom" and name not in BOUNDED and compat:
        # (the drop-in's message names SciPy's methods, as the original package knew them)
        warnings.warn(
            f"method {method!r} cannot handle bounds: lb_dict/ub_dict are ignored, as the "
            "original dict_minimize (and SciPy) did. To respect them use one of "
            f"{', '.join(sorted(BOUNDED & set(METHODS)))}; or drop lb_dict/ub_dict",
            scipy.optimize.OptimizeWarning,
            stacklevel=4,
        )
        bounds = None
    # bounds, constraints, hess or hessp a method does not use: SciPy warns (RuntimeWarning,
    # naming the method) and goes on without them, and so does this driver
    return Chosen(be, layout, codec, x0_flat, bounds, has_constraints, meth, name)


def choose_derivatives(
    chosen: Chosen,
    *,
    method: Any,
    jac: Any,
    hess: Any,
    hessp: Any,
    options: Any,
    hess_sparsity: Any,
) -> tuple[Any, Any, Any]:
    """``(mode, hess, hessp)``: how the gradient is computed, and the Hessian or products the
    method gets (autodiff defaults, a sparse Hessian for a pattern, Ipopt's Lagrangian)."""
    be, name, n = chosen.be, chosen.name, chosen.layout.n
    mode = _jac_mode(jac)
    if mode == "autodiff" and be.scalar_ad is None:
        raise ValueError(
            f"jac='autodiff' needs a framework with automatic differentiation, and x0 holds "
            f"{be.name} arrays: return (value, grad_dict) from fun with jac=True, pass "
            "jac=<callable returning the gradient dict>, or jac='2-point' for finite differences"
        )
    if hess_sparsity is not None:
        hess, hessp = _sparse_hess_args(name, mode, hess, hessp)
    hess, hessp = _check_hessians(name, mode, hess, hessp, n, method, be.scalar_ad is not None)
    if hess_sparsity is not None:  # the sparse Hessian replaces products and dense Hessians
        hess, hessp = "autodiff", None
    if name == "ipopt":  # Ipopt takes the exact Hessian of the Lagrangian, or approximates it
        check_ipopt_args(hessp)
        hessp = None
        sparse = hess_sparsity is not None
        hess = default_hess(mode, hess, options, n, be.scalar_ad is not None, sparse)
    return mode, hess, hessp


def pick_solver(
    name: str,
    *,
    run: Any,
    constraints: Any,
    has_constraints: bool,
    flat_constraints: list,
    bounds: Any,
    hess_flat: Any,
    fun_flat: Callable,
    jac_flat: Any,
    scipy_callback: Any,
    options: Any,
    tol: Any,
) -> Callable | None:
    """What runs in place of ``scipy.optimize.minimize`` on the same prepared flat problem:
    NLopt's algorithms, Ipopt, or None (SciPy)."""
    if name.startswith(NLOPT_PREFIX):
        from dict_minimize._solvers.nlopt import minimize_nlopt

        return minimize_nlopt
    if name == "ipopt":
        return ipopt_solver(
            run=run,
            originals=_as_list(constraints) if has_constraints else [],
            flat_constraints=flat_constraints,
            bounds=bounds,
            hess_flat=hess_flat,
            fun_flat=fun_flat,
            jac_flat=jac_flat,
            scipy_callback=scipy_callback,
            options=options,
            tol=tol,
        )
    return None


def add_sparsity(out: OptimizeResult, run: Any, flat_constraints: list) -> None:
    """``res.sparsity``: the colours of every sparse derivative, where a pattern was given."""
    cons = constraint_report(flat_constraints)
    if run.sparse_hess is not None or any(c is not None for c in cons):
        out["sparsity"] = {
            "hess": None if run.sparse_hess is None else run.sparse_hess.info(),
            "constraints": cons,
        }

"""NLopt's algorithms behind ``minimize(..., method="nlopt:<algorithm>")``.

:func:`minimize_nlopt` takes what ``scipy.optimize.minimize`` takes — the flat functions, bounds
and constraints that :func:`dict_minimize._solvers.minimize.solve` prepared for every method —
and runs an ``nlopt.opt`` on them, so the dicts, autodiff, counts, non-finite policy, trace and
callbacks stay the driver's. What is NLopt's own:

- constraints become NLopt's ``fc(x) <= 0`` and ``h(x) = 0``: SciPy's ``c(x) >= 0`` is
  ``-c(x) <= 0``, ``lb <= c(x) <= ub`` is ``c - ub <= 0`` and ``lb - c <= 0`` (``c = lb`` where
  ``lb == ub``);
- NLopt has no per-iteration callback: an *iteration* is an evaluation (after ``x0``) whose
  value improves on the best value so far; ``callback``, ``trace``, ``progress`` and
  ``time_limit`` see those;
- the options are NLopt's own names (:data:`OPTIONS`); NLopt's result code is ``status``;
  ``fun`` raising ``nlopt.ForcedStop`` ends the run with status -5, as in NLopt.

``nlopt`` is imported only when such a method runs (the ``[nlopt]`` extra).
"""

from __future__ import annotations

import difflib
import math
import warnings
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import scipy.optimize

from dict_minimize._errors import type_name
from dict_minimize._problem.methods import BY_NAME, REGISTRY, resolve
from dict_minimize._problem.objective import float64_array, is_matrix_like

#: the options NLopt's methods take (NLopt's own names), and what each is
OPTIONS = {
    "xtol_rel": "relative tolerance on x",
    "xtol_abs": "absolute tolerance on x (a scalar or one value per scalar of x0)",
    "ftol_rel": "relative tolerance on the value",
    "ftol_abs": "absolute tolerance on the value",
    "maxeval": "the most evaluations of fun",
    "maxtime": "the most seconds (NLopt's own clock)",
    "stopval": "stop once the value is at or below it",
    "initial_step": "the first step (a scalar or one value per scalar of x0)",
    "population": "population size of the global algorithms (ISRES, CRS2, ESCH)",
    "seed": "seed of NLopt's random numbers (the global algorithms)",
    "constraint_tol": "tolerance on each constraint (default 1e-8)",
    "params": "NLopt's algorithm parameters, a dict (nlopt.opt.set_param)",
}
_STOPPING = ("xtol_rel", "xtol_abs", "ftol_rel", "ftol_abs", "maxeval", "maxtime", "stopval")
#: the stopping rule where the user gives none (NLopt's own default is to never stop)
DEFAULT_STOP = {"xtol_rel": 1e-8, "ftol_abs": 1e-14, "maxeval": 100_000}
#: SciPy's spellings, pointed to NLopt's in the message for an unknown option
_SCIPY_SPELLINGS = {
    "maxiter": "maxeval",
    "maxfev": "maxeval",
    "ftol": "ftol_rel",
    "xtol": "xtol_rel",
}
#: NLopt's result codes: (name, meaning)
RESULTS = {
    1: ("SUCCESS", "NLopt reports success"),
    2: ("STOPVAL_REACHED", "the value reached stopval"),
    3: ("FTOL_REACHED", "the value changed by less than ftol_rel or ftol_abs"),
    4: ("XTOL_REACHED", "x changed by less than xtol_rel or xtol_abs"),
    5: ("MAXEVAL_REACHED", "the number of evaluations reached maxeval"),
    6: ("MAXTIME_REACHED", "the time reached maxtime"),
    -1: ("FAILURE", "NLopt failed"),
    -2: ("INVALID_ARGS", "NLopt rejected the problem's arguments"),
    -3: ("OUT_OF_MEMORY", "NLopt ran out of memory"),
    -4: ("ROUNDOFF_LIMITED", "roundoff errors limited progress (x is often still useful)"),
    -5: ("FORCED_STOP", "the run was stopped"),
}
_SUCCESS = frozenset({1, 2, 3, 4})
_EPS = float(np.finfo(np.float64).eps)


def _import_nlopt() -> Any:
    try:
        import nlopt
    except ImportError as exc:
        raise ImportError(
            "method='nlopt:...' needs NLopt, which is not installed: "
            "pip install 'dict_minimize[nlopt]'"
        ) from exc
    return nlopt


def message_of(code: int) -> str:
    """NLopt's result code as a message.

    Example:
        >>> message_of(4)
        'NLopt: XTOL_REACHED: x changed by less than xtol_rel or xtol_abs'
    """
    name, meaning = RESULTS.get(code, ("UNKNOWN", f"result code {code}"))
    return f"NLopt: {name}: {meaning}"


def check_options(options: Mapping[str, Any] | None, method: str) -> dict[str, Any]:
    """The user's options, every name checked against :data:`OPTIONS`."""
    opts = dict(options or {})
    for key in opts:
        if key in OPTIONS:
            continue
        hint = _SCIPY_SPELLINGS.get(key) or next(
            iter(difflib.get_close_matches(str(key), list(OPTIONS), n=1)), None
        )
        guess = f" (did you mean {hint!r}?)" if hint else ""
        raise ValueError(
            f"unknown option {key!r} for method {method!r}{guess}; NLopt's methods take "
            f"{', '.join(OPTIONS)}"
        )
    return opts


def _fd(f: Callable[[np.ndarray], Any], x: np.ndarray, f0: Any, scheme: str) -> np.ndarray:
    """Finite differences of ``f`` (scalar or vector) at ``x``: ``(n,)`` or ``(m, n)``."""
    central = scheme == "3-point"
    f0 = np.asarray(f0, dtype=np.float64)
    out = np.empty((*f0.shape, x.size))
    step = (_EPS ** (1 / 3) if central else math.sqrt(_EPS)) * np.maximum(1.0, np.abs(x))
    for i in range(x.size):
        xp = x.copy()
        xp[i] += step[i]
        if central:
            xm = x.copy()
            xm[i] -= step[i]
            diff = (np.asarray(f(xp)) - np.asarray(f(xm))) / (2 * step[i])
        else:
            diff = (np.asarray(f(xp)) - f0) / step[i]
        out[..., i] = diff
    return out


def _box(bounds: Any, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """SciPy's bounds (a ``Bounds`` or ``(lb, ub)`` pairs with None) as two float64 arrays."""
    if bounds is None:
        return None
    if isinstance(bounds, scipy.optimize.Bounds):
        lb = np.broadcast_to(np.asarray(bounds.lb, dtype=np.float64), (n,))
        ub = np.broadcast_to(np.asarray(bounds.ub, dtype=np.float64), (n,))
        return lb.copy(), ub.copy()
    pairs = list(bounds)
    if len(pairs) != n:
        raise ValueError(f"bounds has {len(pairs)} (lb, ub) pairs; x0 has {n} scalars")
    lb = np.array([-np.inf if p[0] is None else p[0] for p in pairs], dtype=np.float64)
    ub = np.array([np.inf if p[1] is None else p[1] for p in pairs], dtype=np.float64)
    return lb, ub


class _Rows:
    """One constraint as ``lb <= c(x) <= ub`` over its ``m`` rows, with its Jacobian."""

    def __init__(self, value: Callable, jac: Any, lb: Any, ub: Any, x0: np.ndarray) -> None:
        self.value, self.jac = value, jac
        c0 = self.values(x0)
        self.m = c0.size
        self.lb = np.broadcast_to(np.asarray(lb, dtype=np.float64), (self.m,))
        self.ub = np.broadcast_to(np.asarray(ub, dtype=np.float64), (self.m,))
        self.eq = np.isfinite(self.lb) & (self.lb == self.ub)
        self.up = np.isfinite(self.ub) & ~self.eq
        self.lo = np.isfinite(self.lb) & ~self.eq

    def values(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.value(x), dtype=np.float64).reshape(-1)

    def jacobian(self, x: np.ndarray, c: np.ndarray) -> np.ndarray:
        jac = self.jac
        if callable(jac):
            out = jac(x)
            if is_matrix_like(out):
                out = out.toarray() if hasattr(out, "toarray") else out @ np.eye(x.size)
            return np.asarray(out, dtype=np.float64).reshape(c.size, x.size)
        return _fd(self.values, x, c, jac if isinstance(jac, str) else "2-point")


def _rows_of(con: Any, x0: np.ndarray) -> _Rows:
    """A flat constraint as ``make_constraints`` builds it (SciPy's forms) as :class:`_Rows`."""
    if isinstance(con, Mapping):
        args = con.get("args", ())
        args = args if isinstance(args, tuple) else (args,)
        cfun, cjac = con["fun"], con.get("jac")
        value = (lambda x: cfun(x, *args)) if args else cfun
        jac = (lambda x: cjac(x, *args)) if callable(cjac) and args else cjac
        upper = 0.0 if con["type"] == "eq" else np.inf
        return _Rows(value, jac, 0.0, upper, x0)
    if isinstance(con, scipy.optimize.LinearConstraint):
        A = con.A.toarray() if hasattr(con.A, "toarray") else np.asarray(con.A, dtype=np.float64)
        A = np.atleast_2d(A)
        return _Rows(lambda x: A @ x, lambda x: A, con.lb, con.ub, x0)
    return _Rows(con.fun, con.jac, con.lb, con.ub, x0)


class _Run:
    """The state of one NLopt run: counts, the best point, the iterations, a stored exception."""

    def __init__(self, fun: Callable, jac: Any, gradient: bool, callback: Callable | None):
        self.fun, self.jac, self.gradient, self.callback = fun, jac, gradient, callback
        self.nfev = self.njev = self.nit = 0
        self.best_f = math.inf
        self.best: tuple[np.ndarray, float, np.ndarray | None] | None = None
        self.recent: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=8)
        self.error: BaseException | None = None
        self.opt: Any = None

    def value(self, x: np.ndarray) -> float:
        self.nfev += 1
        return float(self.fun(x))

    def objective(self, x_nlopt: np.ndarray, grad: np.ndarray) -> float:
        """NLopt's ``f(x, grad)``: an exception stops NLopt and is raised after it returns."""
        if self.error is not None:
            return math.inf
        try:
            x = np.array(x_nlopt, dtype=np.float64)  # NLopt reuses its buffer
            f = self.value(x)
            g = None
            if grad.size:
                self.njev += 1
                g = np.asarray(
                    self.jac(x) if callable(self.jac) else _fd(self.value, x, f, self.jac),
                    dtype=np.float64,
                )
                grad[:] = g
                self.recent.append((x, g))
            if f < self.best_f:
                first = self.best is None
                self.best_f, self.best = f, (x, f, g)
                if not first:  # an iteration: an evaluation after x0 that improves the best
                    self.nit += 1
                    if self.callback is not None:
                        self.callback(scipy.optimize.OptimizeResult(x=x, fun=f, nit=self.nit))
            return f
        except BaseException as exc:
            return self._stop(exc)

    def constraint(self, rows: list[_Rows], kind: str) -> Callable:
        """NLopt's ``fc(result, x, grad)`` for the ``eq`` or ``ineq`` rows of ``rows``."""

        def fc(result: np.ndarray, x_nlopt: np.ndarray, grad: np.ndarray) -> None:
            if self.error is not None:
                return
            try:
                x = np.array(x_nlopt, dtype=np.float64)
                vals: list[np.ndarray] = []
                jacs: list[np.ndarray] = []
                for r in rows:
                    c = r.values(x)
                    J = r.jacobian(x, c) if grad.size else None
                    if kind == "eq":
                        vals.append(c[r.eq] - r.lb[r.eq])
                        if J is not None:
                            jacs.append(J[r.eq])
                    else:
                        vals += [c[r.up] - r.ub[r.up], r.lb[r.lo] - c[r.lo]]
                        if J is not None:
                            jacs += [J[r.up], -J[r.lo]]
                result[:] = np.concatenate(vals)
                if grad.size:
                    grad[:] = np.concatenate(jacs, axis=0)
            except BaseException as exc:
                self._stop(exc)

        return fc

    def _stop(self, exc: BaseException) -> float:
        self.error = exc
        self.opt.force_stop()
        return math.inf if self.best is None else self.best_f

    def jac_at(self, x: np.ndarray) -> np.ndarray | None:
        if self.best is not None and np.array_equal(self.best[0], x):
            return self.best[2]
        for xr, g in reversed(self.recent):
            if np.array_equal(xr, x):
                return g
        return None


def _configure(opt: Any, opts: dict[str, Any], tol: Any, n: int, name: str) -> None:
    """Stopping rules, steps, population, seed and NLopt's parameters, from ``options``."""
    nlopt = _import_nlopt()
    if tol is not None:
        opts.setdefault("xtol_rel", tol)
        opts.setdefault("ftol_rel", tol)
    if BY_NAME[name].needs_bounds and not ("maxeval" in opts or "maxtime" in opts):
        raise ValueError(
            f"method {name!r} is a global search that runs until options['maxeval'] or "
            "options['maxtime'] is reached: give one of them"
        )
    if not any(k in opts for k in _STOPPING):
        opts.update(DEFAULT_STOP)
    for key in ("xtol_rel", "ftol_rel", "ftol_abs", "stopval", "maxtime"):
        if key in opts:
            getattr(opt, f"set_{key}")(float(opts[key]))
    if "maxeval" in opts:
        opt.set_maxeval(int(opts["maxeval"]))
    for key in ("xtol_abs", "initial_step"):
        if key in opts:
            value = np.broadcast_to(float64_array(opts[key], f"options[{key!r}]"), (n,))
            getattr(opt, f"set_{key}")(np.array(value))
    if "population" in opts:
        opt.set_population(int(opts["population"]))
    if "seed" in opts:
        nlopt.srand(int(opts["seed"]))
    params = opts.get("params") or {}
    if not isinstance(params, Mapping):
        raise TypeError(f"options['params'] must be a dict; got a {type_name(params)}")
    for key, value in params.items():
        opt.set_param(str(key), float(value))


def _add_constraints(
    opt: Any, run: _Run, constraints: Any, x0: np.ndarray, name: str, tol: float
) -> None:
    """``constraints`` (SciPy's forms on the flat vector) as NLopt's m-constraints."""
    rows = [_rows_of(con, x0) for con in constraints]
    kinds = BY_NAME[name].constraints
    n_eq = sum(int(r.eq.sum()) for r in rows)
    n_ineq = sum(int(r.up.sum() + r.lo.sum()) for r in rows)
    for kind, count in (("eq", n_eq), ("ineq", n_ineq)):
        if count and kind not in kinds:
            able = [m.name for m in REGISTRY if m.family == "nlopt" and kind in m.constraints]
            what = "equality" if kind == "eq" else "inequality"
            raise ValueError(
                f"method {name!r} does not take {what} constraints (it takes "
                f"{', '.join(sorted(kinds)) or 'none'}); use one of {', '.join(able)}"
            )
    if n_eq:
        opt.add_equality_mconstraint(run.constraint(rows, "eq"), [tol] * n_eq)
    if n_ineq:
        opt.add_inequality_mconstraint(run.constraint(rows, "ineq"), [tol] * n_ineq)


def _unused(name: str, what: str, value: Any, wanted: bool) -> bool:
    """SciPy's way with an argument the method cannot use: a RuntimeWarning, then ignore it."""
    if value is None or wanted:
        return False
    warnings.warn(f"Method {name} {what}.", RuntimeWarning, stacklevel=5)
    return True


def minimize_nlopt(
    fun: Callable[[np.ndarray], float],
    x0: np.ndarray,
    *,
    method: str,
    jac: Any = None,
    bounds: Any = None,
    constraints: Any = (),
    tol: float | None = None,
    callback: Callable | None = None,
    options: Mapping[str, Any] | None = None,
    hess: Any = None,
    hessp: Any = None,
) -> scipy.optimize.OptimizeResult:
    """``scipy.optimize.minimize``'s call, run by NLopt's ``method`` on the flat vector.

    ``jac``: a gradient callable, ``'2-point'``/``'3-point'`` or None (finite differences
    for NLopt's gradient algorithms). ``callback(intermediate_result)`` runs at every
    evaluation after ``x0`` that improves on the best value. Returns SciPy's result: ``x`` and
    ``fun`` as NLopt reports them, ``jac`` where computed at ``x``, NLopt's result code as
    ``status`` (:data:`RESULTS`).

    Example:
        >>> import numpy as np
        >>> res = minimize_nlopt(lambda x: float(((x - 1) ** 2).sum()), np.zeros(2),
        ...                      method="nlopt:bobyqa")
        >>> res.success, np.round(res.x, 6), res.message
        (True, array([1., 1.]), 'NLopt: XTOL_REACHED: x changed by less than xtol_rel or xtol_abs')
    """
    nlopt = _import_nlopt()
    name = resolve(method)
    spec = BY_NAME[name]
    opts = check_options(options, name)
    n = x0.size
    _unused(name, "does not use Hessian information (hess)", hess, False)
    _unused(name, "does not use Hessian-vector product information (hessp)", hessp, False)
    if _unused(name, "cannot handle bounds", bounds, spec.bounds):
        bounds = None
    constraints = list(constraints or ())
    if constraints and _unused(name, "cannot handle constraints", True, bool(spec.constraints)):
        constraints = []
    box = _box(bounds, n)
    if spec.needs_bounds and (box is None or not np.isfinite(np.concatenate(box)).all()):
        raise ValueError(
            f"method {name!r} is a global search over a box: give finite bounds for every "
            "scalar of x0 (lb_dict/ub_dict or bounds=)"
        )
    opt = nlopt.opt(getattr(nlopt, name.removeprefix("nlopt:").upper()), n)
    codes = hasattr(opt, "set_exceptions_enabled")  # NLopt >= 2.10
    if codes:
        opt.set_exceptions_enabled(False)  # result codes, not exceptions
    x_start = np.array(x0, dtype=np.float64)
    if box is not None:
        opt.set_lower_bounds(box[0])
        opt.set_upper_bounds(box[1])
        x_start = np.clip(x_start, box[0], box[1])  # NLopt refuses an x0 outside the bounds
    run = _Run(fun, jac, spec.gradient, callback)
    run.opt = opt
    opt.set_min_objective(run.objective)
    _configure(opt, opts, tol, n, name)
    if constraints:
        _add_constraints(
            opt, run, constraints, x_start, name, float(opts.get("constraint_tol", 1e-8))
        )
    stopped = None
    try:
        x = np.array(opt.optimize(x_start), dtype=np.float64)
        fun_x = float(opt.last_optimum_value())
    except Exception as exc:  # NLopt < 2.10 raises for its failure codes
        stopped = exc
    if run.error is not None and not isinstance(run.error, nlopt.ForcedStop):
        raise run.error  # (NLopt's own way to stop, raising nlopt.ForcedStop, is a result)
    if stopped is not None:
        if codes or run.best is None:
            raise stopped
        x, fun_x = run.best[0], run.best[1]  # (NLopt lost its point: the best seen)
    code = int(opt.last_optimize_result())
    out = scipy.optimize.OptimizeResult(
        x=x,
        fun=fun_x,
        jac=run.jac_at(x) if spec.gradient else None,
        nfev=run.nfev,
        nit=run.nit,
        status=code,
        success=code in _SUCCESS,
        message=message_of(code),
    )
    if spec.gradient:
        out["njev"] = run.njev
    return out


__all__ = ["DEFAULT_STOP", "OPTIONS", "RESULTS", "message_of", "minimize_nlopt"]

"""The steps of :func:`dict_minimize._solvers.minimize.solve`, one function each: the method's
needs checked (bounds, Hessians, the kind of ``jac``), the objective SciPy calls, the flat
functions handed to ``scipy.optimize.minimize``, the call with its ways out (a callback's stop,
a non-finite abort, Ctrl-C, an exception), and SciPy's result turned into the user's. Also the
method tables every entry point shares.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import scipy.optimize

from dict_minimize._errors import fmt_keys, type_name
from dict_minimize._problem.methods import NLOPT_PREFIX, REGISTRY, names, resolve
from dict_minimize._problem.objective import Aborted, Mode, Objective
from dict_minimize._problem.prepare import prepare_x0 as _prepare_x0  # noqa: F401 (re-exported)
from dict_minimize._problem.result import (  # noqa: F401 (OptimizeResult, PrecisionWarning re-exported)
    OptimizeResult,
    PrecisionWarning,
    _add_trace,
    _attach,
    _best_raw,
    _best_result,
    _first_row,
    _note,
    _precision_checks,
    _result,
)
from dict_minimize._problem.trace import Monitor
from dict_minimize._problem.trace import takes_two as _takes_two

#: every method name ``scipy.optimize.minimize`` accepts (lower case); this table and the
#: next four are read from the one registry of methods (``_problem/methods.py``)
METHODS = names("scipy")
#: methods that use only the objective's value
GRADIENT_FREE = frozenset(m.name for m in REGISTRY if not m.gradient)
#: methods that honour bounds
BOUNDED = frozenset(m.name for m in REGISTRY if m.bounds)
#: methods that take a Hessian (``hess``) / a Hessian-vector product (``hessp``)
TAKES_HESS = frozenset(m.name for m in REGISTRY if m.hess and m.family == "scipy")
TAKES_HESSP = frozenset(m.name for m in REGISTRY if m.hessp and m.family == "scipy")
#: methods that cannot run without second-order information
NEEDS_HESS = frozenset({"dogleg", "trust-exact"})
NEEDS_HESS_OR_HESSP = frozenset({"trust-ncg", "trust-krylov"})
#: the largest dense Hessian (bytes of float64) the driver builds
MAX_DENSE_HESSIAN_BYTES = 2**30
#: SciPy's finite-difference strategies for ``jac``
FD_STRATEGIES = ("2-point", "3-point")
_COMPLEX_STEP = (
    "complex-step differentiation ('cs') needs fun to compute in complex arithmetic, and the "
    "dict bridge hands fun real tensors of x0's dtypes; use '2-point', '3-point' or 'autodiff'"
)
#: methods whose SciPy implementation itself stops cleanly on StopIteration from a callback
#: (COBYQA with its own status and message); for TNC the driver stops the run and builds the
#: result
_SCIPY_STOPS = frozenset(METHODS) - {"tnc"}
_STOP_MESSAGE = "`callback` raised `StopIteration`."


class _Halt(Exception):
    """Raised through SciPy to stop a run whose method does not honour StopIteration."""


def _wants_result(callback: Callable) -> bool:
    """SciPy's rule: a callback whose only parameter is ``intermediate_result`` gets the result."""
    try:
        return set(inspect.signature(callback).parameters) == {"intermediate_result"}
    except (TypeError, ValueError):
        return False


def _wrap_callback(
    callback: Callable | None, run: Objective, meth: str, monitor: Monitor | None
) -> Callable:
    """SciPy's per-iteration callback: the monitor's row, then the user's callback."""
    takes_result = callback is not None and _wants_result(callback)
    with_state = meth == "trust-constr" and callback is not None and _takes_two(callback)
    n = run.layout.n

    def scipy_callback(intermediate_result: Any) -> Any:
        is_result = isinstance(intermediate_result, scipy.optimize.OptimizeResult)
        if is_result:
            x = np.asarray(intermediate_result.x)
            f = intermediate_result.get("fun")
        else:  # methods that call callback(xk)
            x, f = np.asarray(intermediate_result), None
        if f is None:
            f = run.f_at(x)
        user_f = None if f is None else run.sign * f  # maximize: in the user's sign
        run.nit += 1
        stop = False
        norm = math.nan
        if monitor is not None or takes_result:
            g = intermediate_result.get("grad") if is_result else None  # trust-constr
            norm = (
                float(np.linalg.norm(g))
                if isinstance(g, np.ndarray) and g.shape == (n,)
                else run.grad_norm_at(x)
            )
        if monitor is not None:
            row_x = run.x_dict(x, False) if monitor.keep_x else None
            stop = monitor.iteration(run.nit, user_f, norm, run.nfev, run.njev, row_x, flat_x=x)
        try:
            if takes_result:
                assert callback is not None
                fields = dict(intermediate_result) if is_result else {}
                if run.negate:
                    _user_sign(fields, n)
                fields["x"] = run.x_dict(x, False)
                fields["fun"] = None if user_f is None else float(user_f)
                fields.setdefault("nit", run.nit)
                fields["nfev"], fields["njev"] = run.nfev, run.njev
                fields["grad_norm"] = norm
                out = callback(intermediate_result=OptimizeResult(fields))
            elif callback is not None and with_state and is_result:
                # SciPy's trust-constr form: callback(xk, state), state with x as a dict too
                state = OptimizeResult(intermediate_result)
                if run.negate:
                    _user_sign(state, n)
                state["x"] = run.x_dict(x, False)
                out = callback(run.x_dict(x, False), state)
            elif callback is not None:
                out = callback(run.x_dict(x, False))
            else:
                out = None
            if stop:
                raise StopIteration
            return out
        except StopIteration:
            run.stopped = (x.copy(), None if f is None else float(f))
            if meth in _SCIPY_STOPS:
                raise
            raise _Halt from None

    if meth == "tnc":
        # SciPy 1.17's TNC, with variables fixed by equal bounds, hands a new-style callback a
        # bare x (AttributeError: no attribute 'x'); the old style, callback(xk), works there
        def tnc_callback(xk: np.ndarray) -> Any:
            return scipy_callback(xk)

        return tnc_callback
    return scipy_callback


def _user_sign(fields: dict, n: int) -> None:
    """SciPy's per-iteration fields of ``-fun`` (``maximize=True``) in the user's sign: the
    value and the objective's gradient (trust-constr's ``grad``, a method's ``jac``)."""
    for name in ("fun", "grad", "jac"):
        value = fields.get(name)
        if isinstance(value, (float, np.floating)) or (
            isinstance(value, np.ndarray) and value.shape in ((), (n,))
        ):
            fields[name] = -value


def _normalize_method(method: Any, has_bounds: bool, has_constraints: bool) -> Any:
    if method is None:
        if has_constraints:
            return "slsqp"
        return "l-bfgs-b" if has_bounds else "bfgs"
    if callable(method):
        return method
    if not isinstance(method, str):
        raise TypeError(f"method must be a string or a callable; got a {type_name(method)}")
    return resolve(method)  # the registry's name, or a ValueError with a "did you mean"


def _check_hessians(
    name: str, mode: Mode, hess: Any, hessp: Any, n: int, method: Any, has_ad: bool
) -> tuple[Any, Any]:
    """Validate hess/hessp for the method; fill in the autodiff defaults."""
    plain = hess is None and hessp is None and mode != "autodiff"
    if plain and name not in NEEDS_HESS and name not in NEEDS_HESS_OR_HESSP:
        return None, None  # (the common case, decided at once)
    if isinstance(hess, str) and hess == "cs":
        raise ValueError(f"hess='cs': {_COMPLEX_STEP}")
    if not (hess is None or callable(hess) or _scipy_hess(hess) or _is_autodiff(hess)):
        got = repr(hess) if isinstance(hess, str) else f"a {type_name(hess)}"
        raise ValueError(
            "hess must be None, 'autodiff', '2-point', '3-point', a "
            f"scipy.optimize.HessianUpdateStrategy or a callable; got {got}"
        )
    if not (hessp is None or callable(hessp) or _is_autodiff(hessp)):
        got = repr(hessp) if isinstance(hessp, str) else f"a {type_name(hessp)}"
        raise ValueError(f"hessp must be None, 'autodiff' or a callable; got {got}")
    for arg, value in (("hess", hess), ("hessp", hessp)):
        # a method that does not use it: SciPy warns (RuntimeWarning) and goes on, and so do we
        if _is_autodiff(value) and mode != "autodiff":
            raise ValueError(
                f"{arg}='autodiff' differentiates fun twice, so fun must return only the value: "
                "pass jac='autodiff' too"
            )
    if mode == "autodiff" and hess is None and hessp is None and has_ad:
        if name in NEEDS_HESS:
            hess = "autodiff"
        elif name in TAKES_HESSP:  # exact products: cheaper than a dense Hessian
            hessp = "autodiff"
    if name in NEEDS_HESS and hess is None:
        raise ValueError(
            f"method {method!r} needs the Hessian: pass jac='autodiff' (with fun returning only "
            "the value) for an exact Hessian by autodiff, or hess=<callable>"
        )
    if name in NEEDS_HESS_OR_HESSP and hess is None and hessp is None:
        raise ValueError(
            f"method {method!r} needs the Hessian or Hessian-vector products: pass "
            "jac='autodiff' (with fun returning only the value), hessp=<callable> or "
            "hess=<callable>"
        )
    # (a callable may return a sparse matrix or a LinearOperator: its size is the user's choice)
    if _is_autodiff(hess) and n * n * 8 > MAX_DENSE_HESSIAN_BYTES:
        raise ValueError(
            f"a dense Hessian of x0's {n} scalars needs {n * n * 8 / 2**30:.1f} GiB (more than "
            f"{MAX_DENSE_HESSIAN_BYTES / 2**30:.0f} GiB); use Hessian-vector products instead "
            "(method 'trust-krylov', 'trust-ncg' or 'Newton-CG' with jac='autodiff' or hessp=...)"
        )
    return hess, hessp


#: methods that take ``hess_sparsity``'s sparse Hessian
SPARSE_HESS = frozenset({"newton-cg", "trust-constr", "ipopt", "_custom"})


def _sparse_hess_args(name: str, mode: Mode, hess: Any, hessp: Any) -> tuple[Any, Any]:
    """Validate ``hess``/``hessp`` with ``hess_sparsity`` (the Hessian comes from autodiff)."""
    if mode != "autodiff":
        raise ValueError(
            "hess_sparsity computes the Hessian by autodiff, so fun must return only the "
            "value: pass jac='autodiff'"
        )
    if not (hess is None or _is_autodiff(hess)) or hessp is not None:
        raise ValueError(
            "hess_sparsity computes the Hessian by autodiff: leave hess and hessp out (or "
            "pass hess='autodiff')"
        )
    if name not in SPARSE_HESS:
        raise ValueError(
            "hess_sparsity needs a method that takes a sparse Hessian ('trust-constr', 'ipopt' or "
            f"'Newton-CG'); got method {name!r} (trust-ncg and trust-krylov use exact "
            "Hessian-vector products by autodiff: leave hess_sparsity out)"
        )
    return None, None


def _jac_mode(jac: Any) -> Mode:
    if isinstance(jac, str) and jac == "cs":
        raise ValueError(f"jac='cs': {_COMPLEX_STEP}")
    if jac is True:
        return "pair"
    if _is_autodiff(jac):
        return "autodiff"
    if callable(jac):
        return "callable"
    if jac is None or jac is False or (isinstance(jac, str) and jac in FD_STRATEGIES):
        return "value"
    raise ValueError(
        f"jac must be True, 'autodiff', a callable, None, or one of {FD_STRATEGIES}; got {jac!r}"
    )


def _timed_first(
    then: Callable[[np.ndarray, float, np.ndarray | None], None] | None, caps: Any
) -> Callable[[np.ndarray, float, np.ndarray | None], None]:
    """``run.on_first`` that first tells the thread caps how long the first evaluation took
    (``threads="auto"`` lifts the objective's caps after a slow one)."""

    def on_first(x: np.ndarray, f: float, g: np.ndarray | None) -> None:
        caps.first_evaluation()
        if then is not None:
            then(x, f, g)

    return on_first


def _make_objective(
    fun: Callable,
    args: Any,
    layout: Any,
    codec: Any,
    be: Any,
    mode: Mode,
    jac: Any,
    hess: Any,
    hessp: Any,
    name: str,
    jit: bool | None,
    nonfinite: str,
    compat: bool,
    track_last: bool,
    error_handling: str = "raise",
    maximize: bool = False,
) -> Objective:
    """The objective SciPy calls: the user's ``fun`` on the flat vector, with the backend's
    autodiff or compiled pair where the mode asks for them."""
    uses_gradient = name not in GRADIENT_FREE
    ad = None
    if mode == "autodiff" and uses_gradient:
        assert be.scalar_ad is not None
        ad = be.scalar_ad(
            layout,
            codec,
            fun,
            args,
            jit=jit,
            second_order=_is_autodiff(hess) or _is_autodiff(hessp),
        )

    pair = None
    if mode == "pair" and uses_gradient and be.compile_pair is not None:
        pair = be.compile_pair(layout, codec, fun, args, jit=jit)

    return Objective(
        fun,
        args,
        layout,
        codec,
        mode=mode,
        jac=jac if mode == "callable" else None,
        hess=hess if callable(hess) and not _scipy_hess(hess) else None,
        hessp=hessp if callable(hessp) else None,
        ad=ad,
        pair=pair,
        nonfinite=nonfinite,
        track_last=track_last,
        second_order=_is_autodiff(hess) or _is_autodiff(hessp),
        # SciPy's gradient methods pass fun a fresh copy of x at every evaluation (its
        # ScalarFunction wrapper; tests/test_scipy_contract.py checks it): the best point can
        # be a reference, not a copy. A custom method may reuse its buffer, so not there.
        private_x=uses_gradient and name != "_custom",
        x0_nonfinite="warn" if compat else "raise",
        # NLopt's model-based methods (COBYLA, BOBYQA) loop or stall on +inf: a finite value
        finite_substitute=(uses_gradient or name.startswith(NLOPT_PREFIX)) and name != "_custom",
        error_handling=error_handling,
        maximize=maximize,
    )


def _flat_functions(
    run: Objective, mode: Mode, jac: Any, hess: Any, hessp: Any, method: Any, uses_gradient: bool
) -> tuple[Callable[[np.ndarray], Any], Any, Any, Any]:
    """What goes to ``scipy.optimize.minimize`` as ``fun``, ``jac``, ``hess`` and ``hessp``."""
    fun_flat: Callable[[np.ndarray], Any]
    jac_flat: Any
    if not uses_gradient:
        if callable(jac) or (isinstance(jac, str) and jac in FD_STRATEGIES):
            # SciPy's warning (jac=True is this package's default: no warning for it)
            warnings.warn(
                f"Method {method} does not use gradient information (jac).",
                RuntimeWarning,
                stacklevel=4,
            )
        fun_flat, jac_flat = run.value, None
    elif mode in ("pair", "autodiff"):  # SciPy's jac=True, with a cheaper memo
        fun_flat, jac_flat = run.value_of_pair, run.grad_of_pair
    elif mode == "callable":
        fun_flat, jac_flat = run.value, run.grad
    else:
        fun_flat, jac_flat = run.value, jac or None
    hess_flat: Any = hess
    if _is_autodiff(hess) or (callable(hess) and not _scipy_hess(hess)):
        hess_flat = run.hess
    hessp_flat = run.hessp if hessp is not None else None
    return fun_flat, jac_flat, hess_flat, hessp_flat


def _call_scipy(
    run: Objective,
    monitor: Monitor | None,
    caps: Any,
    interrupt: str,
    constraint_calls: Callable[[], int] | None,
    fun_flat: Callable[[np.ndarray], Any],
    x0_flat: np.ndarray,
    *,
    solver: Callable | None = None,
    **scipy_kwargs: Any,
) -> tuple[Any, OptimizeResult | None]:
    """``scipy.optimize.minimize`` (or ``solver``, which takes the same arguments: NLopt's
    glue) under the thread caps, and what each way out of it means:
    (SciPy's result, None), or (None, the result to return) after a KeyboardInterrupt the
    caller asked not to raise. A stop by the callback or a non-finite abort becomes a result;
    any other exception is raised with the best point seen attached."""
    res: Any = None
    if monitor is not None:
        monitor.start()
    try:
        with caps:
            res = (solver or scipy.optimize.minimize)(fun_flat, x0_flat, **scipy_kwargs)
    except _Halt:
        assert run.stopped is not None
        x_stop, f_stop = run.stopped
        if f_stop is None:
            f_stop = run.value(x_stop)
        res = scipy.optimize.OptimizeResult(
            x=x_stop,
            fun=f_stop,
            success=False,
            status=99,
            message=_STOP_MESSAGE,
            nfev=run.nfev,
            njev=run.njev,
            nit=run.nit,
        )
    except Aborted as exc:
        res = _best_raw(run, x0_flat, str(exc), -2)
    except KeyboardInterrupt as exc:
        out = _best_result(
            run,
            run.layout,
            run.codec,
            x0_flat,
            f"interrupted by KeyboardInterrupt after {run.nfev} evaluations; x is the best "
            "point seen",
            -1,
        )
        _add_trace(out, monitor)
        if interrupt == "raise":
            _attach(exc, out)
            raise
        return res, out
    except Exception as exc:
        best = _best_result(
            run, run.layout, run.codec, x0_flat, f"stopped by {type(exc).__name__}", -1
        )
        _add_trace(best, monitor)
        _attach(exc, best)
        _note(
            exc,
            f"dict_minimize: raised after {run.nfev} evaluations of fun ({run.njev} of its "
            "gradient"
            + (f", {constraint_calls()} of the constraints" if constraint_calls else "")
            + "); the best point so far is in exc.dict_minimize_result",
        )
        raise
    finally:
        if monitor is not None:
            monitor.close()
    return res, None


def _finish(
    res: Any,
    run: Objective,
    monitor: Monitor | None,
    name: str,
    method: Any,
    x0_flat: np.ndarray,
    nonfinite: str,
    hess: Any,
    hessp: Any,
    report: bool,
    constraint_calls: Callable[[], int] | None,
) -> OptimizeResult:
    """SciPy's result as the user's: dicts, the best finite point where the last was not, the
    time limit's message, the trace, the warnings about non-finite points and precision."""
    layout, codec = run.layout, run.codec
    if name == "_custom":
        _check_custom_result(res, method, layout.n)
    out = _result(res, layout, codec, run)
    if constraint_calls is not None:
        out["nfev_constraints"] = constraint_calls()
    substituted = run.is_substitute(run.sign * out.fun)
    if (nonfinite != "pass" or run.exception_count) and substituted and run.best_x is not None:
        out = _best_result(
            run,
            layout,
            codec,
            x0_flat,
            f"{out.message} (the final point was not finite; x is the best finite point seen)",
            out.status,
        )
    out["nonfinite_count"] = run.bad_evaluations
    out["exception_count"] = run.exception_count
    if monitor is not None and monitor.timed_out and out.message == _STOP_MESSAGE:
        # SciPy's stop for a callback's StopIteration: status 99 (trust-constr: 3)
        out["message"] = monitor.limit_message(out.nit)
    elif monitor is not None and monitor.timed_out and name == "cobyqa":
        # COBYQA's stop (status 3) is a success when the user asks; the time limit is not one
        out["message"], out["success"] = monitor.limit_message(out.nit), False
    if run.exception_count:
        out["message"] += (
            f" (dict_minimize: {run.exception_count} evaluation(s) raised and counted as worse "
            f"than every point seen, error_handling='continue'; the first: "
            f"{run.exception_summary})"
        )
    _add_trace(out, monitor, final=True)
    if run.bad_evaluations:
        keys = (
            f" (gradient entries of key(s) {fmt_keys(list(run.bad_keys))})" if run.bad_keys else ""
        )
        warnings.warn(
            f"{run.bad_evaluations} evaluation(s) were not finite{keys} and counted as worse "
            "than every finite point; pass nonfinite='raise' to stop at the first one",
            RuntimeWarning,
            stacklevel=4,
        )
    fd_hessp = hess is None and hessp is None
    _precision_checks(out, name, layout, res.get("jac"), fd_hessp)
    if report:
        print(f"{out.message}\n  fun: {out.fun}  nit: {out.nit}  nfev: {out.nfev}")
    return out


def _no_calls() -> int:
    return 0


def _check_custom_result(res: Any, method: Any, n: int) -> None:
    x = res.get("x") if isinstance(res, Mapping) else None
    if x is None or np.size(x) != n or "fun" not in res:
        what = type_name(res) if x is None else f"x of size {np.size(x)}"
        raise TypeError(
            f"the custom method {getattr(method, '__name__', method)!r} must return an "
            f"OptimizeResult with 'x' ({n} values) and 'fun'; it returned a {what}"
        )


def _scipy_hess(hess: Any) -> bool:
    """SciPy's own Hessian strategies, passed through unchanged."""
    return isinstance(hess, scipy.optimize.HessianUpdateStrategy) or (
        isinstance(hess, str) and hess in FD_STRATEGIES
    )


def _is_autodiff(value: Any) -> bool:
    return isinstance(value, str) and value == "autodiff"

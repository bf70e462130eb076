"""The one generic driver: dict in, SciPy on the flat float64 vector, dict out.

Nothing here imports a framework: every framework-specific step goes through the backend's
:class:`~dict_minimize._structure.types.Codec`, built once per call from the immutable layout.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import scipy.optimize

from dict_minimize._errors import fmt_keys, type_name, unknown_keyword
from dict_minimize._problem.bounds import make_scipy_bounds
from dict_minimize._problem.constraints import make_constraints
from dict_minimize._problem.objective import Aborted, Mode, Objective
from dict_minimize._problem.prepare import check_common, prepare
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
from dict_minimize._problem.trace import Monitor, bar_total, check_time_limit, check_trace_arg
from dict_minimize._threads import check_threads, solve_threads

#: every method name ``scipy.optimize.minimize`` accepts (lower case)
METHODS = (
    "nelder-mead",
    "powell",
    "cg",
    "bfgs",
    "newton-cg",
    "l-bfgs-b",
    "tnc",
    "cobyla",
    "cobyqa",
    "slsqp",
    "trust-constr",
    "dogleg",
    "trust-ncg",
    "trust-exact",
    "trust-krylov",
)
#: methods that use only the objective's value
GRADIENT_FREE = frozenset({"nelder-mead", "powell", "cobyla", "cobyqa"})
#: methods that honour bounds
BOUNDED = frozenset(
    {"nelder-mead", "powell", "l-bfgs-b", "tnc", "cobyla", "cobyqa", "slsqp", "trust-constr"}
)
#: methods that take a Hessian (``hess``) / a Hessian-vector product (``hessp``)
TAKES_HESS = frozenset(
    {"newton-cg", "dogleg", "trust-ncg", "trust-krylov", "trust-exact", "trust-constr"}
)
TAKES_HESSP = frozenset({"newton-cg", "trust-ncg", "trust-krylov", "trust-constr"})
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


def _takes_two(callback: Callable) -> bool:
    """Whether ``callback(xk, state)`` can be called (SciPy's form for trust-constr)."""
    try:
        params = list(inspect.signature(callback).parameters.values())
    except (TypeError, ValueError):
        return False
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2


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
        run.nit += 1
        stop = False
        if monitor is not None:
            g = intermediate_result.get("grad") if is_result else None  # trust-constr
            norm = (
                float(np.linalg.norm(g))
                if isinstance(g, np.ndarray) and g.shape == (n,)
                else run.grad_norm_at(x)
            )
            row_x = run.x_dict(x, False) if monitor.keep_x else None
            stop = monitor.iteration(run.nit, f, norm, run.nfev, run.njev, row_x)
        try:
            if takes_result:
                assert callback is not None
                fields = dict(intermediate_result) if is_result else {}
                fields["x"] = run.x_dict(x, False)
                fields["fun"] = None if f is None else float(f)
                fields.setdefault("nit", run.nit)
                fields["nfev"], fields["njev"] = run.nfev, run.njev
                out = callback(intermediate_result=OptimizeResult(fields))
            elif callback is not None and with_state and is_result:
                # SciPy's trust-constr form: callback(xk, state), state with x as a dict too
                state = OptimizeResult(intermediate_result)
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


def _normalize_method(method: Any, has_bounds: bool, has_constraints: bool) -> Any:
    if method is None:
        if has_constraints:
            return "slsqp"
        return "l-bfgs-b" if has_bounds else "bfgs"
    if callable(method):
        return method
    if not isinstance(method, str):
        raise TypeError(f"method must be a string or a callable; got a {type_name(method)}")
    meth = method.lower()
    if meth not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    return meth


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


def minimize(
    fun: Callable,
    x0: Mapping[Any, Any],
    *,
    args: Any = (),
    method: str | Callable | None = None,
    jac: bool | str | Callable | None = True,
    hess: str | Callable | Any | None = None,
    hessp: str | Callable | None = None,
    bounds: Any = None,
    constraints: Any = (),
    lb_dict: Mapping[Any, Any] | None = None,
    ub_dict: Mapping[Any, Any] | None = None,
    tol: float | None = None,
    callback: Callable | None = None,
    options: Mapping[str, Any] | None = None,
    backend: str | None = None,
    jit: bool | None = None,
    nonfinite: str = "inf",
    blas_threads: int | None = None,
    trace: bool | str = False,
    progress: bool | Mapping[str, Any] = False,
    time_limit: float | None = None,
    threads: int | str | None = "auto",
    **unknown: Any,
) -> OptimizeResult:
    """Minimize a scalar function of a dict of tensors with ``scipy.optimize.minimize``.

    The dict is flattened once into SciPy's float64 vector; at every evaluation the vector is
    turned back into tensors of ``x0``'s framework, dtype, shape and device, ``fun`` runs in that
    framework, and its gradient dict is matched to ``x0`` by key and flattened for SciPy.

    Args:
        fun: the objective. With ``jac=True`` (the default): ``fun(x_dict, *args) ->
            (value, grad_dict)``, where ``grad_dict`` has the keys and shapes of ``x0`` (in any
            order); otherwise ``fun(x_dict, *args) -> value``. ``value`` may be a framework
            scalar tensor, a NumPy scalar or a float. In PyTorch every entry of ``x_dict`` is a
            leaf that requires grad, so ``torch.autograd.grad`` works on it.
        x0: the starting point: a dict (or any Mapping) of NumPy arrays, PyTorch tensors, JAX
            arrays or TensorFlow tensors/Variables, all from one framework, each of a floating
            dtype (float16, bfloat16, float32, float64); any rank, 0-d and empty included.
            Entries may nest Mappings, lists, tuples and namedtuples to any depth (a pytree, as
            Flax parameters are), and, once JAX is imported, any registered JAX pytree node
            (an Equinox module, a ``flax.struct`` dataclass, ``nnx.State``), which may also be
            ``x0`` itself (``eqx.partition``'s params); inside such a node ``None`` is an empty
            subtree, as in JAX. ``fun``, callbacks, the result and gradients keep that nesting
            (the same classes and static fields), gradients are matched by path, and bounds
            may nest too (a scalar at an inner node bounds every leaf below it). A Python float
            leaf becomes a 0-d float64 tensor of x0's framework (NumPy if it has no tensors).
            See [Nested parameters](guide/nested.md) and [Models](guide/models.md).
        args: extra positional arguments for ``fun``, ``jac``, ``hess`` and ``hessp``.
        method: any method name of ``scipy.optimize.minimize`` (case-insensitive) or a custom
            callable; by default SLSQP with constraints, L-BFGS-B with bounds, BFGS otherwise.
        jac: ``True``: ``fun`` returns the gradient too; ``'autodiff'``: ``fun`` returns only
            the value and the framework computes value and gradient in one pass (PyTorch
            autograd, ``jax.value_and_grad`` compiled with ``jax.jit``, TensorFlow
            ``GradientTape``); a callable ``jac(x_dict, *args) -> grad_dict``; ``'2-point'``,
            ``'3-point'``: SciPy's finite differences on the flat vector (not ``'cs'``: fun
            gets real tensors);
            ``None``/``False``: SciPy's default for the method.
        hess: the Hessian, for methods that use one: ``'autodiff'`` (exact, dense
            ``(n, n)``; needs ``jac='autodiff'``), a callable ``hess(x_dict, *args)`` returning
            an ``(n, n)`` array or a dict of dicts of blocks (``hess[ki][kj]`` of shape
            ``x0[ki].shape + x0[kj].shape``, as ``jax.hessian`` gives), or SciPy's
            ``'2-point'``/``'3-point'``/``HessianUpdateStrategy``. With
            ``jac='autodiff'``, dogleg and trust-exact get ``hess='autodiff'`` by default.
        hessp: Hessian-vector products: ``'autodiff'`` (exact, forward-over-reverse; needs
            ``jac='autodiff'``) or a callable ``hessp(x_dict, p_dict, *args) -> dict``. With
            ``jac='autodiff'``, Newton-CG, trust-ncg, trust-krylov and trust-constr get
            ``hessp='autodiff'`` by default.
        constraints: for SLSQP, COBYLA, COBYQA and trust-constr: one constraint or a list —
            SciPy's dicts ``{'type': 'eq'|'ineq', 'fun': c, 'jac': ..., 'args': ...}`` with
            ``c(x_dict, *args)`` returning a tensor of any shape, :class:`NonlinearConstraint`,
            :class:`LinearConstraint` (coefficients per key), or SciPy's own constraint objects
            on the flat vector. A constraint's Jacobian comes from autodiff unless given.
        bounds: SciPy's ``bounds``, in any of its forms: a :class:`scipy.optimize.Bounds`
            whose ``lb``/``ub`` (and ``keep_feasible``) are dicts keyed like ``x0`` (each
            value as in ``lb_dict``) or flat arrays of ``x0``'s scalars in key order; a dict
            ``{key: (lb, ub)}``; or a sequence of ``(lb, ub)`` pairs, one per scalar of
            ``x0`` in key order (``None``: unbounded). Flat forms go to SciPy unchanged.
            Not together with ``lb_dict``/``ub_dict``.
        lb_dict: lower bounds, optional, naming any subset of the keys. A value may be a scalar
            (broadcast), an array or tensor of the key's shape, None or -inf (unbounded).
        ub_dict: upper bounds, the same way (None or +inf: unbounded).
        tol: tolerance for termination, as in SciPy.
        callback: ``callback(x_dict)`` after each iteration, or
            ``callback(intermediate_result)`` (SciPy's form: ``.x`` is the dict, ``.fun`` the
            value, no re-evaluation; also ``.nit``, ``.nfev``, ``.njev``, the counts so far).
            Raising ``StopIteration`` ends the run cleanly.
        options: method options, passed to SciPy unchanged (``maxiter``, ``gtol``,
            ``workers``...: an option given as a keyword of ``minimize`` is a TypeError that
            says so).
        trace: ``True`` records one row per iteration in ``res.trace`` (a
            :class:`~dict_minimize.Trace`; the start point is row 0): the objective, the
            gradient's norm (NaN where no gradient was computed at that point), cumulative
            ``nfev``/``njev`` and seconds since the start, read from what SciPy and the
            evaluations already computed (the objective is never evaluated again for it);
            ``'x'`` also keeps each row's point as a dict like ``x0``. Works beside
            ``callback``.
        progress: ``True`` shows a tqdm progress bar (iterations, current value,
            evaluations), with ``options["maxiter"]`` as its total when given; a dict passes
            options to ``tqdm``. Needs the ``[progress]`` extra.
        time_limit: seconds; at the first iteration that ends after the limit the run stops
            as SciPy stops for a callback's ``StopIteration``: ``x`` is that iterate,
            ``success=False``, ``status=99`` (trust-constr: 3) and the message says the limit
            was reached. It is
            checked between iterations, so one slow iteration can overrun it.
        backend: force a backend (``'numpy'``, ``'torch'``, ``'jax'``, ``'tensorflow'``);
            detected from ``x0`` by default.
        jit: compile each evaluation as one function of SciPy's flat vector (split, ``fun``,
            concatenation). With ``jac='autodiff'``: JAX ``jax.jit`` by default; TensorFlow
            ``tf.function`` by default when ``fun`` is a ``tf.function``, eager otherwise.
            With ``jac=True``: by default when ``fun`` is already compiled (``jax.jit``,
            ``tf.function``, or ``value_and_grad`` of one), which removes the per-entry cost
            of calling a compiled function on a dict (50 ms -> 3.2 ms per evaluation at
            2,000 keys in TensorFlow). ``True`` compiles any traceable ``fun``; ``False`` runs
            ``fun`` eagerly, for functions that cannot be traced. PyTorch: ignored.
        nonfinite: what a non-finite value or gradient after ``x0`` means: ``'inf'`` (the
            default) counts the point as worse than every finite point seen, so line searches
            and trust regions back off (gradient methods see a finite value above all values
            seen, which their interpolation handles; gradient-free ones ``+inf``), and warns
            at the end naming the keys; ``'raise'`` raises :class:`NonFiniteError`. At ``x0``
            both are an error (the drop-in ``*_api.minimize`` warns instead). ``'pass'``:
            SciPy's own behaviour, at ``x0`` too — the values go to SciPy unchanged, nothing
            is raised or warned (see ``docs/guide/scipy-differences.md``).
        blas_threads: the older name of ``threads`` (an int), kept for existing callers.
        threads: the threads of SciPy's BLAS, the objective's BLAS (NumPy's) and x0's
            framework (PyTorch's intra-op threads) during the solve, restored after. ``"auto"``
            (the default): one thread for problems under 1,000,000 variables, lifted for the
            objective when its first evaluation takes 20 ms or more; an int caps at that
            many; None leaves all threads alone. JAX/XLA and TensorFlow keep their own
            threads (they cannot change after they start). The environment variable
            ``DICT_MINIMIZE_THREADS`` (an int, ``auto`` or ``off``) overrides it. Thread
            pools cost small fits far more than they gain, on a busy machine 10-40x per
            evaluation (see the Performance guide). Results with one thread or several can
            differ in the last bits where a matrix product's kernel depends on the count.

    Returns:
        OptimizeResult: ``x`` and ``jac`` are dicts like ``x0``; ``fun`` is a float; ``nfev``,
            ``njev``, ``nit``, ``status``, ``success`` and ``message`` as in SciPy. A run
            stopped by ``KeyboardInterrupt`` returns the best point seen with ``success=False``.

    Raises:
        TypeError, ValueError: for malformed input, with a message naming the key.
        NonFiniteError: a non-finite objective at ``x0`` (or later, with
            ``nonfinite='raise'``).
        ImportError: when ``x0``'s framework (or the forced backend) is not installed.
        Exception: anything ``fun`` or ``callback`` raises propagates unchanged, with a note
            giving the evaluation count and the best point so far attached as
            ``exc.dict_minimize_result``.

    Example:
        >>> import numpy as np
        >>> from dict_minimize import minimize
        >>> def fun(d):
        ...     r = d["w"] @ d["v"] - 3.0
        ...     return r**2, {"w": 2 * r * d["v"], "v": 2 * r * d["w"]}
        >>> res = minimize(fun, {"w": np.ones(2), "v": np.zeros(2)}, method="L-BFGS-B",
        ...                lb_dict={"v": 0.0})
        >>> res.success, round(res.fun, 8)
        (True, 0.0)
    """
    if unknown:
        raise unknown_keyword(unknown)
    return solve(
        fun,
        x0,
        args=args,
        method=method,
        jac=jac,
        hess=hess,
        hessp=hessp,
        scipy_bounds=bounds,
        constraints=constraints,
        lb_dict=lb_dict,
        ub_dict=ub_dict,
        tol=tol,
        callback=callback,
        options=options,
        backend=backend,
        jit=jit,
        nonfinite=nonfinite,
        blas_threads=blas_threads,
        interrupt="return",
        trace=trace,
        progress=progress,
        time_limit=time_limit,
        threads=threads,
    )


def solve(
    fun: Callable,
    x0: Mapping[Any, Any],
    *,
    args: Any,
    method: Any,
    jac: Any,
    hess: Any,
    hessp: Any,
    constraints: Any,
    lb_dict: Any,
    ub_dict: Any,
    tol: Any,
    callback: Any,
    options: Any,
    backend: str | None,
    jit: bool | None,
    nonfinite: str,
    interrupt: str,
    blas_threads: int | None = None,
    compat: bool = False,
    trace: Any = False,
    progress: Any = False,
    time_limit: Any = None,
    threads: Any = "auto",
    scipy_bounds: Any = None,
) -> OptimizeResult:
    """:func:`minimize`, with the choices the drop-in API makes differently.

    ``interrupt``: what a KeyboardInterrupt does (the drop-in raises). ``compat``: the original
    package's contract, where :func:`minimize` is strict: a non-finite objective at ``x0`` and
    bounds with a method that ignores them are warnings, not errors.
    """
    args = check_common(fun, x0, args, backend, jit, compat=compat)
    threads = check_threads(threads, blas_threads)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable; got a {type_name(callback)}")
    if options is not None and not isinstance(options, Mapping):
        raise TypeError(f"options must be a dict; got a {type_name(options)}")
    if nonfinite not in ("inf", "raise", "pass"):
        raise ValueError(f"nonfinite must be 'inf', 'raise' or 'pass'; got {nonfinite!r}")
    record, keep_x = check_trace_arg(trace)
    limit = check_time_limit(time_limit)

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
        warnings.warn(
            f"method {method!r} cannot handle bounds: lb_dict/ub_dict are ignored, as the "
            "original dict_minimize (and SciPy) did. To respect them use one of "
            f"{', '.join(sorted(BOUNDED))}; or drop lb_dict/ub_dict",
            scipy.optimize.OptimizeWarning,
            stacklevel=3,
        )
        bounds = None
    # bounds, constraints, hess or hessp a method does not use: SciPy warns (RuntimeWarning,
    # naming the method) and goes on without them, and so does this driver
    mode = _jac_mode(jac)
    if mode == "autodiff" and be.scalar_ad is None:
        raise ValueError(
            f"jac='autodiff' needs a framework with automatic differentiation, and x0 holds "
            f"{be.name} arrays: return (value, grad_dict) from fun with jac=True, pass "
            "jac=<callable returning the gradient dict>, or jac='2-point' for finite differences"
        )
    hess, hessp = _check_hessians(
        name, mode, hess, hessp, layout.n, method, be.scalar_ad is not None
    )
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

    watch = record or limit is not None or not (progress is None or progress is False)
    # remember the last points only when a callback may need their values without re-evaluating
    track_last = watch or (
        callback is not None and (_wants_result(callback) or name not in _SCIPY_STOPS)
    )
    run = Objective(
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
        finite_substitute=uses_gradient and name != "_custom",
    )

    fun_flat: Callable[[np.ndarray], Any]
    jac_flat: Any
    if not uses_gradient:
        if callable(jac) or (isinstance(jac, str) and jac in FD_STRATEGIES):
            # SciPy's warning (jac=True is this package's default: no warning for it)
            warnings.warn(
                f"Method {method} does not use gradient information (jac).",
                RuntimeWarning,
                stacklevel=3,
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

    flat_constraints, constraint_calls = (
        make_constraints(constraints, layout, codec, be, name, jit)
        if has_constraints
        else ([], _no_calls)
    )

    monitor = None
    if watch:
        monitor = Monitor(
            trace=record,
            keep_x=keep_x,
            progress=progress,
            time_limit=limit,
            method=str(meth),
            total=bar_total(options),
        )
        run.on_first = _first_row(monitor, run)
        run.on_first_grad = monitor.first_grad
    scipy_callback = (
        None
        if callback is None and monitor is None
        else _wrap_callback(callback, run, name, monitor)
    )
    options = None if options is None else dict(options)
    report = False
    if name == "l-bfgs-b" and options is not None:
        # SciPy >= 1.17 deprecates (and 1.18 removes) L-BFGS-B's disp/iprint, which the
        # original package's README uses: honour the request with a summary of our own.
        report = bool(options.pop("disp", False)) | (int(options.pop("iprint", -1)) >= 0)
    kwargs: dict[str, Any] = {}
    if hess_flat is not None:
        kwargs["hess"] = hess_flat
    if hessp_flat is not None:
        kwargs["hessp"] = hessp_flat
    if flat_constraints:
        kwargs["constraints"] = flat_constraints
    caps = solve_threads(threads, layout.n, be)
    if getattr(caps, "lift", False):
        run.on_first = _timed_first(run.on_first, caps)
    if monitor is not None:
        monitor.start()
    try:
        with caps:
            res = scipy.optimize.minimize(
                fun_flat,
                x0_flat,
                method=method if isinstance(method, str) else meth,  # SciPy's warnings name it
                jac=jac_flat,
                bounds=bounds,
                tol=tol,
                callback=scipy_callback,
                options=options,
                **kwargs,
            )
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
            layout,
            codec,
            x0_flat,
            f"interrupted by KeyboardInterrupt after {run.nfev} evaluations; x is the best "
            "point seen",
            -1,
        )
        _add_trace(out, monitor)
        if interrupt == "raise":
            _attach(exc, out)
            raise
        return out
    except Exception as exc:
        best = _best_result(run, layout, codec, x0_flat, f"stopped by {type(exc).__name__}", -1)
        _add_trace(best, monitor)
        _attach(exc, best)
        _note(
            exc,
            f"dict_minimize: raised after {run.nfev} evaluations of fun ({run.njev} of its "
            "gradient"
            + (f", {constraint_calls()} of the constraints" if flat_constraints else "")
            + "); the best point so far is in exc.dict_minimize_result",
        )
        raise
    finally:
        if monitor is not None:
            monitor.close()
    if name == "_custom":
        _check_custom_result(res, method, layout.n)
    out = _result(res, layout, codec, run)
    if flat_constraints:
        out["nfev_constraints"] = constraint_calls()
    if nonfinite != "pass" and run.is_substitute(out.fun) and run.best_x is not None:
        out = _best_result(
            run,
            layout,
            codec,
            x0_flat,
            f"{out.message} (the final point was not finite; x is the best finite point seen)",
            out.status,
        )
    out["nonfinite_count"] = run.bad_evaluations
    if monitor is not None and monitor.timed_out and out.message == _STOP_MESSAGE:
        # SciPy's stop for a callback's StopIteration: status 99 (trust-constr: 3)
        out["message"] = monitor.limit_message(out.nit)
    elif monitor is not None and monitor.timed_out and name == "cobyqa":
        # COBYQA's stop (status 3) is a success when the user asks; the time limit is not one
        out["message"], out["success"] = monitor.limit_message(out.nit), False
    _add_trace(out, monitor, final=True)
    if run.bad_evaluations:
        keys = (
            f" (gradient entries of key(s) {fmt_keys(list(run.bad_keys))})" if run.bad_keys else ""
        )
        warnings.warn(
            f"{run.bad_evaluations} evaluation(s) were not finite{keys} and counted as worse "
            "than every finite point; pass nonfinite='raise' to stop at the first one",
            RuntimeWarning,
            stacklevel=3,
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

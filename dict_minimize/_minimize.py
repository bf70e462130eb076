"""The one generic driver: dict in, SciPy on the flat float64 vector, dict out.

Nothing here imports a framework: every framework-specific step goes through the backend's
:class:`~dict_minimize._types.Codec`, built once per call from the immutable layout.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import scipy.optimize

from dict_minimize._bounds import make_bounds
from dict_minimize._errors import type_name
from dict_minimize._layout import Layout, make_layout, values_by_key
from dict_minimize._types import Codec
from dict_minimize.backends import detect, get_backend
from dict_minimize.backends._common import scalar_to_float

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
#: methods that cannot run without second-order information
NEEDS_HESS = frozenset({"dogleg", "trust-exact"})
NEEDS_HESS_OR_HESSP = frozenset({"trust-ncg", "trust-krylov"})
#: SciPy's finite-difference strategies for ``jac``
FD_STRATEGIES = ("2-point", "3-point", "cs")
#: methods whose SciPy implementation itself stops cleanly on StopIteration from a callback;
#: for the others the driver stops the run and builds the result
_SCIPY_STOPS = frozenset(METHODS) - {"tnc", "cobyqa"}
_STOP_MESSAGE = "`callback` raised `StopIteration`."


class OptimizeResult(scipy.optimize.OptimizeResult):
    """SciPy's ``OptimizeResult`` with ``x`` and ``jac`` as dicts shaped like ``x0``.

    Attributes:
        x: the solution, a mapping of the same type, key order, tensor type, dtype, shape and
            device as ``x0``.
        jac: the gradient at ``x`` in the same form, or None for methods that do not use one.
        fun: the objective at ``x`` (a float).
        nfev: number of objective evaluations.
        njev: number of gradient evaluations.
        nit: number of iterations.
        success: whether SciPy reports success.
        status: SciPy's termination code (99: a callback raised ``StopIteration``).
        message: SciPy's description of the termination.

    Every other field SciPy returns (``hess_inv``, ``maxcv``, ...) is kept unchanged, on the
    flat float64 vector in the layout's order. For trust-constr, SciPy's list of constraint
    Jacobians moves from ``jac`` to ``constr_jac``, and ``jac`` holds the objective's gradient.

    Example:
        >>> import numpy as np
        >>> from dict_minimize import minimize
        >>> res = minimize(lambda d: (float((d["a"] ** 2).sum()), {"a": 2 * d["a"]}),
        ...                {"a": np.ones(3)})
        >>> res.success, res.x["a"].shape, res.fun < 1e-12
        (True, (3,), True)
    """


class _Halt(Exception):
    """Raised through SciPy to stop a run whose method does not honour StopIteration."""


def _is_pair(out: Any) -> bool:
    return isinstance(out, (tuple, list)) and len(out) == 2


class _Run:
    """Per-call state: the flat functions SciPy calls, counters, and the last point seen."""

    def __init__(
        self,
        fun: Callable,
        args: tuple,
        layout: Layout,
        codec: Codec,
        *,
        pair: bool,
        jac: Callable | None,
        track_x: bool,
    ) -> None:
        self.fun, self.args, self.layout, self.codec = fun, args, layout, codec
        self.pair, self.jac, self.track_x = pair, jac, track_x
        self.nfev = 0
        self.njev = 0
        self.nit = 0
        self.last: tuple[np.ndarray, float] | None = None
        self.stopped: tuple[np.ndarray, float | None] | None = None

    def _x_dict(self, x: np.ndarray, for_objective: bool) -> Mapping:
        return self.layout.build(self.codec.unflatten(x, for_objective=for_objective))

    def _remember(self, x: np.ndarray, f: float) -> None:
        if self.track_x:
            self.last = (x.copy(), f)

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """fun(x_dict) -> (value, grad_dict), as (float, float64 vector) for SciPy."""
        out = self.fun(self._x_dict(x, True), *self.args)
        if not _is_pair(out):
            raise TypeError(
                f"with jac=True, fun must return (value, grad_dict); it returned a single "
                f"{type_name(out)}. Return the gradient dict too (e.g. from torch.autograd.grad "
                "or jax.value_and_grad), pass jac=<callable returning the gradient dict>, or "
                "jac='2-point' for finite differences."
            )
        value, grad = out
        value, g = self.codec.flatten(value, values_by_key(grad, self.layout))
        f = value if type(value) is float else scalar_to_float(value)
        self.nfev += 1
        self.njev += 1
        self._remember(x, f)
        return f, g

    def value(self, x: np.ndarray) -> float:
        """fun(x_dict) -> value (a (value, grad) pair is accepted when jac=True)."""
        # a (value, grad) objective differentiates its inputs, so they must require grad
        out = self.fun(self._x_dict(x, self.pair), *self.args)
        if self.pair and _is_pair(out):
            out = out[0]
        f = scalar_to_float(out)
        self.nfev += 1
        self._remember(x, f)
        return f

    def grad(self, x: np.ndarray) -> np.ndarray:
        """jac(x_dict) -> grad_dict, as a float64 vector."""
        assert self.jac is not None  # only installed when the user gave a callable
        out = self.jac(self._x_dict(x, True), *self.args)
        _, g = self.codec.flatten(None, values_by_key(out, self.layout, what="result of jac"))
        self.njev += 1
        return g

    def f_at(self, x: np.ndarray) -> float | None:
        if self.last is not None and np.array_equal(self.last[0], x):
            return self.last[1]
        return None


def _wants_result(callback: Callable) -> bool:
    """SciPy's rule: a callback whose only parameter is ``intermediate_result`` gets the result."""
    try:
        return set(inspect.signature(callback).parameters) == {"intermediate_result"}
    except (TypeError, ValueError):
        return False


def _wrap_callback(callback: Callable, run: _Run, meth: str) -> Callable:
    takes_result = _wants_result(callback)

    def scipy_callback(intermediate_result: Any) -> Any:
        if isinstance(intermediate_result, scipy.optimize.OptimizeResult):
            x = np.asarray(intermediate_result.x)
            f = intermediate_result.get("fun")
        else:  # methods that call callback(xk)
            x, f = np.asarray(intermediate_result), None
        if f is None:
            f = run.f_at(x)
        run.nit += 1
        x_dict = run._x_dict(x, False)
        try:
            if takes_result:
                fields = {}
                if isinstance(intermediate_result, scipy.optimize.OptimizeResult):
                    fields = dict(intermediate_result)
                fields["x"] = x_dict
                fields["fun"] = None if f is None else float(f)
                return callback(intermediate_result=OptimizeResult(fields))
            return callback(x_dict)
        except StopIteration:
            run.stopped = (x.copy(), None if f is None else float(f))
            if meth in _SCIPY_STOPS:
                raise
            raise _Halt from None

    return scipy_callback


def _normalize_method(method: Any, has_bounds: bool) -> Any:
    if method is None:
        return "l-bfgs-b" if has_bounds else "bfgs"
    if callable(method):
        return method
    if not isinstance(method, str):
        raise TypeError(f"method must be a string or a callable; got a {type_name(method)}")
    meth = method.lower()
    if meth not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    return meth


def _result(res: Any, layout: Layout, codec: Codec, run: _Run) -> OptimizeResult:
    out = OptimizeResult(res)
    out["x"] = layout.build(
        codec.unflatten(np.asarray(res.x, dtype=np.float64), for_objective=False)
    )
    jac = res.get("jac")
    if "grad" in res and isinstance(jac, list):  # trust-constr: jac holds the constraints'
        out["constr_jac"] = jac
        jac = res.grad
    if isinstance(jac, np.ndarray) and jac.shape == (layout.n,) and np.isrealobj(jac):
        out["jac"] = layout.build(codec.unflatten(jac.astype(np.float64), for_objective=False))
    else:
        out["jac"] = None
    out["fun"] = float(np.asarray(res.fun).reshape(()))
    out["success"] = bool(res.get("success", False))
    out["status"] = int(res.get("status", 0))
    out["message"] = str(res.get("message", ""))
    out["nfev"] = int(res.get("nfev", run.nfev))
    out["njev"] = int(res.get("njev", run.njev))
    out["nit"] = int(res.get("nit", run.nit))
    return out


def minimize(
    fun: Callable,
    x0: Mapping[Any, Any],
    *,
    args: Any = (),
    method: str | Callable | None = None,
    jac: bool | str | Callable | None = True,
    lb_dict: Mapping[Any, Any] | None = None,
    ub_dict: Mapping[Any, Any] | None = None,
    tol: float | None = None,
    callback: Callable | None = None,
    options: Mapping[str, Any] | None = None,
    backend: str | None = None,
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
        args: extra positional arguments for ``fun``, ``jac`` and nothing else.
        method: any method name of ``scipy.optimize.minimize`` (case-insensitive) or a custom
            callable; by default L-BFGS-B with bounds, BFGS without.
        jac: ``True``: ``fun`` returns the gradient too; a callable ``jac(x_dict, *args) ->
            grad_dict``; ``'2-point'``, ``'3-point'`` or ``'cs'``: SciPy's finite differences on
            the flat vector; ``None``/``False``: SciPy's default for the method.
        lb_dict: lower bounds, optional, naming any subset of the keys. A value may be a scalar
            (broadcast), an array or tensor of the key's shape, None or -inf (unbounded).
        ub_dict: upper bounds, the same way (None or +inf: unbounded).
        tol: tolerance for termination, as in SciPy.
        callback: ``callback(x_dict)`` after each iteration, or
            ``callback(intermediate_result)`` (SciPy's form: ``.x`` is the dict, ``.fun`` the
            value, no re-evaluation). Raising ``StopIteration`` ends the run cleanly.
        options: method options, passed to SciPy unchanged.
        backend: force a backend (``'numpy'``, ``'torch'``, ``'jax'``, ``'tensorflow'``);
            detected from ``x0`` by default.

    Returns:
        OptimizeResult: ``x`` and ``jac`` are dicts like ``x0``; ``fun`` is a float; ``nfev``,
            ``njev``, ``nit``, ``status``, ``success`` and ``message`` as in SciPy.

    Raises:
        TypeError, ValueError: for malformed input, with a message naming the key.
        ImportError: when ``x0``'s framework (or the forced backend) is not installed.

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
    if not callable(fun):
        raise TypeError(f"fun must be callable; got a {type_name(fun)}")
    if not isinstance(x0, Mapping):
        raise TypeError(
            f"x0 must be a dict (or other Mapping) of tensors; got a {type_name(x0)}. "
            "Wrap a single tensor as {'x': tensor}."
        )
    if not isinstance(args, tuple):
        args = (args,)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable; got a {type_name(callback)}")
    if options is not None and not isinstance(options, Mapping):
        raise TypeError(f"options must be a dict; got a {type_name(options)}")
    if len(x0) == 0:
        raise ValueError("x0 is empty: there is nothing to optimize")

    be = get_backend(backend) if backend is not None else detect(x0)
    layout = make_layout(x0, be)
    codec = be.make_codec(layout)
    bounds = make_bounds(lb_dict, ub_dict, layout, be)
    meth = _normalize_method(method, bounds is not None)
    name = meth if isinstance(meth, str) else "_custom"

    if bounds is not None and isinstance(meth, str) and meth not in BOUNDED:
        raise ValueError(
            f"method {method!r} cannot handle bounds (SciPy would ignore them); use one of "
            f"{', '.join(sorted(BOUNDED))}, or drop lb_dict/ub_dict"
        )
    if name in NEEDS_HESS or name in NEEDS_HESS_OR_HESSP:
        raise ValueError(
            f"method {method!r} needs the Hessian (hess"
            + (" or hessp" if name in NEEDS_HESS_OR_HESSP else "")
            + "), which this version of dict_minimize does not pass to SciPy; use 'trust-constr', "
            "'Newton-CG', 'L-BFGS-B' or 'BFGS'"
        )

    if jac is True:
        pair, user_jac = True, None
    elif callable(jac):
        pair, user_jac = False, jac
    elif jac is None or jac is False or jac in FD_STRATEGIES:
        pair, user_jac = False, None
    else:
        raise ValueError(
            f"jac must be True, a callable, None, or one of {FD_STRATEGIES}; got {jac!r}"
        )

    # remember the last point only when a callback may need its value without re-evaluating
    track_x = callback is not None and (_wants_result(callback) or name not in _SCIPY_STOPS)
    run = _Run(fun, args, layout, codec, pair=pair, jac=user_jac, track_x=track_x)

    fun_flat: Callable[[np.ndarray], Any]
    jac_flat: Any
    if name in GRADIENT_FREE:
        fun_flat, jac_flat = run.value, None
    elif jac is True:
        fun_flat, jac_flat = run.value_and_grad, True
    elif user_jac is not None:
        fun_flat, jac_flat = run.value, run.grad
    else:
        fun_flat, jac_flat = run.value, jac or None

    # x0 -> float64 through the codec: one transfer, and x0 itself is only read
    _, x0_flat = codec.flatten(None, [x0[k] for k in layout.keys])

    scipy_callback = None if callback is None else _wrap_callback(callback, run, name)
    options = None if options is None else dict(options)
    report = False
    if name == "l-bfgs-b" and options is not None:
        # SciPy >= 1.17 deprecates (and 1.18 removes) L-BFGS-B's disp/iprint, which the
        # original package's README uses: honour the request with a summary of our own.
        report = bool(options.pop("disp", False)) | (int(options.pop("iprint", -1)) >= 0)
    try:
        res = scipy.optimize.minimize(
            fun_flat,
            x0_flat,
            method=meth,
            jac=jac_flat,
            bounds=bounds,
            tol=tol,
            callback=scipy_callback,
            options=options,
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
    out = _result(res, layout, codec, run)
    if report:
        print(f"{out.message}\n  fun: {out.fun}  nit: {out.nit}  nfev: {out.nfev}")
    return out

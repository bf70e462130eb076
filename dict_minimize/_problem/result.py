"""What a run hands back: the result with dicts like ``x0``, and the checks made on it.

:func:`_result` turns SciPy's flat result into an :class:`OptimizeResult` (``x`` and ``jac``
as dicts through the codec, our own evaluation counts); a run that ended badly returns the best
point seen (:func:`_best_result`); exceptions leaving a run carry it (:func:`_attach`).
"""

from __future__ import annotations

import contextlib
import copy
import math
import traceback
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import scipy.optimize

from dict_minimize._problem.objective import Objective, float64_array, is_matrix_like
from dict_minimize._problem.trace import Monitor
from dict_minimize._structure.layout import Layout
from dict_minimize._structure.types import Codec


class OptimizeResult(scipy.optimize.OptimizeResult):
    """SciPy's ``OptimizeResult`` with ``x`` and ``jac`` as dicts shaped like ``x0``.

    Attributes:
        x: the solution, a mapping of the same type, key order, tensor type, dtype, shape and
            device as ``x0``.
        jac: the gradient at ``x`` in the same form, or None for methods that do not use one.
        fun: the objective at ``x`` (a float).
        nfev: number of objective evaluations, as SciPy counts them for the same call.
        njev: number of gradient evaluations, as SciPy counts them (present where SciPy
            reports it: not for gradient-free methods).
        nfev_ran, njev_ran, nhev_ran: the evaluations of ``fun``, of the gradient and of the
            Hessian (or Hessian-vector products) that really ran in this process (with
            ``jac=True`` one call of ``fun`` counts in both; SciPy's counts also include the
            requests its caches answered).
        nit: number of iterations.
        success: whether SciPy reports success.
        status: SciPy's termination code (99: a callback raised ``StopIteration``).
        message: SciPy's description of the termination.
        nonfinite_count: evaluations after ``x0`` that were not finite (``nonfinite='inf'``).
        exception_count: evaluations after ``x0`` that raised (``error_handling='continue'``).

    With ``maximize=True``, ``fun`` and ``jac`` are those of the function maximized.
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

    ``print(res)`` (``str``) gives a short convergence report, never an array: the outcome,
    the value, the gradient's norm, the counts, the time when traced and ``x``'s keys and
    shapes; ``repr`` stays SciPy's listing of every field (see [The result](guide/result.md)).

        >>> print(str(res).splitlines()[0])
        OptimizeResult: success (status 0)
    """

    def __str__(self) -> str:
        return report(self)


class PrecisionWarning(UserWarning):
    """A run that low-precision (float16/bfloat16/float32) parameters have likely spoiled.

    Example:
        >>> import warnings
        >>> from dict_minimize import PrecisionWarning
        >>> warnings.simplefilter("error", PrecisionWarning)  # make the traps fatal
    """


#: how many characters of x's keys and shapes the report shows (the rest is counted)
_KEYS_SHOWN = 240
#: the longest message the report shows in full
_MESSAGE_SHOWN = 400


def report(res: Any) -> str:
    """A result as a short convergence report (what ``str(res)`` gives).

    Reads only what the result holds (nothing is evaluated) and shows no array: scalars, the
    norms of ``jac`` (or least_squares' ``grad``) and of vector residuals, and ``x`` as its
    keys with their shapes, the first few in full and the rest counted.
    """
    get = res.get
    head = "success" if get("success") else "FAILED"
    lines = [f"OptimizeResult: {head} (status {get('status', '?')})"]
    message = str(get("message", ""))
    if len(message) > _MESSAGE_SHOWN:
        message = message[: _MESSAGE_SHOWN - 3] + "..."
    if message:
        lines.append(f"  message: {message}")
    values = []
    fun = get("fun")
    if isinstance(fun, (int, float, np.number)):
        values.append(f"fun: {float(fun):.10g}")
    elif fun is not None:
        n, norm = _size_and_norm(fun)
        values.append(f"fun: {n} residuals, norm {norm:.6g}")
    for field in ("cost", "optimality", "maxcv", "constr_violation"):
        value = get(field)
        if isinstance(value, (int, float, np.number)):
            values.append(f"{field}: {float(value):.6g}")
    gradient = get("grad") if get("grad") is not None else get("jac")
    if gradient is not None and (get("grad") is not None or not _is_array_like(fun)):
        values.append(f"|grad|: {_size_and_norm(gradient)[1]:.6g}")
    if values:
        lines.append("  " + "   ".join(values))
    counts = [f"{c}: {get(c)}" for c in ("nit", "nfev", "njev", "nhev") if get(c) is not None]
    ran = [
        f"{c} {get(c + '_ran')}"
        for c in ("nfev", "njev", "nhev")
        if get(c + "_ran") is not None and get(c + "_ran") != get(c, 0)
    ]
    if ran:
        counts.append(f"(ran: {', '.join(ran)})")
    if counts:
        lines.append("  " + "   ".join(counts))
    extra = [
        f"{label}: {get(field)}"
        for field, label in (("nonfinite_count", "nonfinite"), ("exception_count", "exceptions"))
        if get(field) is not None
    ]
    trace = get("trace")
    seconds = get("time")
    if seconds is None and trace is not None and len(getattr(trace, "_time", ())):
        seconds = trace.time[-1]
    if isinstance(seconds, (int, float, np.number)) and math.isfinite(seconds):
        extra.append(f"time: {float(seconds):.3g} s")
    if trace is not None and hasattr(trace, "__len__"):
        extra.append(f"trace: {len(trace)} rows")
    if get("exception") is not None:
        extra.append(f"exception: {get('exception')}")
    if isinstance(get("starts"), list):
        extra.append(f"starts: {len(get('starts'))} (best: {get('best_index')})")
    if extra:
        lines.append("  " + "   ".join(extra))
    if "x" in res:
        lines.append(f"  x: {_describe(get('x'))}")
    return "\n".join(lines)


def _is_array_like(value: Any) -> bool:
    return value is not None and not isinstance(value, (int, float, np.number))


def _leaves(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """(path, leaf) pairs of a nested result entry (mappings, lists, tuples)."""
    if isinstance(value, Mapping):
        out = []
        for k, v in value.items():
            out.extend(_leaves(v, f"{path}[{k!r}]" if path else repr(k)))
        return out
    if isinstance(value, (list, tuple)) and not hasattr(value, "shape"):
        out = []
        for i, v in enumerate(value):
            out.extend(_leaves(v, f"{path}[{i}]"))
        return out
    return [(path, value)]


def _shape(leaf: Any) -> tuple[int, ...]:
    shape = getattr(leaf, "shape", None)
    if shape is None:
        return ()
    try:
        return tuple(int(d) for d in shape)
    except (TypeError, ValueError):  # an unknown dimension
        return ()


def _size_and_norm(value: Any) -> tuple[int, float]:
    """The number of scalars in ``value`` (a tensor, a matrix or a nested dict of tensors) and
    their Euclidean norm (NaN when they cannot be read as real numbers)."""
    if is_matrix_like(value):
        data = np.asarray(getattr(value, "data", np.full(1, np.nan)), dtype=np.float64)
        return int(np.prod(value.shape)), float(np.linalg.norm(data))
    total, squares = 0, 0.0
    for _, leaf in _leaves(value):
        try:
            arr = float64_array(leaf, "a result entry")
        except TypeError:
            return total, math.nan
        total += arr.size
        squares += float(np.dot(arr.ravel(), arr.ravel()))
    return total, math.sqrt(squares)


def _describe(x: Any) -> str:
    """``x`` in one line: its type, keys and shapes (the first few), sizes, framework, dtype."""
    leaves = _leaves(x)
    if len(leaves) == 1 and leaves[0][0] == "":
        leaf = leaves[0][1]
        return f"{type(leaf).__name__} of shape {_shape(leaf)}"
    size = sum(int(np.prod(_shape(leaf))) for _, leaf in leaves)
    first = leaves[0][1] if leaves else None
    framework = type(first).__module__.split(".")[0] if first is not None else ""
    framework = {"jaxlib": "jax"}.get(framework, framework)
    dtype = getattr(first, "dtype", None)
    dtype_name = str(getattr(dtype, "name", dtype)).replace("torch.", "")
    kind = f"{framework} {dtype_name}".strip() if dtype is not None else framework
    shown: list[str] = []
    used = 0
    for path, leaf in leaves:
        item = f"{path} {_shape(leaf)}"
        if used + len(item) > _KEYS_SHOWN and shown:
            break
        shown.append(item)
        used += len(item) + 2
    rest = len(leaves) - len(shown)
    more = f", ... and {rest:,} more" if rest else ""
    return (
        f"{type(x).__name__} of {len(leaves):,} {'entry' if len(leaves) == 1 else 'entries'} "
        f"({size:,} scalars, {kind}): "
        f"{', '.join(shown)}{more}"
    )


def _result(res: Any, layout: Layout, codec: Codec, run: Objective) -> OptimizeResult:
    out = OptimizeResult(res)
    out["x"] = layout.build(
        codec.unflatten(np.asarray(res.x, dtype=np.float64), for_objective=False)
    )
    jac = res.get("jac")
    if "grad" in res and isinstance(jac, list):  # trust-constr: jac holds the constraints'
        out["constr_jac"] = jac
        jac = res.grad
    negate = run.negate  # maximize=True: SciPy saw -fun; the result is in the user's sign
    if isinstance(jac, np.ndarray) and jac.shape == (layout.n,) and jac.dtype.kind in "fiu":
        # (the codec copies: the result never shares memory with SciPy's arrays)
        flat_jac = jac if jac.dtype == np.float64 else jac.astype(np.float64)
        if negate:
            flat_jac = -flat_jac
        out["jac"] = layout.build(codec.unflatten(flat_jac, for_objective=False))
    else:
        out["jac"] = None
    fun = res.fun
    out["fun"] = fun if type(fun) is float else float(np.asarray(fun).reshape(()))
    if negate:
        out["fun"] = -out["fun"]
    out["success"] = bool(res.get("success", False))
    out["status"] = int(res.get("status", 0))
    out["message"] = str(res.get("message", ""))
    # nfev/njev/nhev are SciPy's own counts (what SciPy reports for the same call: requests,
    # cache hits included; njev only where SciPy reports it); the evaluations of the user's
    # functions that really ran in this process are nfev_ran/njev_ran/nhev_ran
    for field, ran in (("nfev", run.nfev), ("njev", run.njev), ("nhev", run.nhev)):
        count = res.get(field)
        if count is not None:
            out[field] = int(count)
        elif field == "nfev" or ran:
            out[field] = ran
        out[f"{field}_ran"] = ran
    out["nit"] = int(res.get("nit", run.nit))
    return out


def _best_raw(run: Objective, x0_flat: np.ndarray, message: str, status: int) -> Any:
    """The best finite point seen (x0 if none), flat, for a run that ended badly."""
    found = run.best_x is not None
    return scipy.optimize.OptimizeResult(
        x=run.best_x if run.best_x is not None else x0_flat,
        fun=run.best_f if found else math.nan,
        jac=None,
        success=False,
        status=status,
        message=message,
        nfev=run.nfev,
        njev=run.njev,
        nit=run.nit,
    )


def _best_result(
    run: Objective, layout: Layout, codec: Codec, x0_flat: np.ndarray, message: str, status: int
) -> OptimizeResult:
    return _result(_best_raw(run, x0_flat, message, status), layout, codec, run)


def _note(exc: BaseException, note: str) -> None:
    """PEP 678 note (Python >= 3.11); on older Pythons the attached result must do."""
    add_note = getattr(exc, "add_note", None)
    if add_note is not None:
        add_note(note)


def _attach(exc: BaseException, result: OptimizeResult) -> None:
    """Give an exception leaving ``minimize`` the best point so far (unless it has one)."""
    if getattr(exc, "dict_minimize_result", None) is None:
        with contextlib.suppress(AttributeError, TypeError):  # exotic exception types
            exc.dict_minimize_result = result  # type: ignore[attr-defined]


def _precision_checks(
    out: OptimizeResult, name: str, layout: Layout, flat_jac: Any, fd_hessp: bool
) -> None:
    """Catch the float32 traps that leave SciPy's report misleading."""
    if not layout.low_precision:
        return
    if name == "newton-cg" and fd_hessp and out.success and out.nit <= 1:
        # the flat float64 gradient SciPy saw: no conversion of low-precision tensors needed
        if flat_jac is None or np.any(np.asarray(flat_jac) != 0):
            out["success"] = False
            out["message"] += (
                " (dict_minimize: Newton-CG stopped at x0 without progress: its finite-difference "
                "Hessian is noise at float32 precision)"
            )
            warnings.warn(
                "Newton-CG with a finite-difference Hessian on low-precision parameters returned "
                "x0 unchanged: pass jac='autodiff' (exact Hessian-vector products) or hessp=..., "
                "or use float64 parameters",
                PrecisionWarning,
                stacklevel=5,
            )
    elif name == "l-bfgs-b" and "ABNORMAL" in out.message.upper():
        warnings.warn(
            f"L-BFGS-B stopped with {out.message!r} on low-precision parameters: the "
            "objective's value and gradient disagree at the precision L-BFGS-B asks for. Use "
            "float64 parameters, or loosen the tolerance: options={'ftol': 1e-6} for float32, "
            "options={'gtol': 1e-2} for float16/bfloat16",
            PrecisionWarning,
            stacklevel=5,
        )


def _first_row(monitor: Monitor, run: Objective) -> Callable:
    """The objective's hook for its first evaluation: row 0 of the trace."""

    def first(x: np.ndarray, f: float, g: np.ndarray | None) -> None:
        norm = math.nan if g is None else float(np.linalg.norm(g))
        row_x = run.x_dict(x, False) if monitor.keep_x else None
        monitor.first(run.sign * f, norm, run.nfev, run.njev, row_x, flat_x=x)

    return first


def _add_trace(out: OptimizeResult, monitor: Monitor | None, final: bool = False) -> None:
    """``res.trace`` (and the log's end); with ``final``, a last row for a result that is not
    the last iterate (COBYLA returns its best point, a run may end on a point no iteration
    reported)."""
    if monitor is None or monitor.trace is None:
        return
    tr = monitor.trace
    if final and len(tr) and math.isfinite(out.fun) and out.fun != tr.fun[-1]:
        monitor.row(
            out.fun,
            math.nan,
            out.get("nfev_ran", out.nfev),  # the trace counts the evaluations that ran
            out.get("njev_ran", out.get("njev", 0)),
            int(tr.nit[-1]) + 1,
            copy.deepcopy(out.x) if monitor.keep_x else None,
            flat_x=None if monitor.log is None else monitor.log.flatten(out.x),
        )
    if monitor.show_trace:
        out["trace"] = tr
    if monitor.log is not None:  # the run's last row: how it ended, and the file closed
        monitor.log.close(out)


def failed_result(exc: BaseException, x0: Any) -> OptimizeResult:
    """The result of a problem whose solve raised (``minimize_many``, ``minimize_batched``):
    the best point its run saw, or x0; the exception's name, message and traceback."""
    attached = getattr(exc, "dict_minimize_result", None)
    out = OptimizeResult(attached) if attached is not None else OptimizeResult(x=x0)
    out.setdefault("fun", math.nan)
    out.setdefault("jac", None)
    for count in ("nfev", "njev", "nit"):
        out.setdefault(count, 0)
    out["success"] = False
    out["status"] = -1
    out["message"] = f"{type(exc).__name__}: {exc}"
    out["exception"] = type(exc).__name__
    out["traceback"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return out

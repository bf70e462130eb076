"""A lean driver of SciPy's compiled L-BFGS-B core for a batch of problems of one structure.

Interface (what ``minimize_batched``'s fast path calls)::

    lbfgsb_batched(evaluate, x0, lower, upper, options, on_iteration=None, max_rows=None,
                   blas_threads=1, stop=None) -> list[scipy.optimize.OptimizeResult]
    fast_path_available() -> bool

- ``evaluate(idx, X) -> (f, G)``: ``idx`` is an int64 array ``(k,)`` of problem indices into
  the batch, ``X`` a float64 array ``(k, n)`` of their points (a fresh array the callee may
  keep); it returns the values ``f`` ``(k,)`` and the gradients ``G`` ``(k, n)``, exactly what
  SciPy's ``fun`` (``jac=True``) would return for each row. Each round holds every unfinished
  problem that needs an evaluation, in one call (or chunks of at most ``max_rows`` rows);
  finished problems are never evaluated again.
- ``x0``, ``lower``, ``upper``: float64 ``(B, n)``; ``-inf``/``+inf`` where unbounded.
- ``options``: SciPy's L-BFGS-B options ``maxcor``, ``ftol``, ``gtol``, ``maxfun``,
  ``maxiter``, ``maxls`` (SciPy's defaults where absent); any other key is refused with a
  ``ValueError`` (``SUPPORTED_OPTIONS`` lists them, so that a caller can fall back first).
- ``on_iteration(i, x_i, f_i) -> bool``: called after each iteration of problem ``i`` with a
  copy of its iterate and its value; ``True`` stops that problem as a callback raising
  ``StopIteration`` does in ``scipy.optimize.minimize`` (status 99).
- ``stop``: a bool array ``(B,)`` the caller may set during the run (in ``evaluate``, say):
  a problem whose entry is True stops at its next iteration as if ``on_iteration`` had
  returned True for it (without calling ``on_iteration``).
- ``blas_threads``: the cap on the threads of SciPy's own BLAS (which the core calls) during
  the run, as ``threads=`` caps it for one solve (``DICT_MINIMIZE_THREADS`` overrides it; None:
  left alone). Uncapped, OpenBLAS's threads make each ``setulb`` call of a small problem
  milliseconds instead of microseconds on a busy machine. The objective's threads are the
  caller's.
- Returns one ``OptimizeResult`` per problem, in order, each exactly what
  ``scipy.optimize.minimize(fun_i, x0_i, jac=True, method="L-BFGS-B", bounds=..., options=...)``
  returns: the same ``x`` bits, ``fun``, ``jac``, ``nfev``, ``njev``, ``nit``, ``status``,
  ``message``, ``success`` and ``hess_inv`` (``LbfgsInvHessProduct``). A problem whose
  variables are all fixed by its bounds gets SciPy's short result for that case.
- ``fast_path_available()`` is False where the installed SciPy's private core is not the one
  this module drives (checked: SciPy 1.17.0, 1.17.1, 1.18.x); the generic path runs there.

Each problem keeps its own state (SciPy's work arrays, one row per problem of a few 2-D
arrays); the rounds call ``setulb`` once per active problem and keep the rest of the
bookkeeping (the ``x`` cache SciPy's ``ScalarFunction`` keeps, counts, stops) in NumPy over the
active set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import scipy
from scipy.optimize import OptimizeResult

from .._threads import blas_limit

__all__ = ["SUPPORTED_OPTIONS", "fast_path_available", "lbfgsb_batched"]

Evaluate = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
OnIteration = Callable[[int, np.ndarray, Any], bool]

#: SciPy's L-BFGS-B options this driver takes, with SciPy's defaults
SUPPORTED_OPTIONS: dict[str, Any] = {
    "maxcor": 10,
    "ftol": 2.2204460492503131e-09,
    "gtol": 1e-5,
    "maxfun": 15000,
    "maxiter": 15000,
    "maxls": 20,
}
# the SciPy releases whose private core (setulb's signature, the work-array layout, isave[30]
# counting the BFGS updates, the task codes) this module was checked against; 1.18 passes its
# integer arrays as int64 where SciPy's LAPACK is ILP64 (``HAS_ILP64`` in ``_lbfgsb_py``)
_CHECKED = ((1, 17), (1, 18))
_SIGNATURE = "setulb(m,x,l,u,nbd,f,g,factr,pgtol,wa,iwa,task,lsave,isave,dsave,maxls,ln_task)"
_ALL_FIXED = "All independent variables were fixed by bounds."
_CALLBACK_STOP = "`callback` raised `StopIteration`."
# task[0] codes of the core: 1 NEW_X, 3 FG, 4 CONVERGENCE, 5 STOP
_NEW_X, _FG, _CONVERGENCE, _STOP = 1, 3, 4, 5


def fast_path_available() -> bool:
    """True where the installed SciPy's compiled L-BFGS-B core is the one this module drives.

    Example:
        >>> isinstance(fast_path_available(), bool)
        True
    """
    return _core() is not None


def _core() -> Any:
    """``(setulb, status_messages, task_messages, LbfgsInvHessProduct, int dtype)``, or None."""
    try:
        major, minor = (int(p) for p in scipy.__version__.split(".")[:2])
        from scipy.optimize import _lbfgsb, _lbfgsb_py
    except (ImportError, ValueError):  # pragma: no cover - a SciPy without the private core
        return None
    if (major, minor) not in _CHECKED:
        return None
    setulb = getattr(_lbfgsb, "setulb", None)
    doc = (getattr(setulb, "__doc__", None) or "").strip().splitlines()
    status = getattr(_lbfgsb_py, "status_messages", None)
    tasks = getattr(_lbfgsb_py, "task_messages", None)
    hess_inv = getattr(_lbfgsb_py, "LbfgsInvHessProduct", None)
    if not doc or doc[0].replace(" ", "") != _SIGNATURE or None in (status, tasks, hess_inv):
        return None
    int_dtype = np.int64 if getattr(_lbfgsb_py, "HAS_ILP64", False) else np.int32
    return setulb, status, tasks, hess_inv, int_dtype


def _options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """SciPy's defaults updated with ``options``; unknown keys raise ``ValueError``."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(SUPPORTED_OPTIONS))
    if unknown:
        raise ValueError(
            f"the batched L-BFGS-B fast path does not take the option(s) {unknown}; "
            f"it takes {sorted(SUPPORTED_OPTIONS)}"
        )
    merged = {**SUPPORTED_OPTIONS, **options}
    if not merged["maxls"] > 0:
        raise ValueError("maxls must be positive.")  # SciPy's own message
    return merged


def _arrays(
    x0: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checked float64 copies of the points and bounds, all of shape (B, n)."""
    x = np.array(x0, dtype=np.float64, order="C", copy=True)
    if x.ndim != 2:
        raise ValueError(f"x0 must have shape (B, n), got shape {x.shape}")
    out = [x]
    for name, bound in (("lower", lower), ("upper", upper)):
        b = np.array(bound, dtype=np.float64, order="C", copy=True)
        if b.shape != x.shape:
            raise ValueError(f"{name} must have the shape of x0 {x.shape}, got shape {b.shape}")
        out.append(b)
    bad = np.flatnonzero((out[1] > out[2]).any(axis=1))
    if bad.size:
        raise ValueError(
            f"problem {int(bad[0])}: one of the lower bounds is greater than an upper bound"
        )
    return out[0], out[1], out[2]


class _State:
    """Every problem's SciPy state, one row per problem (rows are what setulb gets)."""

    def __init__(
        self, x0: np.ndarray, lower: np.ndarray, upper: np.ndarray, m: int, int_dtype: Any
    ):
        b, n = x0.shape
        finite_l, finite_u = np.isfinite(lower), np.isfinite(upper)
        # SciPy's nbd codes: 0 free, 1 lower only, 2 both, 3 upper only
        self.nbd = np.where(finite_l, np.where(finite_u, 2, 1), np.where(finite_u, 3, 0))
        self.nbd = self.nbd.astype(int_dtype)
        self.low = np.where(finite_l, lower, 0.0)
        self.up = np.where(finite_u, upper, 0.0)
        self.all_fixed = (lower == upper).all(axis=1)
        self.x = np.clip(x0, lower, upper)
        self.x[self.all_fixed] = lower[self.all_fixed]
        self.x_eval = np.empty_like(self.x)  # ScalarFunction's cached x
        self.f = np.zeros(b)
        self.g = np.zeros((b, n))
        self.wa = np.zeros((b, 2 * m * n + 5 * n + 11 * m * m + 8 * m))
        self.iwa = np.zeros((b, 3 * n), int_dtype)
        self.task = np.zeros((b, 2), int_dtype)
        self.ln_task = np.zeros((b, 2), int_dtype)
        self.lsave = np.zeros((b, 4), int_dtype)
        self.isave = np.zeros((b, 44), int_dtype)
        self.dsave = np.zeros((b, 29))
        self.nit = np.zeros(b, np.int64)
        self.nfev = np.zeros(b, np.int64)
        self.stopped = np.zeros(b, bool)  # on_iteration asked to stop
        self.m = m

    def rows(self) -> list[tuple[np.ndarray, ...]]:
        """Each problem's setulb arguments (row views), in setulb's order."""
        return list(
            zip(
                self.x, self.low, self.up, self.nbd, self.g, self.wa, self.iwa, self.task,
                self.lsave, self.isave, self.dsave, self.ln_task, strict=True,
            )
        )


def _evaluate(
    evaluate: Evaluate, state: _State, idx: np.ndarray, max_rows: int | None
) -> None:
    """Evaluate the problems ``idx`` at their points; store f, g and the cached x."""
    step = idx.size if max_rows is None else max_rows
    n = state.x.shape[1]
    for start in range(0, idx.size, max(step, 1)):
        part = idx[start : start + step]
        points = state.x[part]
        state.x_eval[part] = points
        f, g = evaluate(part, points.copy())
        f = np.asarray(f, dtype=np.float64)
        g = np.asarray(g, dtype=np.float64)
        if f.shape != (part.size,) or g.shape != (part.size, n):
            raise ValueError(
                f"evaluate returned values of shape {f.shape} and gradients of shape "
                f"{g.shape} for {part.size} problems of {n} variables; expected "
                f"({part.size},) and ({part.size}, {n})"
            )
        state.f[part] = f
        state.g[part] = g
        state.nfev[part] += 1


def _new_iteration(
    state: _State,
    idx: np.ndarray,
    opts: dict[str, Any],
    on_iteration: OnIteration | None,
    stop: np.ndarray | None,
) -> None:
    """SciPy's bookkeeping at NEW_X for the problems ``idx``: count, callback, stops."""
    state.nit[idx] += 1
    task = state.task
    if stop is not None and idx.size:
        hit = idx[stop[idx]]
        state.stopped[hit] = True
        task[hit] = (_STOP, 505)
    if on_iteration is not None:
        for i in idx.tolist():
            if not state.stopped[i] and on_iteration(i, state.x[i].copy(), state.f[i]):
                state.stopped[i] = True
                task[i] = (_STOP, 505)
    # SciPy checks maxiter after the callback, so its code wins; maxfun only where maxiter did not
    by_iter = idx[state.nit[idx] >= opts["maxiter"]]
    task[by_iter] = (_STOP, 504)
    rest = idx[state.nit[idx] < opts["maxiter"]]
    task[rest[state.nfev[rest] > opts["maxfun"]]] = (_STOP, 502)


def _advance(
    setulb: Any,
    state: _State,
    rows: list[tuple[np.ndarray, ...]],
    pending: np.ndarray,
    opts: dict[str, Any],
    on_iteration: OnIteration | None,
    stop: np.ndarray | None,
) -> np.ndarray:
    """Run the core on ``pending`` until each needs f and g or stops; returns those needing."""
    m, maxls = state.m, opts["maxls"]
    factr = opts["ftol"] / np.finfo(float).eps
    pgtol = opts["gtol"]
    f = state.f
    needing = []
    while pending.size:
        for i in pending.tolist():
            x, low, up, nbd, g, wa, iwa, task, lsave, isave, dsave, ln_task = rows[i]
            setulb(m, x, low, up, nbd, f[i], g, factr, pgtol, wa, iwa, task, lsave, isave,
                   dsave, maxls, ln_task)
        codes = state.task[pending, 0]
        needing.append(pending[codes == _FG])
        pending = pending[codes == _NEW_X]
        _new_iteration(state, pending, opts, on_iteration, stop)
    return np.concatenate(needing) if needing else pending


def lbfgsb_batched(
    evaluate: Evaluate,
    x0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    options: Mapping[str, Any] | None,
    on_iteration: OnIteration | None = None,
    max_rows: int | None = None,
    blas_threads: int | None = 1,
    stop: np.ndarray | None = None,
) -> list[OptimizeResult]:
    """Solve B problems with SciPy's L-BFGS-B core, one batched evaluation per round.

    See the module's docstring for the interface. Each result equals
    ``scipy.optimize.minimize(..., jac=True, method="L-BFGS-B")`` on that problem alone.

    Example:
        >>> import numpy as np
        >>> def evaluate(idx, X):  # B shifted quadratics
        ...     d = X - idx[:, None]
        ...     return (d**2).sum(axis=1), 2 * d
        >>> x0 = np.zeros((3, 2))
        >>> inf = np.full((3, 2), np.inf)
        >>> res = lbfgsb_batched(evaluate, x0, -inf, inf, {})
        >>> [r.x.round(6).tolist() for r in res]
        [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]
    """
    core = _core()
    if core is None:
        raise RuntimeError(
            f"the batched L-BFGS-B fast path does not support SciPy {scipy.__version__}; "
            "check fast_path_available() first"
        )
    if max_rows is not None and (not isinstance(max_rows, int) or max_rows < 1):
        raise ValueError(f"max_rows must be a positive int or None, got {max_rows!r}")
    setulb, status_messages, task_messages, hess_inv_class, int_dtype = core
    if stop is not None and (stop.dtype != bool or stop.shape != (np.shape(x0)[0],)):
        raise ValueError(f"stop must be a bool array of shape (B,); got {stop.dtype} {stop.shape}")
    opts = _options(options)
    x0, lower, upper = _arrays(x0, lower, upper)
    state = _State(x0, lower, upper, opts["maxcor"], int_dtype)
    everyone = np.arange(x0.shape[0], dtype=np.int64)
    # ScalarFunction evaluates at x0 when it is made (and the all-fixed case evaluates once)
    _evaluate(evaluate, state, everyone, max_rows)
    rows = state.rows()
    pending = everyone[~state.all_fixed]
    with blas_limit(blas_threads):
        while pending.size:
            pending = _advance(setulb, state, rows, pending, opts, on_iteration, stop)
            # ScalarFunction re-evaluates only where x moved since its last evaluation
            moved = ~(state.x[pending] == state.x_eval[pending]).all(axis=1)
            _evaluate(evaluate, state, pending[moved], max_rows)
    return [
        _result(state, i, opts, status_messages, task_messages, hess_inv_class)
        for i in range(x0.shape[0])
    ]


def _result(
    state: _State,
    i: int,
    opts: dict[str, Any],
    status_messages: Mapping[int, str],
    task_messages: Mapping[int, str],
    hess_inv_class: Any,
) -> OptimizeResult:
    """Problem ``i``'s result, as ``scipy.optimize.minimize`` builds it."""
    nfev = int(state.nfev[i])
    if state.all_fixed[i]:
        return OptimizeResult(
            x=state.x[i].copy(), fun=state.f[i], success=True, message=_ALL_FIXED,
            nfev=1, njev=0, nhev=0,
        )
    nit = int(state.nit[i])
    task0, task1 = (int(t) for t in state.task[i])
    if task0 == _CONVERGENCE:
        status = 0
    elif nfev > opts["maxfun"] or nit >= opts["maxiter"]:
        status = 1
    else:
        status = 2
    m, n = state.m, state.x.shape[1]
    n_corrs = min(int(state.isave[i, 30]), m)
    s = state.wa[i, : m * n].reshape(m, n)[:n_corrs].copy()
    y = state.wa[i, m * n : 2 * m * n].reshape(m, n)[:n_corrs].copy()
    message = status_messages[task0] + ": " + task_messages[task1]
    res = OptimizeResult(
        fun=state.f[i], jac=state.g[i].copy(), nfev=nfev, njev=nfev, nit=nit, status=status,
        message=message, x=state.x[i].copy(), success=(status == 0),
        hess_inv=hess_inv_class(s, y),
    )
    if state.stopped[i]:
        res.success = False
        res.status = 99
        res.message = _CALLBACK_STOP
    return res

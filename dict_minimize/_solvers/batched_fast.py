"""The L-BFGS-B fast path of :func:`~dict_minimize.minimize_batched`: SciPy's compiled core
driven for the whole batch (:mod:`dict_minimize._solvers.lbfgsb_batch`), with each problem's
own objective layer (non-finite policy, best point, counts, trace, callback, time limit) and
``minimize``'s result (``_finish``) around it, so each result equals ``minimize``'s.

It runs where the installed SciPy's core is the one that module drives, for L-BFGS-B with only
the options it takes and no progress bar (which counts problems as they finish: the generic
path does). A problem whose evaluation raises (its row of a batched call, or its objective
not finite at x0, or ``nonfinite='raise'``) leaves the batch: its later rounds are not
evaluated, its run stops at its next iteration, and its result is the failure
``minimize`` would have raised, reported as ``minimize_many`` reports it.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import scipy.optimize

from dict_minimize._solvers.batched_rows import _failed_row, _Plan, _Row, _setup
from dict_minimize._solvers.minimize_steps import _call_scipy, _finish

#: L-BFGS-B options the generic path takes and the fast path reads itself
_OWN_OPTIONS = ("disp", "iprint")


def available(plan: Any, progress: Any) -> bool:
    """Whether the fast path runs this batch."""
    if plan.name != "l-bfgs-b" or plan.hessp is not None:
        return False
    if not (progress is None or progress is False):
        return False
    from dict_minimize._solvers.lbfgsb_batch import SUPPORTED_OPTIONS, fast_path_available

    options = {k: v for k, v in (plan.options or {}).items() if k not in _OWN_OPTIONS}
    return set(options) <= set(SUPPORTED_OPTIONS) and fast_path_available()


def _limits(plan: Any, B: int) -> tuple[np.ndarray, np.ndarray]:
    n = plan.layout.n
    if plan.bounds is None:
        return np.full((B, n), -np.inf), np.full((B, n), np.inf)
    lower = np.stack([np.asarray(b.lb, dtype=np.float64) for b in plan.bounds])
    upper = np.stack([np.asarray(b.ub, dtype=np.float64) for b in plan.bounds])
    return lower.reshape(B, n), upper.reshape(B, n)


def _raiser(exc: BaseException) -> Any:
    def fun(x: np.ndarray) -> Any:
        raise exc

    return fun


def _call(driver: Any, idx: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """One batched call of the problems ``idx``: their values ``(k,)``, gradients ``(k, n)``
    and ``{j: exception}`` for the rows that raise (found as the driver finds them: halves,
    down to single rows)."""
    driver.rows.append(len(idx))
    driver.kinds.append("vg")
    try:
        f, G = driver.ev.value_and_grad(idx, X)
        return np.asarray(f, dtype=np.float64), np.asarray(G, dtype=np.float64), {}
    except Exception as exc:
        if len(idx) == 1:
            outs: list[Any] = [exc]
        else:
            h = len(idx) // 2
            outs = driver._evaluate("vg", idx[:h], X[:h], None)
            outs += driver._evaluate("vg", idx[h:], X[h:], None)
    f, G = np.zeros(len(idx)), np.zeros(X.shape)
    errors = {}
    for j, out in enumerate(outs):
        if isinstance(out, BaseException):
            errors[j] = out
        else:
            f[j], G[j] = out
    return f, G, errors


class _Counts:
    """What each problem's :class:`~dict_minimize._problem.objective.Objective` counts and
    tracks, kept in arrays for the rows whose every evaluation was finite (``lean``): the
    evaluations, the best point and value, the worst value. A row leaves ``lean`` (for good) at
    its first non-finite evaluation: its Objective gets these numbers (:meth:`hand_over`) and
    checks each of its evaluations from then on, as ``minimize`` does."""

    def __init__(self, B: int, n: int, lean: bool) -> None:
        self.lean = np.full(B, lean)
        self.nfev = np.zeros(B, np.int64)
        self.best_f = np.full(B, np.inf)
        self.worst_f = np.full(B, -np.inf)
        self.best_x = np.zeros((B, n))

    def add(self, rows: np.ndarray, f: np.ndarray, X: np.ndarray) -> None:
        """Finite evaluations ``f`` at ``X`` of the problems ``rows`` (distinct)."""
        self.nfev[rows] += 1
        better = f < self.best_f[rows]
        self.best_f[rows[better]] = f[better]
        self.best_x[rows[better]] = X[better]
        worse = f > self.worst_f[rows]
        self.worst_f[rows[worse]] = f[worse]

    def hand_over(self, i: int, run: Any) -> None:
        """Problem ``i``'s counts into its Objective, as its own evaluations would leave them."""
        if not self.lean[i]:
            return
        self.lean[i] = False
        nfev = int(self.nfev[i])
        run.nfev = run.njev = nfev
        run._checked_x0 = nfev > 0
        if nfev:
            run.best_f, run.worst_f = float(self.best_f[i]), float(self.worst_f[i])
            run.best_x, run._best_buffer = self.best_x[i].copy(), True


class _Given:
    """A problem's codec whose ``unflatten`` hands out the leaves made for the whole batch at
    once (its result's ``x`` and ``jac``), and converts anything else as the codec does."""

    def __init__(self, codec: Any, given: list[tuple[np.ndarray, list[Any]]]) -> None:
        self.codec, self.given = codec, given

    def __getattr__(self, name: str) -> Any:
        return getattr(self.codec, name)

    def unflatten(self, vec: np.ndarray, *, for_objective: bool, owned: bool = False) -> Any:
        for j, (v, leaves) in enumerate(self.given):
            if v is vec and not for_objective:
                del self.given[j]
                return leaves
        return self.codec.unflatten(vec, for_objective=for_objective, owned=owned)


def _give_leaves(ev: Any, raw: list[Any], steps: list[Any]) -> None:
    """The results' ``x`` and ``jac`` leaves of every problem, converted in one pass by the
    evaluator (where it can) for ``_finish`` to use: not one conversion per problem."""
    unstack = getattr(ev, "unstack", None)
    if unstack is None:
        return
    xs = unstack(np.stack([r.x for r in raw]))
    with_jac = [i for i, r in enumerate(raw) if isinstance(r.get("jac"), np.ndarray)]
    jacs = unstack(np.stack([raw[i].jac for i in with_jac])) if with_jac else []
    given = [[(r.x, x)] for r, x in zip(raw, xs, strict=True)]
    for i, leaves in zip(with_jac, jacs, strict=True):
        given[i].append((raw[i].jac, leaves))
    for st, mine in zip(steps, given, strict=True):
        st.run.codec = _Given(st.run.codec, mine)


def _lean(steps: list[Any]) -> bool:
    """Whether the problems' Objectives may be bypassed while their evaluations are finite:
    nothing watches each evaluation (no trace, time limit, callback, hook)."""
    return all(
        st.monitor is None
        and st.callback is None
        and not st.run.track_last
        and not st.run.negate
        and not st.run.second_order
        and not st.run.continue_on_error
        and st.run.on_eval is None
        and st.run.on_first is None
        for st in steps
    )


def run(plan: _Plan, driver: Any) -> tuple[list[Any], np.ndarray | None]:
    """Every problem's result through the fast path, and the flat solutions ``(B, n)`` where
    every result's ``x`` is the core's last iterate (None otherwise)."""
    from dict_minimize._solvers.lbfgsb_batch import lbfgsb_batched

    B, n = plan.X0.shape
    rows = [_Row(i, None) for i in range(B)]
    steps = [_setup(plan, r) for r in rows]
    failed: dict[int, BaseException] = {}
    stop = np.zeros(B, bool)  # failed problems: stopped at their next iteration
    counts = _Counts(B, n, _lean(steps))

    def evaluate(idx: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        F, G = np.zeros(len(idx)), np.zeros((len(idx), n))
        live = np.flatnonzero(~stop[idx])
        if not live.size:
            return F, G
        part, Xl = idx[live], X[live]
        f, g, errors = _call(driver, part, Xl)
        F[live], G[live] = f, g
        ok = counts.lean[part] & np.isfinite(f) & np.isfinite(g).all(axis=1)
        for j in errors:
            ok[j] = False
        counts.add(part[ok], f[ok], Xl[ok])
        for j in np.flatnonzero(~ok).tolist():
            i = int(part[j])
            if j in errors:
                failed[i], stop[i] = errors[j], True
                continue
            run = steps[i].run
            counts.hand_over(i, run)
            rows[i].given = (float(f[j]), g[j])
            try:  # the problem's own checks, counts and best point, as minimize makes them
                F[live[j]], G[live[j]] = run.value_and_grad(Xl[j])
            except Exception as exc:
                failed[i], stop[i] = exc, True
        return F, G

    def on_iteration(i: int, x: np.ndarray, f: Any) -> bool:
        callback = steps[i].callback
        if callback is None or stop[i]:
            return bool(stop[i])
        try:  # SciPy's L-BFGS-B hands its callback OptimizeResult(x=x, fun=f)
            callback(scipy.optimize.OptimizeResult(x=x, fun=f))
        except StopIteration:
            return True
        return False

    options = {k: v for k, v in (plan.options or {}).items() if k not in _OWN_OPTIONS}
    if plan.tol is not None:  # as scipy.optimize.minimize reads tol for L-BFGS-B
        options.setdefault("ftol", plan.tol)
        options.setdefault("gtol", plan.tol)
    for st in steps:
        if st.monitor is not None:
            st.monitor.start()
    lower, upper = _limits(plan, B)
    raw: list[Any] | None = None
    # on Ctrl-C every problem stops as minimize stops: with its best point
    with contextlib.suppress(KeyboardInterrupt):
        raw = lbfgsb_batched(
            evaluate, plan.X0, lower, upper, options,
            None if all(st.callback is None for st in steps) else on_iteration,
            max_rows=driver.max_rows, blas_threads=None, stop=stop,
        )  # fmt: skip
    lean = counts.lean.all() and not failed and raw is not None
    if lean and raw is not None:
        _give_leaves(driver.ev, raw, steps)
    results = []
    for i, st in enumerate(steps):
        counts.hand_over(i, st.run)  # the counts of minimize's Objective, before _finish
        if st.monitor is not None:
            st.monitor.close()
        if raw is None:
            _, out = _call_scipy(
                st.run, st.monitor, contextlib.nullcontext(), "return", None,
                _raiser(KeyboardInterrupt()), plan.X0[i], method=plan.method, jac=True,
            )  # fmt: skip
            results.append(out)
            continue
        res = raw[i]
        try:
            if i in failed:  # minimize's handling of an exception raised inside SciPy
                _call_scipy(
                    st.run,
                    st.monitor,
                    contextlib.nullcontext(),
                    "return",
                    None,
                    _raiser(failed[i]),
                    plan.X0[i],
                    method=plan.method,
                    jac=True,
                )
            out = _finish(
                res, st.run, st.monitor, plan.name, plan.method, plan.X0[i], plan.nonfinite,
                None, None, st.report, None,
            )  # fmt: skip
        except Exception as exc:
            out = _failed_row(exc, plan, i)
        results.append(out)
    return results, (np.stack([r.x for r in raw]) if lean and raw is not None else None)

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


def run(plan: _Plan, driver: Any) -> list[Any]:
    """Every problem's result through the fast path."""
    from dict_minimize._solvers.lbfgsb_batch import lbfgsb_batched

    B, n = plan.X0.shape
    rows = [_Row(i, None) for i in range(B)]
    steps = [_setup(plan, r) for r in rows]
    failed: dict[int, BaseException] = {}

    def evaluate(idx: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        F, G = np.zeros(len(idx)), np.zeros((len(idx), n))
        live = np.array([j for j, i in enumerate(idx.tolist()) if i not in failed], np.int64)
        outs = driver._evaluate("vg", idx[live], X[live], None) if live.size else []
        for j, out in zip(live.tolist(), outs, strict=True):
            i = int(idx[j])
            if isinstance(out, BaseException):
                failed[i] = out
                continue
            rows[i].given = out
            try:  # the problem's own checks, counts and best point, as minimize makes them
                F[j], G[j] = steps[i].run.value_and_grad(X[j])
            except Exception as exc:
                failed[i] = exc
        return F, G

    def on_iteration(i: int, x: np.ndarray, f: Any) -> bool:
        if i in failed:
            return True
        callback = steps[i].callback
        if callback is None:
            return False
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
            evaluate, plan.X0, lower, upper, options, on_iteration, max_rows=driver.max_rows
        )
    results = []
    for i, st in enumerate(steps):
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
    return results

"""One problem's solve inside :func:`~dict_minimize.minimize_batched`: ``solve``'s steps
(``_make_objective``, ``_flat_functions``, ``_call_scipy``, ``_finish``) with an objective whose
every evaluation is a request to the batch driver (:mod:`.batched_drive`) or, on the L-BFGS-B
fast path (:mod:`.batched_fast`), a row handed in by it.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from dict_minimize._problem.objective import Objective
from dict_minimize._problem.result import OptimizeResult, _first_row
from dict_minimize._problem.result import failed_result as _failed
from dict_minimize._problem.trace import Monitor, bar_total
from dict_minimize._solvers.minimize_steps import (
    _SCIPY_STOPS,
    _call_scipy,
    _finish,
    _flat_functions,
    _make_objective,
    _wants_result,
    _wrap_callback,
)
from dict_minimize._structure.layout import Layout


class _RowObjective(Objective):
    """One problem's objective, whose every evaluation is a request to the batch driver."""

    __slots__ = ()

    def value(self, x: np.ndarray) -> float:
        # the value alone (the stop of a method that ignores StopIteration): one evaluation,
        # counted as minimize counts it
        source = self.ad if self.ad is not None else self.pair
        assert source is not None
        f, _ = source.value_and_grad(x)
        self.nfev += 1
        return self._checked(x, f, None)


class _Row:
    """What the row's Objective takes for its autodiff / compiled pair: requests that pause
    the problem's coroutine until the driver has evaluated the round."""

    __slots__ = ("driver", "given", "i")

    fun_calls = 0

    def __init__(self, i: int, driver: Any) -> None:
        self.i, self.driver = i, driver
        self.given: tuple[float, np.ndarray] | None = None  # the fast path's row, handed in

    def value_and_grad(self, x: np.ndarray, owned: bool = False) -> tuple[float, np.ndarray]:
        given = self.given
        if given is not None:
            self.given = None
            return given
        return self.driver.switch(("vg", self.i, x, None))

    def hvp(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        return self.driver.switch(("hvp", self.i, x, p))

    def hess(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - excluded by the checks
        raise RuntimeError("dense Hessians are not batched")


@dataclasses.dataclass
class _Sources:
    """The backend record ``_make_objective`` reads, handing out the row's requests."""

    row: _Row

    def scalar_ad(self, *args: Any, **kwargs: Any) -> _Row:
        return self.row

    def compile_pair(self, *args: Any, **kwargs: Any) -> _Row:
        return self.row


@dataclasses.dataclass
class _Plan:
    """What every problem's solve shares (the keywords of ``minimize``, checked once)."""

    fun: Callable
    args: tuple
    layout: Layout
    codec: Any
    mode: Any
    jac: Any
    hessp: Any
    name: str
    method: str
    jit: bool | None
    nonfinite: str
    tol: Any
    callback: Any
    options: dict[str, Any] | None
    record: bool
    keep_x: bool
    limit: float | None
    X0: np.ndarray
    bounds: list[Any] | None


@dataclasses.dataclass
class _Setup:
    """One problem's objective, SciPy's functions, monitor, callback and options."""

    run: Objective
    fun_flat: Callable
    jac_flat: Any
    hessp_flat: Any
    monitor: Monitor | None
    callback: Callable | None
    options: dict[str, Any] | None
    report: bool


def _setup(plan: _Plan, row: _Row) -> _Setup:
    """The steps of ``solve`` before SciPy runs, with the row's requests as the objective."""
    name, callback = plan.name, plan.callback
    watch = plan.record or plan.limit is not None
    track_last = watch or (
        callback is not None and (_wants_result(callback) or name not in _SCIPY_STOPS)
    )
    run = _make_objective(
        plan.fun,
        plan.args,
        plan.layout,
        plan.codec,
        _Sources(row),
        plan.mode,
        plan.jac,
        None,
        plan.hessp,
        name,
        plan.jit,
        plan.nonfinite,
        False,
        track_last,
    )
    run.__class__ = _RowObjective
    fun_flat, jac_flat, _, hessp_flat = _flat_functions(
        run, plan.mode, plan.jac, None, plan.hessp, plan.method, True
    )
    monitor = None
    if watch:
        monitor = Monitor(
            trace=plan.record,
            keep_x=plan.keep_x,
            progress=False,
            time_limit=plan.limit,
            method=name,
            total=bar_total(plan.options),
        )
        run.on_first = _first_row(monitor, run)
        run.on_first_grad = monitor.first_grad
    scipy_callback = (
        None
        if callback is None and monitor is None
        else _wrap_callback(callback, run, name, monitor)
    )
    options = None if plan.options is None else dict(plan.options)
    report = False
    if name == "l-bfgs-b" and options is not None:  # as solve() honours them
        report = bool(options.pop("disp", False)) | (int(options.pop("iprint", -1)) >= 0)
    return _Setup(run, fun_flat, jac_flat, hessp_flat, monitor, scipy_callback, options, report)


def _solve_row(plan: _Plan, i: int, driver: Any) -> OptimizeResult:
    """Problem ``i``'s solve: ``solve``'s steps, SciPy pausing at each evaluation."""
    st = _setup(plan, _Row(i, driver))
    x0 = plan.X0[i]
    res, stopped = _call_scipy(
        st.run,
        st.monitor,
        contextlib.nullcontext(),  # the driver holds the thread caps for the whole batch
        "return",
        None,
        st.fun_flat,
        x0,
        method=plan.method,
        jac=st.jac_flat,
        bounds=None if plan.bounds is None else plan.bounds[i],
        tol=plan.tol,
        callback=st.callback,
        options=st.options,
        **({} if st.hessp_flat is None else {"hessp": st.hessp_flat}),
    )
    if stopped is not None:
        return stopped
    return _finish(
        res,
        st.run,
        st.monitor,
        plan.name,
        plan.method,
        x0,
        plan.nonfinite,
        None,
        plan.hessp,
        st.report,
        None,
    )


def _failed_row(exc: BaseException, plan: _Plan, i: int) -> OptimizeResult:
    return _failed(exc, plan.layout.build(plan.codec.unflatten(plan.X0[i], for_objective=False)))


def _task(plan: _Plan, i: int, driver: Any) -> Callable[[], OptimizeResult]:
    def solve() -> OptimizeResult:
        try:
            return _solve_row(plan, i, driver)
        except Exception as exc:
            return _failed_row(exc, plan, i)

    return solve

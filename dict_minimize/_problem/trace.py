"""What a run did, row by row: the trace, the progress bar and the time limit.

:class:`Monitor` sits between SciPy's per-iteration callback and the user's: it records one row
per iteration from what SciPy hands over (``intermediate_result``) and from the evaluations the
:class:`~dict_minimize._problem.objective.Objective` already made, so the objective is never
evaluated again for the trace; it drives the optional tqdm bar and asks for a stop when the time
limit is reached. Nothing here imports a framework; tqdm and pandas are imported only when used.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from dict_minimize._errors import type_name

#: the columns of a trace, in order
COLUMNS = ("nit", "fun", "grad_norm", "nfev", "njev", "time")


class Trace:
    """One row per iteration of a run, the start point as row 0.

    Attributes:
        fun: the objective at each row's point (float64 array).
        grad_norm: the Euclidean norm of the gradient there (NaN where no gradient was
            computed at that point: gradient-free methods, SciPy's finite differences).
        nfev: cumulative objective evaluations when the row was recorded (int64 array).
        njev: cumulative gradient evaluations when the row was recorded (int64 array).
        time: seconds since the run started (float64 array).
        nit: the iteration number of each row (0 for the start point).
        x: the point of each row as a dict shaped like ``x0``, when kept (``trace="x"``), else
            None.
        label: a name for plots and tables (``compare`` sets it; ``minimize`` sets the method).
        result: the ``OptimizeResult`` of the run, where there is one (``compare`` sets it for
            SciPy methods), else None.

    A trace is what ``minimize(..., trace=True)`` puts in ``res.trace``, and what
    :func:`dict_minimize.compare` returns per optimizer; ``dict_minimize.plot`` draws it.

    Example:
        >>> import numpy as np
        >>> from dict_minimize import minimize
        >>> res = minimize(lambda d: (float(d["a"] @ d["a"]), {"a": 2 * d["a"]}),
        ...                {"a": np.ones(2)}, method="L-BFGS-B", trace=True)
        >>> tr = res.trace
        >>> len(tr) == res.nit + 1, float(tr.fun[0]), int(tr.nfev[0]), bool(tr.fun[-1] == res.fun)
        (True, 2.0, 1, True)
    """

    def __init__(
        self,
        *,
        fun: Iterable[float] = (),
        grad_norm: Iterable[float] | None = None,
        nfev: Iterable[int] = (),
        njev: Iterable[int] | None = None,
        time: Iterable[float] | None = None,
        nit: Iterable[int] | None = None,
        x: list[Any] | None = None,
        label: str | None = None,
    ) -> None:
        self._fun = [float(v) for v in fun]
        n = len(self._fun)
        self._nfev = [int(v) for v in nfev]
        self._grad_norm = [math.nan] * n if grad_norm is None else [float(v) for v in grad_norm]
        self._njev = [0] * n if njev is None else [int(v) for v in njev]
        self._time = [math.nan] * n if time is None else [float(v) for v in time]
        self._nit = list(range(n)) if nit is None else [int(v) for v in nit]
        for name, col in (
            ("grad_norm", self._grad_norm),
            ("nfev", self._nfev),
            ("njev", self._njev),
            ("time", self._time),
            ("nit", self._nit),
        ):
            if len(col) != n:
                raise ValueError(f"Trace: {name} has {len(col)} rows; fun has {n}")
        if x is not None and len(x) != n:
            raise ValueError(f"Trace: x has {len(x)} rows; fun has {n}")
        self._x = None if x is None else list(x)
        self.label = label
        self.result: Any = None

    # -- building -----------------------------------------------------------------------------
    def append(
        self,
        fun: float,
        *,
        grad_norm: float = math.nan,
        nfev: int,
        njev: int = 0,
        time: float = math.nan,
        nit: int | None = None,
        x: Any = None,
    ) -> None:
        """Add one row (the next iteration unless ``nit`` says otherwise)."""
        if self._x is not None and x is None and self._fun:
            raise ValueError("Trace.append: this trace keeps x; pass the row's x")
        if x is not None and self._x is None:
            if self._fun:
                raise ValueError("Trace.append: this trace does not keep x (rows before had none)")
            self._x = []
        self._nit.append(len(self._fun) if nit is None else int(nit))
        self._fun.append(float(fun))
        self._grad_norm.append(float(grad_norm))
        self._nfev.append(int(nfev))
        self._njev.append(int(njev))
        self._time.append(float(time))
        if x is not None:
            assert self._x is not None
            self._x.append(x)

    # -- reading ------------------------------------------------------------------------------
    @property
    def fun(self) -> np.ndarray:
        return np.array(self._fun, dtype=np.float64)

    @property
    def grad_norm(self) -> np.ndarray:
        return np.array(self._grad_norm, dtype=np.float64)

    @property
    def nfev(self) -> np.ndarray:
        return np.array(self._nfev, dtype=np.int64)

    @property
    def njev(self) -> np.ndarray:
        return np.array(self._njev, dtype=np.int64)

    @property
    def time(self) -> np.ndarray:
        return np.array(self._time, dtype=np.float64)

    @property
    def nit(self) -> np.ndarray:
        return np.array(self._nit, dtype=np.int64)

    @property
    def x(self) -> list[Any] | None:
        return None if self._x is None else list(self._x)

    def __len__(self) -> int:
        return len(self._fun)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """The rows as dicts (``nit``, ``fun``, ``grad_norm``, ``nfev``, ``njev``, ``time``,
        and ``x`` when kept)."""
        for i in range(len(self)):
            yield self.row(i)

    def row(self, i: int) -> dict[str, Any]:
        """Row ``i`` (negative counts from the end) as a dict."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"trace row {i} out of range: the trace has {n} rows")
        out: dict[str, Any] = {
            "nit": self._nit[i],
            "fun": self._fun[i],
            "grad_norm": self._grad_norm[i],
            "nfev": self._nfev[i],
            "njev": self._njev[i],
            "time": self._time[i],
        }
        if self._x is not None:
            out["x"] = self._x[i]
        return out

    def best(self) -> dict[str, Any]:
        """The row with the lowest finite objective (the first of equals)."""
        f = self.fun
        if not len(f) or not np.isfinite(f).any():
            raise ValueError("the trace has no row with a finite objective")
        return self.row(int(np.nanargmin(np.where(np.isfinite(f), f, np.nan))))

    def evals_to(self, target: float, by: str = "njev") -> int | None:
        """The count (``by``: ``"njev"``, ``"nfev"``, ``"nit"``) at the first row whose
        objective is at most ``target``; None when no row reaches it."""
        if by not in ("njev", "nfev", "nit"):
            raise ValueError(f"by must be 'njev', 'nfev' or 'nit'; got {by!r}")
        hit = np.flatnonzero(self.fun <= target)
        return None if not len(hit) else int(getattr(self, by)[hit[0]])

    def to_pandas(self) -> Any:
        """The trace as a ``pandas.DataFrame`` (one column per attribute; ``x`` as objects).

        Raises:
            ImportError: when pandas is not installed.
        """
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - pandas is installed where tested
            raise ImportError(
                "Trace.to_pandas needs pandas: pip install pandas (or use the array attributes)"
            ) from exc
        data: dict[str, Any] = {c: getattr(self, c) for c in COLUMNS}
        if self._x is not None:
            data["x"] = pd.Series(self._x, dtype=object)
        frame = pd.DataFrame(data)
        frame.index.name = "row"
        return frame

    def __repr__(self) -> str:
        if not self._fun:
            return f"Trace({self.label or ''}: 0 rows)"
        last = self.row(-1)
        name = f"{self.label}: " if self.label else ""
        kept = ", x kept" if self._x is not None else ""
        return (
            f"Trace({name}{len(self)} rows, fun {self._fun[0]:.6g} -> {last['fun']:.6g}, "
            f"nfev {last['nfev']}, njev {last['njev']}, {last['time']:.3g} s{kept})"
        )


def as_trace(run: Any, what: str = "run") -> Trace:
    """A :class:`Trace` from a trace, or from a result that carries one (``res.trace``)."""
    if isinstance(run, Trace):
        return run
    trace = run.get("trace") if isinstance(run, Mapping) else getattr(run, "trace", None)
    if isinstance(trace, Trace):
        return trace
    if isinstance(run, Mapping) and "trace" not in run and hasattr(run, "nfev"):
        raise TypeError(
            f"{what} is a result without a trace: run minimize(..., trace=True) (or trace='x' "
            "for path plots)"
        )
    raise TypeError(f"{what} is a {type_name(run)}; expected a Trace or a result with .trace")


def check_trace_arg(trace: Any) -> tuple[bool, bool]:
    """(record a trace, keep x) for ``minimize``'s ``trace`` argument."""
    if trace is None or trace is False:
        return False, False
    if trace is True:
        return True, False
    if isinstance(trace, str) and trace == "x":
        return True, True
    raise ValueError(f"trace must be False, True or 'x'; got {trace!r}")


def check_time_limit(time_limit: Any) -> float | None:
    if time_limit is None:
        return None
    if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)):
        raise TypeError(f"time_limit must be a number of seconds; got a {type_name(time_limit)}")
    if not time_limit > 0:  # NaN too
        raise ValueError(f"time_limit must be a positive number of seconds; got {time_limit!r}")
    return float(time_limit)


def bar_total(options: Any) -> int | None:
    """The bar's total: ``options["maxiter"]`` when given as an int, else None (no total).

    SciPy's defaults are left out: they differ by method and size (L-BFGS-B 15000, BFGS
    200 x n, ...) and a run that converges stops long before them, so a bar over them would
    read 0% throughout.
    """
    if not isinstance(options, Mapping):
        return None
    maxiter = options.get("maxiter")
    if isinstance(maxiter, bool) or not isinstance(maxiter, (int, np.integer)) or maxiter < 1:
        return None
    return int(maxiter)


def _make_bar(progress: Any, method: str, total: int | None = None) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError as exc:
        raise ImportError(
            "progress=True needs tqdm: pip install 'dict_minimize[progress]'"
        ) from exc
    kwargs: dict[str, Any] = {"desc": method, "unit": "it", "leave": True, "total": total}
    if isinstance(progress, Mapping):
        kwargs.update(progress)
    return tqdm(**kwargs)


class Monitor:
    """Trace rows, the progress bar and the time limit of one run.

    The driver calls :meth:`start` just before SciPy starts, :meth:`first` from the objective's
    first evaluation (the start point: row 0), :meth:`iteration` from SciPy's callback, and
    :meth:`close` when the run has ended, however it ended.
    """

    def __init__(
        self,
        *,
        trace: bool,
        keep_x: bool,
        progress: Any,
        time_limit: float | None,
        method: str,
        total: int | None = None,
    ) -> None:
        self.trace = Trace(label=method, x=[] if keep_x else None) if trace else None
        self.show_trace = trace
        #: the run's history file (a ``HistoryWriter``), written row by row beside the trace
        self.log: Any = None
        self.keep_x = keep_x
        self.time_limit = time_limit
        self.method = method
        self.t0 = time.perf_counter()
        self.timed_out = False
        self._progress = progress
        self.bar: Any = None
        if progress is not None and progress is not False:
            if not (progress is True or isinstance(progress, Mapping)):
                raise TypeError(
                    "progress must be False, True or a dict of tqdm options; got a "
                    f"{type_name(progress)}"
                )
            self.bar = _make_bar(progress, method, total)

    def attach_log(self, log: Any) -> None:
        """Write every row to ``log`` too (a ``HistoryWriter``, timed by this monitor's clock).

        The monitor then keeps a trace in any case (the same rows and decisions, so that the
        log's rows are the trace's); ``res.trace`` shows it only when ``trace`` was asked."""
        self.log = log
        log.clock = self.elapsed
        if self.trace is None:
            self.trace = Trace(label=self.method)

    @property
    def needs_rows(self) -> bool:
        """True when a callback row needs the value at x (trace or bar)."""
        return self.trace is not None or self.bar is not None

    def start(self) -> None:
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def row(
        self,
        f: float,
        grad_norm: float,
        nfev: int,
        njev: int,
        nit: int,
        x: Any,
        *,
        flat_x: Any = None,
        t: float | None = None,
    ) -> None:
        """Append one row to the trace and to the log (``x``: the row's dict when the trace
        keeps it; ``flat_x``: the flat point, for the log)."""
        t = self.elapsed() if t is None else t
        if self.trace is not None:
            self.trace.append(
                f, grad_norm=grad_norm, nfev=nfev, njev=njev, time=t, nit=nit, x=x
            )
        if self.log is not None:
            self.log.row(nit, f, grad_norm, nfev, njev, t, flat_x)

    def first(
        self, f: float, grad_norm: float, nfev: int, njev: int, x: Any, flat_x: Any = None
    ) -> None:
        """Row 0: the first evaluation, at the start point."""
        if self.trace is not None and len(self.trace) == 0:
            self.row(f, grad_norm, nfev, njev, 0, x, flat_x=flat_x)

    def first_grad(self, grad_norm: float) -> None:
        """The start point's gradient, computed apart from its value (a ``jac`` callable)."""
        tr = self.trace
        if tr is not None and len(tr) == 1 and math.isnan(tr._grad_norm[0]):
            tr._grad_norm[0] = grad_norm
            tr._njev[0] = max(tr._njev[0], 1)
            if self.log is not None:
                self.log.first_grad(grad_norm, tr._njev[0])

    def iteration(
        self,
        nit: int,
        f: float | None,
        grad_norm: float,
        nfev: int,
        njev: int,
        x: Any,
        flat_x: Any = None,
    ) -> bool:
        """Record iteration ``nit``; True when the time limit asks the run to stop."""
        t = self.elapsed()
        value = math.nan if f is None else float(f)
        self.row(value, grad_norm, nfev, njev, nit, x, flat_x=flat_x, t=t)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(fun=f"{value:.6g}", nfev=nfev, refresh=False)
        if self.time_limit is not None and t >= self.time_limit:
            self.timed_out = True
            return True
        return False

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def limit_message(self, nit: int) -> str:
        return (
            f"time limit of {self.time_limit:g} s reached after {nit} iterations "
            f"({self.elapsed():.3g} s); x is the last iterate"
        )


__all__ = ["COLUMNS", "Monitor", "Trace", "as_trace", "check_time_limit", "check_trace_arg"]


def problems_bar(progress: Any, total: int) -> Any:
    """A tqdm bar over finished problems (``minimize_many``, ``minimize_batched``), or None."""
    if progress is None or progress is False:
        return None
    if progress is not True and not isinstance(progress, Mapping):
        raise TypeError(
            f"progress must be False, True or a dict of tqdm options; got a {type_name(progress)}"
        )
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError(
            "progress=True needs tqdm: pip install 'dict_minimize[progress]'"
        ) from None
    kwargs = {"total": total, "desc": "problems", "unit": "problem"}
    if isinstance(progress, Mapping):
        kwargs.update(progress)
    return tqdm(**kwargs)


def takes_two(callback: Callable) -> bool:
    """Whether ``callback(xk, state)`` can be called (SciPy's form for trust-constr)."""
    try:
        params = list(inspect.signature(callback).parameters.values())
    except (TypeError, ValueError):
        return False
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2

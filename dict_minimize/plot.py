"""Pictures of what a run did: convergence curves, paths over a 2-D function, a live view.

matplotlib is imported only when a function here is called (``pip install
'dict_minimize[plot]'``). Every function draws on the Axes it is given (or on a new figure's)
and returns it; none calls ``plt.show()`` or changes the backend.

Example:
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from dict_minimize import minimize, plot
    >>> from dict_minimize.testfunctions import himmelblau
    >>> fn = himmelblau()
    >>> res = minimize(fn.objective("numpy"), fn.x0("numpy"), trace="x")
    >>> ax = plot.convergence(res, f_min=fn.f_min)
    >>> ax.get_xlabel(), ax.get_yscale()
    ('objective evaluations', 'log')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dict_minimize._errors import type_name
from dict_minimize._problem.objective import float64_array
from dict_minimize._problem.trace import Trace, as_trace

#: what the x axis of a convergence plot can count, and its label
X_AXES = {
    "nfev": "objective evaluations",
    "njev": "gradient evaluations",
    "time": "seconds",
    "nit": "iterations",
}
#: the smallest gap drawn on a log axis (a gap of exactly 0 is drawn there)
GAP_FLOOR = 1e-300
#: line styles and markers cycled with the colours, so that runs stay apart where their lines
#: overlap and in grey print; run i gets the same look in every figure here
_LINESTYLES = ("-", "--", "-.", ":")
_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "<")


def _look(i: int, n_points: int) -> dict[str, Any]:
    """Line style, marker and marker spacing of run ``i`` (about 10 markers per line)."""
    return {
        "linestyle": _LINESTYLES[i % len(_LINESTYLES)],
        "marker": _MARKERS[i % len(_MARKERS)],
        "markevery": max(1, n_points // 10),
        "markersize": 4,
    }


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "dict_minimize.plot needs matplotlib: pip install 'dict_minimize[plot]'"
        ) from exc
    return plt


def _axes(ax: Any) -> Any:
    if ax is not None:
        return ax
    _, ax = _pyplot().subplots()
    return ax


def _runs(runs: Any) -> list[tuple[str | None, Any]]:
    """(label, run) pairs: one run, or a dict of name -> run."""
    if isinstance(runs, Mapping) and not _is_result(runs):
        return [(str(name), run) for name, run in runs.items()]
    return [(None, runs)]


def _is_result(obj: Any) -> bool:
    import scipy.optimize

    return isinstance(obj, scipy.optimize.OptimizeResult)


def convergence(
    runs: Any,
    x: str = "nfev",
    *,
    f_min: float | None = None,
    ax: Any = None,
    running_min: bool = False,
    title: str | None = None,
    floor: float | None = None,
) -> Any:
    """Draw the objective (or its gap to ``f_min``) of each run against evaluations or time.

    Args:
        runs: a :class:`~dict_minimize.Trace`, a result of ``minimize(..., trace=True)``, or a
            dict of name -> either (one line each, with a legend; what
            :func:`dict_minimize.compare` returns).
        x: the x axis: ``"nfev"`` (objective evaluations), ``"njev"`` (gradient evaluations),
            ``"time"`` (seconds) or ``"nit"`` (iterations).
        f_min: when given, draw ``fun - f_min``; a gap of exactly 0 is drawn at 1e-300 so that
            the log axis can show it.
        ax: the matplotlib Axes to draw on (default: a new figure's).
        running_min: draw the best value so far instead (for Adam or SGD, whose values go up
            and down).
        title: the Axes' title.
        floor: a positive number: values (or gaps) below it are drawn at it and a log y axis
            starts there, so that a run that reached 1e-300 does not stretch the axis.

    Returns:
        The Axes. The y axis is logarithmic when every value drawn is positive. Each run has
        its own colour, line style and marker (the same for run ``i`` in :func:`paths`).

    Example:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from dict_minimize import Trace, plot
        >>> ax = plot.convergence({"a": Trace(fun=[4.0, 1.0], nfev=[1, 3]),
        ...                        "b": Trace(fun=[4.0, 2.0, 0.5], nfev=[1, 2, 4])})
        >>> len(ax.get_lines()), [t.get_text() for t in ax.get_legend().get_texts()]
        (2, ['a', 'b'])
    """
    if x not in X_AXES:
        raise ValueError(f"x must be one of {', '.join(map(repr, X_AXES))}; got {x!r}")
    if floor is not None and (
        isinstance(floor, bool)
        or not isinstance(floor, (int, float, np.floating))
        or not 0 < floor < math.inf
    ):
        raise ValueError(f"floor must be None or a positive number; got {floor!r}")
    pairs = [
        (name, as_trace(run, f"runs[{name!r}]" if name else "runs")) for name, run in _runs(runs)
    ]
    ax = _axes(ax)
    positive = True
    for i, (name, tr) in enumerate(pairs):
        xs = getattr(tr, x).astype(np.float64)
        ys = tr.fun
        keep = ~np.isnan(ys)
        xs, ys = xs[keep], ys[keep]
        if running_min and len(ys):
            ys = np.minimum.accumulate(ys)
        if f_min is not None:
            ys = np.maximum(ys - f_min, GAP_FLOOR)
        if floor is not None:
            ys = np.maximum(ys, floor)
        finite = ys[np.isfinite(ys)]
        positive = positive and bool(np.all(finite > 0))
        ax.plot(xs, ys, label=name or tr.label, **_look(i, len(ys)))
    if positive:
        ax.set_yscale("log")
        if floor is not None:
            ax.set_ylim(bottom=floor)
    ax.set_xlabel(X_AXES[x])
    what = "objective" if f_min is None else "objective - f_min"
    ax.set_ylabel(f"best {what} so far" if running_min else what)
    if len(pairs) > 1 or pairs[0][0] is not None:
        ax.legend()
    if title:
        ax.set_title(title)
    return ax


def _path(run: Any, what: str) -> np.ndarray:
    """The run's points as an (n, 2) float64 array of (x, y)."""
    if isinstance(run, Sequence) and not isinstance(run, str):
        rows = list(run)
    else:
        tr = as_trace(run, what)
        if tr.x is None:
            raise ValueError(
                f"{what} has no points: run minimize(..., trace='x') (compare keeps them for "
                "small problems)"
            )
        rows = tr.x
    out = np.empty((len(rows), 2))
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping) or "x" not in row or "y" not in row:
            raise TypeError(
                f"{what}: point {i} is a {type_name(row)}; expected a dict with 'x', 'y'"
            )
        out[i] = (
            float64_array(row["x"], f"{what}[{i}]['x']"),
            float64_array(row["y"], f"{what}[{i}]['y']"),
        )
    return out


def paths(
    test_function: Any,
    runs: Any,
    *,
    ax: Any = None,
    levels: int = 30,
    resolution: int = 200,
    log_levels: bool | None = None,
    cmap: Any = "viridis",
) -> Any:
    """Draw a 2-D test function's contours over its domain and each run's path on them.

    Args:
        test_function: a :class:`~dict_minimize.testfunctions.TestFunction` (its ``domain``,
            ``minima``, marked with stars, and ``infimum_at``, marked with crosses).
        runs: a Trace kept with ``trace="x"``, a result with one, a list of point dicts
            ``{"x": ..., "y": ...}``, or a dict of name -> any of those.
        ax: the Axes to draw on (default: a new figure's).
        levels: the number of contour levels.
        resolution: grid points per axis.
        log_levels: log-spaced levels (whole decades on the colour bar); None: when the
            function is positive over the grid and spans more than two decades.
        cmap: the contours' colormap (a name or a matplotlib ``Colormap``).

    Returns:
        The Axes, with a colour bar labelled ``f(x, y)``. Each path has the colour, line style
        and marker of :func:`convergence`'s run at its place, starts with a circle and ends
        with a square (both in the legend, placed where the paths leave room), and the axes'
        limits stay the domain.

    Example:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from dict_minimize import plot
        >>> from dict_minimize.testfunctions import booth
        >>> ax = plot.paths(booth(), {"by hand": [{"x": 0.0, "y": 0.0}, {"x": 1.0, "y": 3.0}]})
        >>> tuple(float(v) for v in ax.get_xlim())
        (-10.0, 10.0)
    """
    (x_lo, x_hi), (y_lo, y_hi) = test_function.domain
    ax = _axes(ax)
    gx, gy = np.meshgrid(np.linspace(x_lo, x_hi, resolution), np.linspace(y_lo, y_hi, resolution))
    with np.errstate(all="ignore"):
        z = np.ma.masked_invalid(np.asarray(test_function(gx, gy), dtype=np.float64))
    lo, hi = float(z.min()), float(z.max())
    if log_levels is None:
        log_levels = lo > 0 and hi / lo > 100
    if log_levels:
        import matplotlib.colors
        import matplotlib.ticker

        # levels on whole decades (a few per decade), so the colour bar reads 10^k
        d_lo, d_hi = math.floor(math.log10(max(lo, 1e-300))), math.ceil(math.log10(hi))
        decades = max(d_hi - d_lo, 1)
        per = max(1, round(levels / decades))
        lv = np.logspace(d_lo, d_hi, decades * per + 1)
        cs = ax.contourf(gx, gy, z, levels=lv, norm=matplotlib.colors.LogNorm(), cmap=cmap)
        step = max(1, math.ceil(decades / 10))  # at most ~10 labelled decades
        bar = ax.figure.colorbar(
            cs,
            ax=ax,
            ticks=10.0 ** np.arange(d_lo, d_hi + 1, step),
            format=matplotlib.ticker.LogFormatterSciNotation(),
        )
        bar.minorticks_off()
        bar.set_label("f(x, y), log scale")
    else:
        import matplotlib.ticker

        # round-number levels (MaxNLocator), so that the colour bar's ticks are round too
        lv = np.asarray(matplotlib.ticker.MaxNLocator(nbins=levels).tick_values(lo, hi))
        cs = ax.contourf(gx, gy, z, levels=lv, cmap=cmap)
        bar = ax.figure.colorbar(cs, ax=ax, ticks=matplotlib.ticker.MaxNLocator(nbins=8))
        bar.set_label("f(x, y)")
    started = False
    for i, (name, run) in enumerate(_runs(runs)):
        what = f"runs[{name!r}]" if name else "runs"
        pts = _path(run, what)
        label = name or getattr(run, "label", None)
        look = _look(i, len(pts))
        (line,) = ax.plot(pts[:, 0], pts[:, 1], lw=1.4, label=label, **look)
        if len(pts):
            started = True
            ax.plot(*pts[0], "o", color=line.get_color(), mec="black", mew=0.8, ms=7)
            ax.plot(*pts[-1], "s", color=line.get_color(), mec="black", mew=0.8, ms=7)
    if started:  # legend entries for the start and end markers (drawn nowhere)
        ax.plot([], [], "o", color="white", mec="black", mew=0.8, ms=7, label="start")
        ax.plot([], [], "s", color="white", mec="black", mew=0.8, ms=7, label="end")
    for i, m in enumerate(test_function.minima):
        ax.plot(m["x"], m["y"], "*", color="red", ms=12, mec="white",
                label="minimum" if i == 0 else None)  # fmt: skip
    for i, m in enumerate(getattr(test_function, "infimum_at", ())):
        ax.plot(m["x"], m["y"], "X", color="red", ms=10, mec="white",
                label="infimum (not attained)" if i == 0 else None)  # fmt: skip
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo, y_hi)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(test_function.name)
    if ax.get_legend_handles_labels()[1]:
        ax.legend(loc="best", fontsize="small", framealpha=0.9)
    return ax


class _Live:
    """A callback that keeps rows and redraws a convergence plot every ``every`` calls."""

    def __init__(self, every: int, x: str, f_min: float | None, ax: Any) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive int; got {every!r}")
        if x not in X_AXES:
            raise ValueError(f"x must be one of {', '.join(map(repr, X_AXES))}; got {x!r}")
        self.every, self.x, self.f_min = every, x, f_min
        self.ax = _axes(ax)
        self.trace = Trace(label="live")
        self.redraws = 0
        self._handle: Any = None
        self._calls = 0

    def __call__(self, intermediate_result: Any) -> None:
        self._calls += 1
        get = intermediate_result.get if isinstance(intermediate_result, Mapping) else None

        def field(name: str, default: Any) -> Any:
            value = get(name) if get else getattr(intermediate_result, name, None)
            return default if value is None else value

        fun = field("fun", math.nan)
        self.trace.append(
            float(fun),
            nfev=int(field("nfev", self._calls)),
            njev=int(field("njev", 0)),
            nit=int(field("nit", self._calls)),
            time=float(field("time", math.nan)),
        )
        if self._calls % self.every == 0:
            self.redraw()

    def redraw(self) -> None:
        """Draw the rows so far (and update the notebook's output in place)."""
        self.ax.clear()
        x = "nit" if self.x == "time" else self.x
        convergence(self.trace, x=x, f_min=self.f_min, ax=self.ax)
        self.redraws += 1
        self.ax.figure.canvas.draw_idle()
        try:  # in a notebook: replace the figure shown below the cell
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None or not hasattr(get_ipython(), "kernel"):
            return
        if self._handle is None:
            self._handle = display(self.ax.figure, display_id=True)
        else:
            self._handle.update(self.ax.figure)


def live(every: int = 10, *, x: str = "nit", f_min: float | None = None, ax: Any = None) -> Any:
    """A callback for ``minimize(..., callback=live())`` that redraws a convergence plot.

    It keeps (``nit``, ``fun``, ``nfev``, ``njev``) from each ``intermediate_result`` in
    ``.trace`` and redraws on ``.ax`` every ``every`` iterations; in a Jupyter notebook the
    figure below the cell is updated in place. Nothing else depends on it.

    Example:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from dict_minimize import minimize, plot
        >>> from dict_minimize.testfunctions import rosenbrock
        >>> fn = rosenbrock()
        >>> view = plot.live(every=5)
        >>> res = minimize(fn.objective("numpy"), fn.x0("numpy"), callback=view)
        >>> len(view.trace) == res.nit, view.redraws == res.nit // 5
        (True, True)
    """
    return _Live(every, x, f_min, ax)


__all__ = ["GAP_FLOOR", "X_AXES", "convergence", "live", "paths"]

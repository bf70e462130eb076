"""The demo's second half: L-BFGS-B against Adam and SGD on the same gradient budget.

Rosenbrock's function of two variables (:func:`dict_minimize.testfunctions.rosenbrock`) from its
usual start (-1.2, 1), through :func:`dict_minimize.compare`: SciPy's L-BFGS-B and BFGS, and
``torch.optim.Adam`` / ``torch.optim.SGD`` at a few learning rates when PyTorch is installed
(NumPy and SciPy's methods only otherwise). It prints the comparison table, a row as each run
ends, and, when matplotlib is installed, saves a convergence plot and a plot of the paths over
the function's contours.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dict_minimize._compare.compare import _table_cells, _table_header, compare
from dict_minimize._problem.trace import Trace
from dict_minimize.testfunctions import rosenbrock

#: the target value whose gradient-evaluation count the table reports
TARGET = 1e-6
#: gaps below this are drawn at it in the convergence plot (float64 rounding is near 1e-16)
FLOOR = 1e-16
#: the zoomed panel of the convergence plot: where the first-order runs are (linear scale)
ZOOM = (0.0, 5.0)


def optimizers(framework: str) -> dict[str, Any]:
    """What the demo compares, by name, for x0 in ``framework``."""
    chosen: dict[str, Any] = {"L-BFGS-B": "L-BFGS-B", "BFGS": "BFGS"}
    if framework == "torch":
        import torch

        for lr in (0.01, 0.05, 0.2):
            chosen[f"Adam lr={lr:g}"] = (torch.optim.Adam, {"lr": lr})
        chosen["SGD lr=1e-3"] = (torch.optim.SGD, {"lr": 1e-3})
    return chosen


def _line(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def run(
    budget: int = 200,
    out: Path | None = None,
    *,
    echo: Callable[[str], None] | None = None,
    status: Callable[[str], None] | None = None,
) -> tuple[str, list[Path]]:
    """Run the comparison; return the table and the paths of the figures written to ``out``.

    ``echo`` (``print``, say) gets the heading and the table a line at a time, each row as
    soon as its run has ended; ``status`` gets a note of what runs next (what is loading).
    """
    fn = rosenbrock()
    framework = "torch" if importlib.util.find_spec("torch") is not None else "numpy"
    head = (
        f"\nL-BFGS-B against Adam and SGD: {fn.formula} from {fn.start}, at most {budget} "
        f"gradient evaluations each ({framework}); 'to {TARGET:g}' is the gradient evaluations "
        f"until the value first reached it; f_min = {fn.f_min:g}"
    )
    if framework == "numpy":
        head += " (install torch to add Adam and SGD)"
    chosen = optimizers(framework)
    header = _table_header(TARGET, fn.f_min)
    # fixed widths, so that rows print as they come: the longest name, numbers like 2.808e-12
    widths = [max(len(h), 9) for h in header]
    widths[0] = max(len(header[0]), *(len(name) for name in chosen))
    lines = [head, _line(header, widths), "  ".join("-" * w for w in widths)]
    if echo is not None:
        for line in lines:
            echo(line)
    traces: dict[str, Trace] = {}
    fun, x0 = fn.objective(framework), fn.x0(framework)
    for name, spec in chosen.items():
        if status is not None:
            status(f"running {name} ...")
        traces[name] = compare(fun, x0, {name: spec}, max_grad_evals=budget)[name]
        cells, _ = _table_cells(name, traces[name], TARGET, fn.f_min)
        lines.append(_line(cells, widths))
        if echo is not None:
            echo(lines[-1])
    figures: list[Path] = []
    if out is not None:
        if status is not None:
            status("drawing the figures (importing matplotlib) ...")
        figures = _figures(fn, traces, Path(out), budget)
    return "\n".join(lines), figures


def _drop_legend(ax: Any) -> None:
    """Remove the Axes' own legend: the figure gets one legend outside the Axes instead."""
    legend = ax.get_legend()
    if legend is not None:
        legend.remove()


def draw_convergence(
    fig: Any, traces: dict, *, f_min: float, budget: int, zoom: tuple[float, float] = ZOOM
) -> None:
    """On ``fig``: (a) every run's best ``f - f_min`` so far on a log axis (floored at
    :data:`FLOOR`), (b) the same on a linear axis over ``zoom``, where the first-order runs
    are; one legend, outside the panels (``fig`` should use ``layout="constrained"``)."""
    from dict_minimize import plot

    left, right = fig.subplots(1, 2, sharex=True)
    for ax in (left, right):
        plot.convergence(traces, x="njev", f_min=f_min, ax=ax, running_min=True, floor=FLOOR)
        _drop_legend(ax)
        ax.grid(True, which="major", alpha=0.3)
        ax.set_xlim(0, budget)
    left.set_ylabel("best f - f_min so far (log scale)")
    left.set_title("(a) all runs")
    right.set_yscale("linear")
    right.set_ylim(*zoom)
    right.set_ylabel("best f - f_min so far")
    right.set_title(f"(b) the same, linear scale, {zoom[0]:g} to {zoom[1]:g}")
    handles, labels = left.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize="small")


def light_greys() -> Any:
    """A colormap of light greys (low values white), over which coloured paths stand out."""
    import matplotlib
    import matplotlib.colors
    import numpy as np

    return matplotlib.colors.ListedColormap(
        matplotlib.colormaps["Greys"](np.linspace(0.0, 0.55, 256))
    )


def draw_paths(fig: Any, fn: Any, traces: dict) -> Any:
    """On ``fig``: the paths over ``fn``'s contours in light greys, the legend outside."""
    from dict_minimize import plot

    ax = fig.subplots()
    plot.paths(fn, traces, ax=ax, cmap=light_greys())
    _drop_legend(ax)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize="small")
    return ax


def _figures(fn: Any, traces: dict, out: Path, budget: int) -> list[Path]:
    if importlib.util.find_spec("matplotlib") is None:
        return []
    from matplotlib.figure import Figure  # no pyplot: no global state, never a window

    out.mkdir(parents=True, exist_ok=True)
    start = f"({fn.start['x']:g}, {fn.start['y']:g})"
    fig = Figure(figsize=(10, 4.2), dpi=150, layout="constrained")
    draw_convergence(fig, traces, f_min=fn.f_min, budget=budget)
    fig.suptitle(f"Rosenbrock from {start}: best value so far per gradient evaluation")
    convergence = out / "convergence.png"
    fig.savefig(convergence)
    fig = Figure(figsize=(8.5, 5.5), dpi=150, layout="constrained")
    ax = draw_paths(fig, fn, traces)
    ax.set_title(f"Rosenbrock from {start}: the paths, {budget} gradient evaluations at most")
    paths = out / "paths.png"
    fig.savefig(paths)
    return [convergence, paths]


__all__ = ["FLOOR", "TARGET", "ZOOM", "draw_convergence", "draw_paths", "optimizers", "run"]

"""The flower from (20, 20): SciPy's L-BFGS-B, BFGS and Newton-CG against Adam and AdamW.

The "flower" (:func:`dict_minimize.testfunctions.flower`) is ``sqrt(x² + y²) + sin(4 atan2(y,
x))``: a cone with four petals. It is the function of the torchopt post ("Fun with torchopt",
RStudio AI blog, 2022), which starts its optimizers at ``(20, 20)``; so does this example, in
PyTorch float64, over the dict ``{"x": 0-d tensor, "y": 0-d tensor}``, value only (gradients
by autograd).

It has **no minimum**: ``f > -1`` wherever it is defined, and the infimum ``-1`` is approached
only along the four valleys ``θ = -π/8 + kπ/2`` as they run into the origin, where ``f`` is
undefined (NaN: the angle has no meaning there, and the cone has no gradient). The gradient's
norm is at least 1 everywhere, so nothing settles: a method ends wherever its steps or its
line search leave it near the origin. "Distance" below is the distance to the origin (the
flower's ``infimum_at``; it has no ``minima``), and ``final - f_min`` the gap to ``-1``.

:func:`dict_minimize.compare` runs, from the same start and on the same budget of
``--budget`` gradient evaluations: L-BFGS-B, BFGS and Newton-CG (``compare`` passes
``jac="autodiff"``, and ``minimize`` then gives Newton-CG exact Hessian-vector products by
autograd; those products are not counted in the budget), and ``torch.optim.Adam`` and
``torch.optim.AdamW`` (its default weight decay 0.01) at the learning rates :data:`LRS`, one
step per gradient evaluation.

Printed: the comparison table (with the gap to ``f_min``), then where each run ended: its
point, value, distance to the origin and the evaluations it used. With ``--out DIR`` (and
matplotlib: ``pip install 'dict_minimize[plot]'``) it saves ``flower_paths.png``: every path
on the contours (:func:`dict_minimize.plot.paths`) beside the gap to ``f_min`` per gradient
evaluation (:func:`dict_minimize.plot.convergence`).

What happened, measured when this was written (defaults: budget 100, learning rates 0.1, 1,
3): L-BFGS-B and BFGS head down the cone into a valley and then along it towards the origin,
the gap to ``-1`` shrinking about geometrically: after the budget, L-BFGS-B is 6e-7 from the
origin (gap 6e-7) and BFGS 8e-9 (gap 2e-8). Given more (``--budget 300``) they stop by
themselves, L-BFGS-B after 136 evaluations ("relative reduction of f" below its tolerance)
and BFGS after 128 ("precision loss"), both within 1e-8 of the origin: close to where ``f``
is undefined, not at a minimum. Newton-CG comes as close as the others after 11 evaluations
(within 3 of the origin) and then crawls, likely because the cone has no curvature along the
radius, so the Hessian it models the steps on is the petals' alone: after 100 gradient
evaluations (and more Hessian-vector products) it is still 0.05 from the origin, with
``f = -0.949``. Adam and AdamW move each
coordinate by about ``lr`` per step: at ``lr = 0.1`` they are still on the slope after 100
steps (Adam near ``(9.8, 10.2)``; AdamW's weight decay, 0.01 per unit of ``lr``, pulls it
further, to ``(8.4, 8.9)``); at ``lr = 3`` they come within 3 of the origin after 7 steps, at
``lr = 1`` after about 20, and then circle around it at a distance of the order of ``lr``
(0.5 to 3.1 at the end, ``f`` between -0.35 and 2.2, the best values seen -0.4 to -0.7): a
fixed step cannot follow a valley that narrows to a point. That is what the flower is for:
nothing here converges to a minimum, because there is none; the quasi-Newton methods' line
searches let their steps shrink with the valley, the first-order methods' fixed learning
rates do not.

Run::

    python examples/flower_paths.py                 # budget 100
    python examples/flower_paths.py --budget 300 --out /tmp/flower
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _shared import available, requires, torch_threads

from dict_minimize import Trace, compare, compare_table
from dict_minimize.testfunctions import TestFunction, flower

with requires(__file__):
    import torch

#: the learning rates of the Adam and AdamW runs
LRS = (0.1, 1.0, 3.0)
#: the SciPy methods, by name
SCIPY_METHODS = ("L-BFGS-B", "BFGS", "Newton-CG")
#: PyTorch's intra-op threads during the runs: the tensors are 0-d, and two threads contending
#: on a busy machine only add overhead
TORCH_THREADS = 1
INSTALL_PLOT = "pip install 'dict_minimize[plot]'"


def optimizers(lrs: Sequence[float] = LRS) -> dict[str, Any]:
    """What the example compares, by name: :data:`SCIPY_METHODS`, then Adam and AdamW at each
    of ``lrs``.

    Example:
        >>> list(optimizers([1.0]))
        ['L-BFGS-B', 'BFGS', 'Newton-CG', 'Adam lr=1', 'AdamW lr=1']
    """
    chosen: dict[str, Any] = {name: name for name in SCIPY_METHODS}
    for cls in (torch.optim.Adam, torch.optim.AdamW):
        for lr in lrs:
            chosen[f"{cls.__name__} lr={lr:g}"] = (cls, {"lr": lr})
    return chosen


def run(budget: int = 100, lrs: Sequence[float] = LRS) -> tuple[TestFunction, dict[str, Trace]]:
    """The flower and every optimizer's trace from its start ``(20, 20)``, points kept.

    Example:
        >>> fn, traces = run(budget=10, lrs=[1.0])
        >>> fn.start, len(traces)
        ({'x': 20.0, 'y': 20.0}, 5)
        >>> all(int(tr.njev[-1]) <= 10 and tr.x is not None for tr in traces.values())
        True
    """
    fn = flower()
    with torch_threads(TORCH_THREADS):
        traces = compare(
            fn.objective("torch"),
            fn.x0("torch", "float64"),
            optimizers(lrs),
            max_grad_evals=budget,
            keep_x=True,
        )
    return fn, traces


def end_point(trace: Trace) -> tuple[float, float]:
    """The last point of a trace kept with its points, as floats.

    Example:
        >>> end_point(Trace(fun=[1.0, 0.5], nfev=[1, 2], x=[{"x": 1, "y": 2}, {"x": 3, "y": 4}]))
        (3.0, 4.0)
    """
    x = trace.x
    if not x:
        raise ValueError("the trace has no points: run compare(..., keep_x=True)")
    return float(x[-1]["x"]), float(x[-1]["y"])


def format_report(fn: TestFunction, traces: dict[str, Trace], budget: int) -> str:
    """The comparison table, then where each run ended."""
    lines = [
        f"flower {fn.formula} (a={fn.params['a']:g}, b={fn.params['b']:g}, "
        f"c={fn.params['c']:g}) from ({fn.start['x']:g}, {fn.start['y']:g}), PyTorch float64; "
        f"no minimum: infimum {fn.f_min:g} at the origin, where f is undefined; at most "
        f"{budget} gradient evaluations per optimizer",
        "",
        compare_table(traces, f_min=fn.f_min),
        "",
    ]
    header = ["optimizer", "ended at (x, y)", "f", "distance to origin", "grad evals", "stopped"]
    rows = []
    for name, tr in traces.items():
        x, y = end_point(tr)
        res = tr.result
        if res is not None:  # a SciPy method: the budget's callback, or SciPy's own stop
            spent = int(res.njev) >= budget or "StopIteration" in str(res.message)
            stopped = "budget" if spent else str(res.message)
        elif not math.isfinite(float(tr.fun[-1])):
            stopped = "not finite"
        else:
            stopped = "budget"
        rows.append(
            [
                name,
                f"({x:.4g}, {y:.4g})",
                f"{float(tr.fun[-1]):.6g}",
                f"{fn.distance({'x': x, 'y': y}):.3g}",
                str(int(tr.njev[-1])),
                stopped,
            ]
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines.append("  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True)).rstrip())
    lines.append("  ".join("-" * w for w in widths))
    for cells in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    return "\n".join(lines)


def save_figure(fn: TestFunction, traces: dict[str, Trace], out: Path) -> Path:
    """Save ``flower_paths.png`` (paths on the contours, and convergence) under ``out``."""
    from matplotlib.figure import Figure

    from dict_minimize import plot

    out.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(14, 6), layout="constrained")
    left, right = fig.subplots(1, 2)
    plot.paths(fn, traces, ax=left)
    left.set_aspect("equal")
    left.legend(loc="lower left", fontsize="small")  # the start (20, 20) is upper right
    plot.convergence(traces, x="njev", f_min=fn.f_min, ax=right, title="gap to the infimum -1")
    fig.suptitle("The flower from (20, 20): paths and f - f_min per gradient evaluation")
    path = out / "flower_paths.png"
    fig.savefig(path, dpi=80)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Run every optimizer, print the report, and save the figure when ``--out`` is given.

    Args:
        argv: the command line (``sys.argv[1:]`` when None): ``--budget`` (gradient
            evaluations per optimizer), ``--lrs`` (Adam's and AdamW's learning rates),
            ``--out`` (a folder for the PNG file).

    Returns:
        int: 0.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=100, help="gradient evaluations each")
    parser.add_argument(
        "--lrs", type=float, nargs="+", default=list(LRS), help="Adam's and AdamW's lr"
    )
    parser.add_argument("--out", type=Path, default=None, help="folder for the PNG figure")
    opts = parser.parse_args(argv)
    if opts.budget < 2:
        parser.error(f"--budget must be at least 2; got {opts.budget}")
    bad = [lr for lr in opts.lrs if not (math.isfinite(lr) and lr > 0)]
    if bad:
        parser.error(f"--lrs must be positive; got {bad[0]:g}")
    fn, traces = run(opts.budget, opts.lrs)
    print(format_report(fn, traces, opts.budget))
    if opts.out is None:
        print("\nfigure: pass --out DIR to save it as a PNG file")
    elif not available("matplotlib"):
        print(f"\nfigure skipped: matplotlib is not installed ({INSTALL_PLOT})")
    else:
        print(f"\nfigure:\n  {save_figure(fn, traces, opts.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

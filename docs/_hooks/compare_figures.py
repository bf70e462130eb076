"""The figures of docs/guide/comparing.md, made by ``dict_minimize.compare`` and ``.plot``.

The docs' figure hook (``docs/_hooks/figures.py``) calls each entry of :data:`FIGURES` and
publishes the PNG bytes it returns as ``figures/<name>``. Both figures run PyTorch float64 on
two-variable test functions: a few seconds in all, most of it importing torch and matplotlib.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

#: gradient evaluations per optimizer in the convergence figure and in the path figure
CONVERGENCE_BUDGET = 200
PATHS_BUDGET = 100


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def rosenbrock_convergence() -> bytes:
    """Best value so far per gradient evaluation on Rosenbrock from (-1.2, 1): L-BFGS-B,
    Adam at three learning rates, SGD."""
    import torch

    from dict_minimize._compare.compare import compare
    from dict_minimize._demo_compare import draw_convergence
    from dict_minimize.testfunctions import rosenbrock

    fn = rosenbrock()
    chosen: dict[str, Any] = {"L-BFGS-B": "L-BFGS-B"}
    for lr in (0.01, 0.1, 1.0):
        chosen[f"Adam lr={lr:g}"] = (torch.optim.Adam, {"lr": lr})
    chosen["SGD lr=1e-3"] = (torch.optim.SGD, {"lr": 1e-3})
    traces = compare(
        fn.objective("torch"), fn.x0("torch"), chosen, max_grad_evals=CONVERGENCE_BUDGET
    )
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, 4.2), dpi=100, layout="constrained")
    draw_convergence(fig, traces, f_min=fn.f_min, budget=CONVERGENCE_BUDGET)
    fig.suptitle(f"Rosenbrock from (-1.2, 1): {CONVERGENCE_BUDGET} gradient evaluations each")
    return _png(fig)


def flower_paths() -> bytes:
    """Paths over the flower from (20, 20): L-BFGS-B, BFGS, Newton-CG, Adam and AdamW."""
    import torch

    from dict_minimize._compare.compare import compare
    from dict_minimize._demo_compare import draw_paths
    from dict_minimize.testfunctions import flower

    fn = flower()
    chosen: dict[str, Any] = {"L-BFGS-B": "L-BFGS-B", "BFGS": "BFGS", "Newton-CG": "Newton-CG"}
    for lr in (0.3, 1.0):
        chosen[f"Adam lr={lr:g}"] = (torch.optim.Adam, {"lr": lr})
        chosen[f"AdamW lr={lr:g}"] = (torch.optim.AdamW, {"lr": lr})
    traces = compare(fn.objective("torch"), fn.x0("torch"), chosen, max_grad_evals=PATHS_BUDGET)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.5, 6.0), dpi=100, layout="constrained")
    ax = draw_paths(fig, fn, traces)
    ax.set_xlim(-8.0, 23.0)  # the start and the origin, where the paths gather
    ax.set_ylim(-8.0, 23.0)
    ax.set_title(f"The flower from (20, 20): {PATHS_BUDGET} gradient evaluations each")
    return _png(fig)


FIGURES: dict[str, Callable[[], bytes]] = {
    "compare_rosenbrock_convergence.png": rosenbrock_convergence,
    "compare_flower_paths.png": flower_paths,
}

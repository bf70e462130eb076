"""The demo's second half: L-BFGS-B against Adam and SGD on the same gradient budget.

Rosenbrock's function of two variables (:func:`dict_minimize.testfunctions.rosenbrock`) from its
usual start (-1.2, 1), through :func:`dict_minimize.compare`: SciPy's L-BFGS-B and BFGS, and
``torch.optim.Adam`` / ``torch.optim.SGD`` at a few learning rates when PyTorch is installed
(NumPy and SciPy's methods only otherwise). It prints the comparison table and, when matplotlib
is installed, saves a convergence plot and a plot of the paths over the function's contours.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from dict_minimize._compare import compare, compare_table
from dict_minimize.testfunctions import rosenbrock

#: the target value whose gradient-evaluation count the table reports
TARGET = 1e-6


def optimizers(framework: str) -> dict[str, Any]:
    """What the demo compares, by name, for x0 in ``framework``."""
    chosen: dict[str, Any] = {"L-BFGS-B": "L-BFGS-B", "BFGS": "BFGS"}
    if framework == "torch":
        import torch

        for lr in (0.01, 0.05, 0.2):
            chosen[f"Adam lr={lr:g}"] = (torch.optim.Adam, {"lr": lr})
        chosen["SGD lr=1e-3"] = (torch.optim.SGD, {"lr": 1e-3})
    return chosen


def run(budget: int = 200, out: Path | None = None) -> tuple[str, list[Path]]:
    """Run the comparison; return the table and the paths of the figures written to ``out``."""
    fn = rosenbrock()
    framework = "torch" if importlib.util.find_spec("torch") is not None else "numpy"
    traces = compare(
        fn.objective(framework), fn.x0(framework), optimizers(framework), max_grad_evals=budget
    )
    table = compare_table(traces, target=TARGET, f_min=fn.f_min)
    head = (
        f"\nL-BFGS-B against Adam and SGD: {fn.formula} from {fn.start}, at most {budget} "
        f"gradient evaluations each ({framework}); 'to {TARGET:g}' is the gradient evaluations "
        "until the value first reached it"
    )
    if framework == "numpy":
        head += " (install torch to add Adam and SGD)"
    figures: list[Path] = []
    if out is not None:
        figures = _figures(fn, traces, Path(out))
    return f"{head}\n{table}", figures


def _figures(fn: Any, traces: dict, out: Path) -> list[Path]:
    if importlib.util.find_spec("matplotlib") is None:
        return []
    import matplotlib

    matplotlib.use("Agg")  # files only: the demo never opens a window
    import matplotlib.pyplot as plt

    from dict_minimize import plot

    out.mkdir(parents=True, exist_ok=True)
    written = []
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    plot.convergence(traces, x="njev", f_min=fn.f_min, ax=ax, running_min=True)
    ax.set_title("Rosenbrock: best value so far per gradient evaluation")
    path = out / "convergence.png"
    fig.savefig(path)
    plt.close(fig)
    written.append(path)
    fig, ax = plt.subplots(figsize=(7, 5.5), dpi=100)
    plot.paths(fn, traces, ax=ax)
    ax.set_title("Rosenbrock: the paths")
    path = out / "paths.png"
    fig.savefig(path)
    plt.close(fig)
    written.append(path)
    return written


__all__ = ["TARGET", "optimizers", "run"]

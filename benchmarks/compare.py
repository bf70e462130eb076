"""L-BFGS-B and BFGS against Adam and SGD at equal gradient budgets, on five test functions.

Every optimizer starts from the test function's usual start point with the same budget of
gradient evaluations (``dict_minimize.compare``), on PyTorch float64 tensors: SciPy's
L-BFGS-B and BFGS (``jac="autodiff"``), ``torch.optim.Adam`` at three learning rates,
``torch.optim.SGD`` and ``torch.optim.LBFGS`` (its defaults, one iteration per step). One
row per optimizer, one column per function: the final gap ``f - f_min`` and, in brackets,
the gradient evaluations until the gap first fell to ``1e-6`` ("-": never).

    python -m benchmarks.compare            # the table of docs/guide/comparing.md (Markdown)
    python -m benchmarks.compare --quick    # a budget of 20: a smoke run of a second or two
    python -m benchmarks.compare --budget 500 --details   # and each run's table and end point

Every count here is an integer from deterministic runs, so the table repeats from machine to
machine up to the last digits of the values; no time is reported (on two-variable problems it
measures only per-step overhead).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from dict_minimize._compare.compare import compare, compare_table
from dict_minimize._problem.trace import Trace
from dict_minimize.testfunctions import ALL

#: the functions of the table, in its column order
PROBLEMS = ("rosenbrock", "beale", "himmelblau", "rastrigin", "flower")
BUDGET = 200
QUICK_BUDGET = 20
ADAM_LRS = (0.01, 0.1, 1.0)
SGD_LR = 1e-3
#: a run "reaches" the minimum when f - f_min first falls to this
GAP = 1e-6


def optimizers() -> dict[str, Any]:
    """What the table compares, by name."""
    import torch

    chosen: dict[str, Any] = {"L-BFGS-B": "L-BFGS-B", "BFGS": "BFGS"}
    for lr in ADAM_LRS:
        chosen[f"Adam lr={lr:g}"] = (torch.optim.Adam, {"lr": lr})
    chosen[f"SGD lr={SGD_LR:g}"] = (torch.optim.SGD, {"lr": SGD_LR})
    chosen["torch LBFGS"] = torch.optim.LBFGS
    return chosen


def run(budget: int = BUDGET, problems: tuple[str, ...] = PROBLEMS) -> dict[str, dict[str, Trace]]:
    """problem -> optimizer name -> trace."""
    out = {}
    for name in problems:
        fn = ALL[name]
        out[name] = compare(
            fn.objective("torch"), fn.x0("torch"), optimizers(), max_grad_evals=budget
        )
    return out


def cell(trace: Trace, f_min: float) -> str:
    """``gap (evals to GAP)`` for one run."""
    gap = float(trace.fun[-1]) - f_min
    hit = trace.evals_to(f_min + GAP)
    return f"{gap:.3g} ({'-' if hit is None else hit})"


def markdown(results: dict[str, dict[str, Trace]]) -> str:
    """The table: optimizers down, problems across."""
    problems = list(results)
    names = list(next(iter(results.values())))
    lines = [
        "| optimizer | " + " | ".join(problems) + " |",
        "|---|" + "---|" * len(problems),
    ]
    for opt in names:
        cells = [cell(results[p][opt], ALL[p].f_min) for p in problems]
        lines.append(f"| {opt} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def details(results: dict[str, dict[str, Trace]]) -> str:
    """Each problem's :func:`compare_table` and where each run ended."""
    parts = []
    for p, traces in results.items():
        fn = ALL[p]
        parts.append(f"\n{p} from {fn.start}:")
        parts.append(compare_table(traces, target=fn.f_min + GAP, f_min=fn.f_min))
        for opt, tr in traces.items():
            x = tr.x[-1] if tr.x is not None else None
            if x is not None:
                parts.append(f"  {opt:14} ends at ({float(x['x']):.4g}, {float(x['y']):.4g})")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"a budget of {QUICK_BUDGET}")
    parser.add_argument("--budget", type=int, default=None, help=f"default {BUDGET}")
    parser.add_argument("--details", action="store_true", help="per-problem tables, end points")
    opts = parser.parse_args(argv)
    budget = opts.budget or (QUICK_BUDGET if opts.quick else BUDGET)
    results = run(budget)
    print(
        f"f - f_min after {budget} gradient evaluations (in brackets: evaluations until "
        f"f - f_min <= {GAP:g}; -: never)\n"
    )
    print(markdown(results))
    if opts.details:
        print(details(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Callbacks: track the objective with ``callback(intermediate_result)``, stop early with
``StopIteration``, and the original package's ``callback(x_dict)``.

``dict_minimize.minimize`` calls the callback after every iteration, in one of SciPy's two forms:

- ``callback(intermediate_result)`` -- the parameter must have exactly this name -- gets an
  ``OptimizeResult`` whose ``.x`` is the current point as a dict shaped like ``x0`` and whose
  ``.fun`` is the objective there (no extra evaluation);
- ``callback(x_dict)`` -- any other single parameter -- gets the current point as a dict (the
  form the original ``dict_minimize`` used).

Raising ``StopIteration`` in either form ends the run cleanly: ``minimize`` returns the point
where it stopped, with ``success=False`` and the message "`callback` raised `StopIteration`.".

The objective is the Rosenbrock function in ``--size`` dimensions, split over two dict keys, in
NumPy (so this example needs no optional framework). With ``--out DIR`` (and matplotlib:
``pip install 'dict_minimize[plot]'``) it saves ``callbacks.png``: the objective per iteration
as the callback of part 1 recorded it, and where part 2 stopped.

Run::

    python examples/callbacks.py
    python examples/callbacks.py --size 10 --target 1e-3 --steps 8 --out /tmp/callbacks
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from _shared import INSTALL, available
from scipy.optimize import rosen, rosen_der

from dict_minimize import OptimizeResult, minimize


def objective(d: dict[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray]]:
    """Rosenbrock over the concatenation of d["head"] and d["tail"], with its gradient dict."""
    x = np.concatenate([d["head"], d["tail"]])
    g = rosen_der(x)
    n_head = d["head"].size
    return float(rosen(x)), {"head": g[:n_head], "tail": g[n_head:]}


def start(size: int) -> dict[str, np.ndarray]:
    """The classic starting point (-1.2, 1, -1.2, 1, ...), split into two keys."""
    x = np.where(np.arange(size) % 2 == 0, -1.2, 1.0)
    return {"head": x[: size // 2], "tail": x[size // 2 :]}


def track_objective(size: int = 6) -> tuple[OptimizeResult, list[float]]:
    """Run to convergence, recording the objective after every iteration."""
    history: list[float] = []

    def callback(intermediate_result: OptimizeResult) -> None:
        history.append(intermediate_result.fun)

    res = minimize(objective, start(size), method="L-BFGS-B", callback=callback)
    return res, history


def stop_at_target(size: int = 6, target: float = 1e-2) -> tuple[OptimizeResult, list[float]]:
    """Stop as soon as the objective drops below ``target``."""
    history: list[float] = []

    def callback(intermediate_result: OptimizeResult) -> None:
        history.append(intermediate_result.fun)
        if intermediate_result.fun < target:
            raise StopIteration

    res = minimize(objective, start(size), method="L-BFGS-B", callback=callback)
    return res, history


def record_path(size: int = 6, max_steps: int = 10) -> tuple[OptimizeResult, list[np.ndarray]]:
    """The original's ``callback(x_dict)``: record the path and stop after ``max_steps``."""
    path: list[np.ndarray] = []

    def callback(x_dict: dict[str, np.ndarray]) -> None:
        path.append(np.concatenate([x_dict["head"], x_dict["tail"]]))
        if len(path) >= max_steps:
            raise StopIteration

    res = minimize(objective, start(size), method="L-BFGS-B", callback=callback)
    return res, path


def save_figure(history: list[float], stopped: list[float], target: float, out: Path) -> Path:
    """Save ``callbacks.png`` (the tracked objective, and the early stop) under ``out``."""
    from matplotlib.figure import Figure

    out.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(6, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.semilogy(range(1, len(history) + 1), history, ".-", label="callback(intermediate_result)")
    ax.axhline(target, color="grey", ls=":", label=f"target {target:g}")
    ax.plot([len(stopped)], [stopped[-1]], "o", color="C3", label="StopIteration")
    ax.set(xlabel="iteration", ylabel="objective", title="L-BFGS-B on Rosenbrock")
    ax.legend()
    path = out / "callbacks.png"
    fig.savefig(path, dpi=80)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=6, help="Rosenbrock dimensions (>= 2)")
    parser.add_argument("--target", type=float, default=1e-2, help="stop below this objective")
    parser.add_argument("--steps", type=int, default=5, help="iterations recorded in part 3")
    parser.add_argument("--out", type=Path, default=None, help="folder for the PNG figure")
    args = parser.parse_args(argv)
    if args.size < 2:
        parser.error("--size must be at least 2")
    if args.steps < 1:
        parser.error("--steps must be at least 1")

    res, tracked = track_objective(args.size)
    print(f"1. tracking: {res.message} after {res.nit} iterations, fun = {res.fun:.3e}")
    every = max(1, len(tracked) // 8)
    for i in range(0, len(tracked), every):
        print(f"   iteration {i + 1:4d}: fun = {tracked[i]:.6e}")
    ok = res.success and len(tracked) == res.nit

    res, stopped = stop_at_target(args.size, args.target)
    print(
        f"2. early stop at fun < {args.target:g}: {res.message} success={res.success}, "
        f"{res.nit} iterations, fun = {res.fun:.3e}"
    )
    ok = ok and not res.success and res.fun < args.target and res.fun == stopped[-1]

    res, path = record_path(args.size, args.steps)
    print(
        f"3. callback(x_dict), at most {args.steps} iterations: {res.message} "
        f"success={res.success}; path of the first two coordinates:"
    )
    for i, point in enumerate(path, start=1):
        print(f"   iteration {i:4d}: x[:2] = {point[:2].round(4)}")
    final = np.concatenate([res.x["head"], res.x["tail"]])
    ok = ok and np.array_equal(final, path[-1])
    if args.out is None:
        print("\nfigure: pass --out DIR to save it as a PNG file")
    elif not available("matplotlib"):
        print(f"\nfigure skipped: matplotlib is not installed ({INSTALL['matplotlib']})")
    else:
        print(f"\nfigure:\n  {save_figure(tracked, stopped, args.target, args.out)}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

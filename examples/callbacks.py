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
NumPy (so this example needs no optional framework).

Run::

    python examples/callbacks.py
    python examples/callbacks.py --size 10 --target 1e-3 --steps 8
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=6, help="Rosenbrock dimensions (>= 2)")
    parser.add_argument("--target", type=float, default=1e-2, help="stop below this objective")
    parser.add_argument("--steps", type=int, default=5, help="iterations recorded in part 3")
    args = parser.parse_args(argv)
    if args.size < 2:
        parser.error("--size must be at least 2")
    if args.steps < 1:
        parser.error("--steps must be at least 1")

    res, history = track_objective(args.size)
    print(f"1. tracking: {res.message} after {res.nit} iterations, fun = {res.fun:.3e}")
    every = max(1, len(history) // 8)
    for i in range(0, len(history), every):
        print(f"   iteration {i + 1:4d}: fun = {history[i]:.6e}")
    ok = res.success and len(history) == res.nit

    res, history = stop_at_target(args.size, args.target)
    print(
        f"2. early stop at fun < {args.target:g}: {res.message} success={res.success}, "
        f"{res.nit} iterations, fun = {res.fun:.3e}"
    )
    ok = ok and not res.success and res.fun < args.target and res.fun == history[-1]

    res, path = record_path(args.size, args.steps)
    print(
        f"3. callback(x_dict), at most {args.steps} iterations: {res.message} "
        f"success={res.success}; path of the first two coordinates:"
    )
    for i, point in enumerate(path, start=1):
        print(f"   iteration {i:4d}: x[:2] = {point[:2].round(4)}")
    final = np.concatenate([res.x["head"], res.x["tail"]])
    ok = ok and np.array_equal(final, path[-1])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Non-finite objectives: plain SciPy on the flat problem against dict_minimize, every method.

Each problem of :data:`PROBLEMS` is NaN (or +inf) outside its domain and has its minimum
inside. For every gradient method of ``scipy.optimize.minimize`` the script runs

- plain SciPy on the flat float64 vector, with value, gradient and Hessian from PyTorch
  (NaN where the objective is undefined, exactly what the user's function returns), and
- ``dict_minimize.minimize`` on the same function over a dict, ``jac="autodiff"``,

and prints one row per (problem, method): the optimum ``f*``, each side's final ``f``, its
``success`` flag and whether that flag is honest (``success`` only where the final point is
stationary: projected gradient ``<= 1e-4`` or ``f - f* <= 1e-6 (1 + |f*|)``).

    python -m benchmarks.nonfinite             # the table, as Markdown
    python -m benchmarks.nonfinite --check     # exit 1 if ours is worse or dishonest anywhere

The docs' table (docs/guide/failure-modes.md) comes from this script.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import torch

from dict_minimize import minimize
from dict_minimize._solvers.minimize_steps import GRADIENT_FREE, METHODS, TAKES_HESS

F64 = torch.float64
#: every method of scipy.optimize.minimize that uses a gradient (SciPy takes lower case)
GRADIENT_METHODS = tuple(m for m in METHODS if m not in GRADIENT_FREE)
SECOND_ORDER = TAKES_HESS


@dataclass(frozen=True)
class Problem:
    """An objective over a flat torch vector, its start and its known optimum."""

    name: str
    fun: Callable[[torch.Tensor], torch.Tensor]
    x0: tuple[float, ...]
    f_star: float


def _log_barrier(x: torch.Tensor) -> torch.Tensor:
    # sum(c x - log x): minimum at x = 1/c, NaN for x < 0
    c = torch.tensor([1.0, 2.0, 4.0], dtype=F64)
    return (c * x - torch.log(x)).sum()


def _sqrt_edge(x: torch.Tensor) -> torch.Tensor:
    # pulled towards (2, 2), pushed back by -sqrt(4 - x0 - x1); NaN once x0 + x1 > 4
    return ((x - 2.0) ** 2).sum() - torch.sqrt(4.0 - x.sum())


def _nan_half_space(x: torch.Tensor) -> torch.Tensor:
    # a stretched quadratic with minimum (1, 1); undefined (NaN) where x0 > 1.5
    f = (x[0] - 1.0) ** 2 + 10.0 * (x[1] - 1.0) ** 2
    return torch.where(x[0] > 1.5, torch.full_like(f, math.nan), f)


def _inf_half_space(x: torch.Tensor) -> torch.Tensor:
    # the same, but a failing simulator that reports +inf where x1 < 0.5
    f = (x[0] - 1.0) ** 2 + 10.0 * (x[1] - 1.0) ** 2
    return torch.where(x[1] < 0.5, torch.full_like(f, math.inf), f)


def _entropy(x: torch.Tensor) -> torch.Tensor:
    # sum(x log x - c x): minimum at exp(c - 1), NaN for x < 0
    c = torch.tensor([-2.0, 0.0, 0.5], dtype=F64)
    return (x * torch.log(x) - c * x).sum()


def _log_rosen(x: torch.Tensor) -> torch.Tensor:
    # Rosenbrock plus a log barrier on x1 > 0: minimum near (1, 1), NaN for x1 < 0
    rosen = 100.0 * (x[1] - x[0] ** 2) ** 2 + (1.0 - x[0]) ** 2
    return rosen - 0.01 * torch.log(x[1])


def _f_star(fun: Callable[[torch.Tensor], torch.Tensor], x_star: list[float]) -> float:
    return float(fun(torch.tensor(x_star, dtype=F64)))


PROBLEMS = (
    Problem("log barrier", _log_barrier, (5.0, 8.0, 3.0), 3.0 + math.log(8.0)),
    Problem("sqrt edge", _sqrt_edge, (0.0, 0.0), math.nan),
    Problem("NaN half-space", _nan_half_space, (-3.0, -2.0), 0.0),
    Problem("inf half-space", _inf_half_space, (-3.0, 3.0), 0.0),
    Problem("entropy", _entropy, (1.0, 1.0, 1.0), math.nan),
    Problem("log Rosenbrock", _log_rosen, (-1.2, 1.0), math.nan),
)


def _reference_f_star(p: Problem) -> float:
    """f* from the problem, or computed where it has no closed form."""
    if not math.isnan(p.f_star):
        return p.f_star
    if p.name == "entropy":
        return _f_star(p.fun, [math.exp(c - 1.0) for c in (-2.0, 0.0, 0.5)])
    if p.name == "sqrt edge":
        # symmetric minimum x0 = x1 = t: 4 (t - 2) + 1 / sqrt(4 - 2 t) = 0 on (0, 2)
        t = scipy.optimize.brentq(
            lambda t: 4.0 * (t - 2.0) + 1.0 / math.sqrt(4.0 - 2.0 * t), 0.0, 1.999999
        )
        return _f_star(p.fun, [t, t])
    # log Rosenbrock: L-BFGS-B with bounds that keep x1 > 0, started at the minimum's basin
    vg, _ = _flat(p.fun)
    best = scipy.optimize.minimize(
        vg,
        np.array([1.0, 1.0]),
        jac=True,
        method="L-BFGS-B",
        bounds=[(-5.0, 5.0), (1e-9, 5.0)],
        options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10000},
    )
    return float(best.fun)


def _flat(fun: Callable[[torch.Tensor], torch.Tensor]) -> tuple[Callable, Callable]:
    """(value and gradient, Hessian) on float64 NumPy vectors."""

    def vg(v: np.ndarray) -> tuple[float, np.ndarray]:
        t = torch.tensor(v, dtype=F64, requires_grad=True)
        f = fun(t)
        (g,) = torch.autograd.grad(f, t)
        return float(f), g.numpy()

    def hess(v: np.ndarray) -> np.ndarray:
        return torch.autograd.functional.hessian(fun, torch.tensor(v, dtype=F64)).numpy()

    return vg, hess


def _stationary(p: Problem, x: np.ndarray, f: float, f_star: float) -> bool:
    vg, _ = _flat(p.fun)
    f_true, g = vg(x)
    if not math.isfinite(f_true):
        return False
    return bool(np.max(np.abs(g)) <= 1e-4 or f_true - f_star <= 1e-6 * (1.0 + abs(f_star)))


def run_scipy(p: Problem, method: str) -> scipy.optimize.OptimizeResult:
    vg, hess = _flat(p.fun)
    kwargs = {"hess": hess} if method in SECOND_ORDER else {}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            return scipy.optimize.minimize(vg, np.array(p.x0), jac=True, method=method, **kwargs)
        except Exception as exc:  # a crash is a row of the table
            return scipy.optimize.OptimizeResult(
                x=np.array(p.x0), fun=math.nan, success=False, message=repr(exc)
            )


def run_ours(p: Problem, method: str) -> scipy.optimize.OptimizeResult:
    kwargs = {"hess": "autodiff"} if method in SECOND_ORDER else {}
    x0 = {"x": torch.tensor(p.x0, dtype=F64)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = minimize(lambda d: p.fun(d["x"]), x0, jac="autodiff", method=method, **kwargs)
    return scipy.optimize.OptimizeResult(
        x=res.x["x"].detach().numpy(),
        fun=float(res.fun),
        success=bool(res.success),
        message=str(res.message),
    )


def _fmt(f: float, f_star: float) -> str:
    if not math.isfinite(f):
        return str(f)
    gap = f - f_star
    return f"{f:.6g}" if abs(gap) > 1e-6 * (1 + abs(f_star)) else f"{f:.6g} ✓"


def table(check: bool) -> int:
    rows = [
        "| problem | method | f* | SciPy f | SciPy success | ours f | ours success "
        "| message (ours) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    bad = []
    for p in PROBLEMS:
        f_star = _reference_f_star(p)
        for method in GRADIENT_METHODS:
            ref, ours = run_scipy(p, method), run_ours(p, method)
            ref_f = float(ref.fun) if math.isfinite(float(ref.fun)) else math.inf
            honest_ref = _stationary(p, np.asarray(ref.x), ref_f, f_star)
            honest = _stationary(p, ours.x, ours.fun, f_star)
            tol = 1e-6 * (1.0 + abs(f_star))
            worse = ours.fun > ref_f + tol
            lie = ours.success and not honest
            if worse or lie:
                bad.append((p.name, method, "worse" if worse else "false success"))

            def flag(success: bool, honest_: bool) -> str:
                return f"{success}" + ("" if honest_ or not success else " (false)")

            rows.append(
                f"| {p.name} | {method} | {f_star:.6g} | {_fmt(ref_f, f_star)} | "
                f"{flag(bool(ref.success), honest_ref)} | {_fmt(ours.fun, f_star)} | "
                f"{flag(ours.success, honest)} | {ours.message[:70]} |"
            )
    print("\n".join(rows))
    if bad:
        print("\nours worse than SciPy or a false success:", *bad, sep="\n  ")
    return 1 if check and bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 on a worse or false row")
    return table(parser.parse_args(argv).check)


if __name__ == "__main__":
    sys.exit(main())

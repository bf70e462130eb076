"""The bridge's own CPU cost per problem per iteration (``python -m benchmarks.batched``
stores it as ``bridge_cpu_s_per_problem_iteration``): every batched driver on the NumPy
Hartmann-6 multistart, with the time inside the objective taken out."""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from benchmarks.batched import H_A, H_ALPHA, H_P, have_botorch
from dict_minimize import minimize_batched
from dict_minimize._solvers.lbfgsb_batch import lbfgsb_batched
from dict_minimize._threads import limit_blas_threads


def hartmann_numpy(idx: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hartmann-6 and its gradient on the rows of ``x`` (k, 6), by hand in NumPy."""
    d = x[:, None, :] - H_P
    e = np.exp(-(H_A * d * d).sum(-1)) * H_ALPHA
    return -e.sum(-1), (2 * H_A * d * e[:, :, None]).sum(1)


def bridge_cpu(b: int = 1_000, rounds: int = 3, singles: int = 200) -> dict[str, float]:
    """The bridge's CPU time per problem-iteration (process time, so the machine's load counts
    less than in wall time) on the NumPy Hartmann-6 multistart: the lean driver, BoTorch's
    driver, and SciPy's own wrapper (``scipy.optimize.minimize`` on ``singles`` problems)."""
    import scipy.optimize

    spent = [0.0]

    def timed(idx: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        start = time.process_time()
        out = hartmann_numpy(idx, x)
        spent[0] += time.process_time() - start
        return out

    x0 = np.random.default_rng(1).uniform(0.0, 1.0, (b, 6))
    lo, hi = np.zeros((b, 6)), np.ones((b, 6))

    def lean_run() -> list[Any]:
        return lbfgsb_batched(timed, x0, lo, hi, {})

    def ours_run() -> list[Any]:  # the whole of minimize_batched, on the NumPy batched function
        def fun(x: dict, idx: Any) -> tuple[np.ndarray, dict]:
            f, g = timed(idx, x["v"])
            return f, {"v": g}

        return minimize_batched(
            fun, {"v": x0}, jac=True, vectorized=True, lb_dict={"v": lo}, ub_dict={"v": hi}
        ).results

    def botorch_run() -> list[Any]:
        from botorch.optim.batched_lbfgs_b import fmin_l_bfgs_b_batched

        bounds = [(0.0, 1.0)] * 6
        return fmin_l_bfgs_b_batched(
            lambda x, batch_indices: timed(None, x), x0, bounds=bounds, pass_batch_indices=True
        )[2]

    def scipy_run() -> list[Any]:
        box = scipy.optimize.Bounds(np.zeros(6), np.ones(6))

        def one(x: np.ndarray) -> tuple[Any, np.ndarray]:
            f, g = timed(None, x[None])
            return f[0], g[0]

        return [
            scipy.optimize.minimize(one, x, jac=True, method="L-BFGS-B", bounds=box)
            for x in x0[:singles]
        ]

    runs = {"minimize_batched": ours_run, "lean driver": lean_run,
            "scipy.optimize.minimize": scipy_run}
    if have_botorch():
        runs["botorch"] = botorch_run
    out: dict[str, list[float]] = {k: [] for k in runs}
    with limit_blas_threads(1):
        for _ in range(rounds):
            for name, fn in runs.items():
                spent[0] = 0.0
                start = time.process_time()
                res = fn()
                total = time.process_time() - start
                iterations = sum(int(r["nit"]) for r in res)
                out[name].append((total - spent[0]) / iterations)
    return {k: statistics.median(v) for k, v in out.items()}

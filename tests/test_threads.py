"""Concurrent calls: ``minimize`` keeps no global state, so threads get the sequential answers.

Eight problems, each with its own target, dtypes, method and API (generic or drop-in), are solved
one after the other, then all at once from eight threads (several rounds, started together by a
barrier). Every thread must reproduce its sequential result bit for bit: solution, objective,
counts, message and the values its callback saw.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from dict_minimize import minimize
from tests.conftest import INSTALLED, Framework, flat_objective, get_framework

THREADS = 8
ROUNDS = 3
#: (method, bounded): one per problem; every method runs its own SciPy code path
METHODS = [
    ("L-BFGS-B", True),
    ("BFGS", False),
    ("Nelder-Mead", False),
    ("TNC", True),
    ("SLSQP", True),
    ("CG", False),
    ("trust-constr", True),
    ("Powell", False),
]


def target(i: int) -> dict[str, np.ndarray]:
    return {"a": np.linspace(-1.0, 1.0, 3) + 0.25 * i, "b": np.full((2, 2), 0.5 - 0.125 * i)}


def coupled(t: np.ndarray) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """A smooth objective with its minimum near ``t``, coupling neighbouring elements."""

    def f(x: np.ndarray) -> tuple[float, np.ndarray]:
        r = x - t
        c = x[1:] - x[:-1]
        value = float(r @ r + 0.1 * (c @ c))
        grad = 2 * r
        grad[1:] += 0.2 * c
        grad[:-1] -= 0.2 * c
        return value, grad

    return f


def reduce_sum(fw: Framework) -> Callable[[Any], Any]:
    """The framework's sum of all elements (for value-only objectives)."""
    if fw.name == "torch":
        import torch

        return torch.sum
    if fw.name == "jax":
        import jax.numpy as jnp

        return jnp.sum
    if fw.name == "tensorflow":
        import tensorflow as tf

        return tf.reduce_sum
    return np.sum


def autodiff_missing(fw: Framework) -> str | None:
    """Why ``jac='autodiff'`` cannot run in ``fw`` (None when it can)."""
    if fw.name == "numpy":
        return "NumPy has no automatic differentiation"
    try:
        minimize(lambda d: reduce_sum(fw)(d["x"] ** 2), {"x": fw.tensor([1.0])}, jac="autodiff")
    except ValueError as exc:
        if "jac must be" in str(exc):
            return f"jac='autodiff' is not implemented yet: {exc}"
        raise
    return None


def job(fw: Framework, i: int, autodiff: bool) -> Callable[[], tuple]:
    """Solve problem ``i``; returns everything that must not depend on other threads."""
    t = target(i)
    dtype = "float32" if i % 4 == 3 else "float64"
    b_dtype = dtype if autodiff else "float64"  # TensorFlow adds no float32 to a float64
    x0 = {"a": fw.tensor(np.zeros(3), dtype), "b": fw.tensor(np.ones((2, 2)), b_dtype)}
    method, bounded = METHODS[i % len(METHODS)]
    options = {"maxfun": 400} if method == "TNC" else {"maxiter": 200}
    kwargs: dict[str, Any] = {"method": method, "options": options}
    if bounded:
        kwargs["lb_dict"] = {"a": -0.5 + 0.1 * i}
        kwargs["ub_dict"] = {"b": 0.25}
    if autodiff:
        ta, tb = fw.tensor(t["a"], dtype), fw.tensor(t["b"], b_dtype)
        total = reduce_sum(fw)

        def fun(d: Any) -> Any:
            return total((d["a"] - ta) ** 2) + total((d["b"] - tb) ** 2)

    else:
        fun = flat_objective(fw, coupled(np.concatenate([t["a"], t["b"].ravel()])))
    dropin = i % 2 == 1 and not autodiff

    def solve() -> tuple:
        seen: list[float] = []

        def callback(intermediate_result: Any) -> None:
            seen.append(intermediate_result.fun)

        if dropin:
            api = importlib.import_module(f"dict_minimize.{fw.name}_api")
            x = api.minimize(fun, x0, callback=callback, **kwargs)
            counts: tuple = ()
        else:
            extra: dict[str, Any] = {"jac": "autodiff"} if autodiff else {}
            res = minimize(fun, x0, callback=callback, **kwargs, **extra)
            x = res.x
            counts = (res.fun, res.nit, res.nfev, res.njev, res.status, res.message)
        values = tuple((k, fw.dtype_name(v), fw.to_numpy(v).tobytes()) for k, v in x.items())
        return values, counts, tuple(seen)

    return solve


def run_concurrently(jobs: list[tuple[Framework, Callable[[], tuple]]]) -> list[list[tuple]]:
    """Each job ROUNDS times in its own thread, all threads started together."""
    barrier = threading.Barrier(len(jobs))

    def work(fw_job: tuple[Framework, Callable[[], tuple]]) -> list[tuple]:
        fw, solve = fw_job
        with fw.x64():  # JAX's x64 switch is per thread
            barrier.wait(timeout=600)
            return [solve() for _ in range(ROUNDS)]

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(work, jobs))


@pytest.mark.parametrize("autodiff", [False, True], ids=["jac=True", "jac=autodiff"])
def test_threads_match_sequential(fw: Framework, autodiff: bool) -> None:
    if autodiff and (reason := autodiff_missing(fw)):
        pytest.skip(reason)
    jobs = [job(fw, i, autodiff) for i in range(THREADS)]
    sequential = [solve() for solve in jobs]
    assert len({s[0] for s in sequential}) == THREADS  # the problems really differ
    concurrent = run_concurrently([(fw, solve) for solve in jobs])
    for i, rounds in enumerate(concurrent):
        for r in rounds:
            assert r == sequential[i], f"problem {i} ({METHODS[i][0]}) differs in a thread"


def test_threads_across_frameworks() -> None:
    """Every installed framework at once: the backends share nothing between calls."""
    frameworks = [get_framework(name) for name in INSTALLED]
    jobs = []
    for i in range(THREADS):
        fw = frameworks[i % len(frameworks)]
        with fw.x64():
            jobs.append((fw, job(fw, i, autodiff=False)))
    sequential = []
    for fw, solve in jobs:
        with fw.x64():
            sequential.append(solve())
    concurrent = run_concurrently(jobs)
    for i, rounds in enumerate(concurrent):
        for r in rounds:
            assert r == sequential[i], f"problem {i} ({jobs[i][0].name}) differs in a thread"

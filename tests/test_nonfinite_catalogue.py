"""Objectives that are NaN or +inf outside their domain never end in a false "success".

The catalogue (``benchmarks/nonfinite.py``: a log barrier, ``sqrt`` of a quantity that goes
negative, NaN on a half-space, +inf on a half-space, an entropy, Rosenbrock with a log barrier)
runs through every gradient method of ``scipy.optimize.minimize``, plain SciPy on the flat
problem beside us, on this machine: each row must end at least as well as SciPy's, and
``success=True`` only at a stationary point (or at the known minimum).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
import scipy.optimize

from benchmarks import nonfinite as N
from dict_minimize import minimize
from dict_minimize._problem.objective import Objective
from dict_minimize._structure.layout import make_layout
from dict_minimize.backends import get_backend
from tests.conftest import Framework, flat_objective

pytest.importorskip("torch")


@pytest.mark.parametrize("method", N.GRADIENT_METHODS)
@pytest.mark.parametrize("problem", N.PROBLEMS, ids=lambda p: p.name.replace(" ", "-"))
def test_at_least_as_good_as_scipy_and_honest(problem: N.Problem, method: str) -> None:
    f_star = N._reference_f_star(problem)
    ref, ours = N.run_scipy(problem, method), N.run_ours(problem, method)
    ref_f = float(ref.fun) if math.isfinite(float(ref.fun)) else math.inf
    assert math.isfinite(ours.fun) and np.all(np.isfinite(ours.x))
    assert ours.fun <= ref_f + 1e-6 * (1.0 + abs(f_star)), (ours.message, ref.message)
    if ours.success:
        assert N._stationary(problem, ours.x, ours.fun, f_star), ours.message


def _barrier(x: np.ndarray) -> tuple[float, np.ndarray]:
    """sum(c x - log x), minimum at 1/c; NaN value (finite gradient) where x < 0."""
    c = np.array([1.0, 2.0, 4.0])
    with np.errstate(invalid="ignore"):
        return float(np.sum(c * x - np.log(x))), c - 1.0 / x


@pytest.mark.parametrize("method", ["L-BFGS-B", "TNC", "BFGS", "CG"])
def test_log_barrier_every_framework(fw: Framework, method: str) -> None:
    """The case that used to end in "success" at x = (4.8, 7.6, 2.1): L-BFGS-B given +inf."""
    with fw.x64():
        x0 = {"x": fw.tensor([5.0, 8.0, 3.0])}
        with pytest.warns(RuntimeWarning, match="not finite"):
            res = minimize(flat_objective(fw, _barrier), x0, method=method)
        x = fw.to_numpy(res.x["x"])
    assert res.success and res.nonfinite_count > 0, res.message
    np.testing.assert_allclose(x, [1.0, 0.5, 0.25], rtol=2e-3)
    assert res.fun == pytest.approx(3.0 + math.log(8.0), rel=1e-7)


def _objective(finite_substitute: bool) -> Objective:
    x0 = {"x": np.zeros(2)}
    be = get_backend("numpy")
    layout = make_layout(x0, be)
    codec = be.make_codec(layout)
    return Objective(
        lambda d: (0.0, d),
        (),
        layout,
        codec,
        mode="pair",
        nonfinite="inf",
        finite_substitute=finite_substitute,
    )


def test_what_scipy_sees_at_a_nonfinite_point() -> None:
    """Gradient methods: a finite value above every finite one; gradient-free: +inf."""
    run = _objective(finite_substitute=True)
    assert run._checked(np.zeros(2), 5.0, np.ones(2)) == (5.0, pytest.approx(np.ones(2)))
    run._checked(np.ones(2), -3.0, np.ones(2))
    value, grad = run._checked(np.full(2, 2.0), math.nan, np.array([1.0, math.nan]))
    assert math.isfinite(value) and value > 5.0 and value >= -3.0 + 1e3
    np.testing.assert_array_equal(grad, [1.0, 0.0])
    assert run.is_substitute(value) and not run.is_substitute(5.0) and run.is_substitute(math.inf)
    plain = _objective(finite_substitute=False)
    plain._checked(np.zeros(2), 5.0, None)
    assert plain._checked(np.ones(2), math.inf, None) == math.inf


def test_a_method_that_steps_to_nan_is_stopped_with_the_best_point() -> None:
    """A custom method gets +inf and walks on to NaN: the run ends there, best point kept."""

    def walker(fun: Any, x0: np.ndarray, args: Any = (), **_: Any) -> Any:
        fun(x0)
        fun(x0 + 10.0)  # outside the domain
        fun(np.full_like(x0, np.nan))  # a method that does not back off
        raise AssertionError("not reached")  # pragma: no cover

    def walled(d: dict) -> tuple[float, dict]:
        r = d["x"] - 2.0
        value = float(r @ r) if np.all(d["x"] <= 1.5) else math.nan
        return value, {"x": 2 * r}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = minimize(walled, {"x": np.zeros(2)}, method=walker)
    assert not res.success and res.status == -2 and "best finite point" in res.message
    assert res.fun == 8.0 and res.nonfinite_count == 1
    np.testing.assert_array_equal(res.x["x"], [0.0, 0.0])


def test_final_substitute_is_replaced_by_the_best_point() -> None:
    """SciPy may end on a point that stood in for NaN: the result is the best finite point."""
    calls = 0

    def flaky(d: dict) -> tuple[float, dict]:  # a simulator that fails from its 11th call on
        nonlocal calls
        calls += 1
        x, y = d["xy"]
        value = float(scipy.optimize.rosen(d["xy"]))
        grad = np.array([-400 * x * (y - x**2) - 2 * (1 - x), 200 * (y - x**2)])
        return (value if calls <= 10 else math.nan), {"xy": grad}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = minimize(flaky, {"xy": np.array([-1.2, 1.0])}, method="L-BFGS-B")
    assert not res.success and "best finite point" in res.message
    assert math.isfinite(res.fun) and res.fun < float(scipy.optimize.rosen([-1.2, 1.0]))
    assert res.fun == pytest.approx(float(scipy.optimize.rosen(res.x["xy"])), rel=1e-12)

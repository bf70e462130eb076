"""The lean batched L-BFGS-B driver gives, per problem, exactly what SciPy's minimize gives.

The reference is ``scipy.optimize.minimize(fun_i, x0_i, jac=True, method="L-BFGS-B", ...)`` on
each problem alone, where ``fun_i`` is the same NumPy batched function called on that one row:
every row is computed with elementwise arithmetic and column-by-column sums, so a row's value
does not depend on the rows beside it and every result must agree bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy
import scipy.optimize
from hypothesis import given
from hypothesis import strategies as st

from dict_minimize._solvers import lbfgsb_batch
from dict_minimize._solvers.lbfgsb_batch import fast_path_available, lbfgsb_batched
from dict_minimize._threads import limit_blas_threads
from tests.conftest import exact_lbfgsb_core

from .conftest import derandomized


@pytest.fixture(autouse=True)
def _one_blas_thread() -> Any:
    """SciPy's reference solves on one BLAS thread, as the driver runs (a busy machine's
    OpenBLAS threads make each small solve 100x slower)."""
    with limit_blas_threads(1):
        yield


pytestmark = pytest.mark.skipif(
    not fast_path_available(), reason=f"no batched L-BFGS-B fast path for SciPy {scipy.__version__}"
)


def test_fast_path_available_on_the_checked_releases() -> None:
    major, minor = (int(p) for p in scipy.__version__.split(".")[:2])
    assert fast_path_available() == ((major, minor) in {(1, 17), (1, 18)})


class Rosen:
    """Per-problem shifted Rosenbrock (a_i) with a non-finite wall; records the calls."""

    def __init__(self, a: np.ndarray, wall: float = np.inf):
        self.a = a
        self.wall = wall
        self.calls: list[np.ndarray] = []

    def __call__(self, idx: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.calls.append(idx.copy())
        a = self.a[idx]
        n = x.shape[1]
        f = np.zeros(len(idx))
        g = np.zeros_like(x)
        for j in range(n):  # column by column: a row never depends on the others
            d = a - x[:, j]
            f = f + d * d
            g[:, j] -= 2.0 * d
        for j in range(n - 1):
            r = x[:, j + 1] - x[:, j] * x[:, j]
            f = f + 100.0 * r * r
            g[:, j + 1] += 200.0 * r
            g[:, j] -= 400.0 * r * x[:, j]
        f = np.where(x[:, 0] > self.wall, np.inf, f)
        return f, g

    def single(self, i: int) -> Any:
        def fun(x: np.ndarray) -> tuple[Any, np.ndarray]:
            f, g = self(np.array([i]), x[None, :])
            return f[0], g[0]

        return fun


def reference(
    fun: Rosen,
    x0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    options: dict,
    stop_at: np.ndarray | None = None,
) -> list[Any]:
    out = []
    for i in range(x0.shape[0]):
        unbounded = np.isinf(lower[i]).all() and np.isinf(upper[i]).all()
        bounds = None if unbounded else scipy.optimize.Bounds(lower[i], upper[i])
        callback = None
        if stop_at is not None:
            k = int(stop_at[i])
            seen = [0]

            def callback(intermediate_result: Any, k: int = k, seen: list = seen) -> None:
                seen[0] += 1
                if seen[0] == k:
                    raise StopIteration

        out.append(
            scipy.optimize.minimize(
                fun.single(i), x0[i], jac=True, method="L-BFGS-B", bounds=bounds,
                options=options, callback=callback,
            )
        )
    return out


def assert_same(got: list[Any], want: list[Any]) -> None:
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert list(g) == list(w), i  # the same keys, in the same order
        for key in w:
            a, b = g[key], w[key]
            if key == "hess_inv":
                assert type(a) is type(b)
                # the L-BFGS memory itself, bit for bit; its dense product only to rounding: the
                # BLAS kernel's rounding depends on the arrays' memory layout (Prescott shows it)
                np.testing.assert_allclose(a.todense(), b.todense(), rtol=1e-10, atol=1e-300)
            elif isinstance(b, np.ndarray):
                assert a.dtype == b.dtype and a.shape == b.shape, (i, key)
                # bit for bit on the default BLAS kernel; SciPy's core rounds by the arrays'
                # alignment on others (OPENBLAS_CORETYPE=Prescott: ~1e-16), hence tolerances
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True)
            else:
                assert type(a) is type(b), (i, key, a, b)
                if isinstance(b, float):
                    assert a == pytest.approx(b, rel=1e-10, abs=1e-14, nan_ok=True), (i, key)
                else:
                    assert a == b, (i, key, a, b)


def problems(seed: int, b: int, n: int, bounded: bool) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x0 = rng.normal(size=(b, n)) * 1.5
    a = rng.uniform(-1.5, 1.5, size=b)
    lower = np.full((b, n), -np.inf)
    upper = np.full((b, n), np.inf)
    if bounded:
        kind = rng.integers(0, 4, size=(b, n))  # free, lower only, both, upper only
        lo = rng.uniform(-2.0, 0.5, size=(b, n))
        hi = lo + rng.uniform(0.0, 2.5, size=(b, n))
        lower = np.where((kind == 1) | (kind == 2), lo, -np.inf)
        upper = np.where((kind == 2) | (kind == 3), hi, np.inf)
        lower[0] = -np.inf  # problem 0 stays unbounded (bounds=None in the reference)
        upper[0] = np.inf
    return x0, a, lower, upper


@exact_lbfgsb_core
@pytest.mark.parametrize("bounded", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_equal_to_scipy_minimize(seed: int, bounded: bool) -> None:
    x0, a, lower, upper = problems(seed, 12, 1 + seed % 5, bounded)
    options = [{}, {"maxcor": 3}, {"ftol": 1e-12, "gtol": 1e-9}, {"maxls": 3}][seed % 4]
    fun = Rosen(a)
    got = lbfgsb_batched(fun, x0, lower, upper, options)
    assert_same(got, reference(Rosen(a), x0, lower, upper, options))


@pytest.mark.parametrize(
    "options", [{"maxiter": 4}, {"maxfun": 7}, {"maxiter": 6, "maxfun": 9}, {"maxiter": 1}]
)
def test_maxiter_and_maxfun_stops_as_scipy(options: dict) -> None:
    x0, a, lower, upper = problems(7, 10, 4, bounded=True)
    got = lbfgsb_batched(Rosen(a), x0, lower, upper, options)
    want = reference(Rosen(a), x0, lower, upper, options)
    assert {r.status for r in want} == {1}
    assert_same(got, want)


@exact_lbfgsb_core
def test_a_callback_stop_is_scipys_stop_iteration() -> None:
    x0, a, lower, upper = problems(3, 8, 3, bounded=True)
    stop_at = np.array([1, 2, 3, 5, 10**6, 10**6, 4, 6])
    seen: list[int] = []

    def on_iteration(i: int, x: np.ndarray, f: Any) -> bool:
        seen.append(i)
        assert x.shape == (3,) and x.dtype == np.float64
        return seen.count(i) == stop_at[i]

    for options in ({}, {"maxiter": 4}):
        seen.clear()
        got = lbfgsb_batched(Rosen(a), x0, lower, upper, options, on_iteration=on_iteration)
        want = reference(Rosen(a), x0, lower, upper, options, stop_at=stop_at)
        assert {r.status for r in want} >= {99}
        assert_same(got, want)


@exact_lbfgsb_core
def test_a_stop_flag_stops_at_the_next_iteration() -> None:
    """``stop[i]`` set during the run stops problem i at its next iteration, as a callback
    raising StopIteration there would (on_iteration is not called for it then)."""
    x0, a, lower, upper = problems(3, 8, 3, bounded=True)
    stop_at = np.array([1, 2, 3, 5, 10**6, 10**6, 4, 6])
    stop = np.zeros(8, bool)
    seen: list[int] = []

    def on_iteration(i: int, x: np.ndarray, f: Any) -> bool:
        assert not stop[i]
        seen.append(i)
        stop[i] = seen.count(i) == stop_at[i]
        return False

    got = lbfgsb_batched(Rosen(a), x0, lower, upper, {}, on_iteration=on_iteration, stop=stop)
    want = reference(Rosen(a), x0, lower, upper, {}, stop_at=stop_at + 1)
    assert {r.status for r in want} >= {99}
    assert_same(got, want)
    with pytest.raises(ValueError, match="stop must be a bool array"):
        lbfgsb_batched(Rosen(a), x0, lower, upper, {}, stop=np.zeros(3, bool))


@exact_lbfgsb_core
def test_a_non_finite_wall_as_scipy() -> None:
    x0, a, lower, upper = problems(11, 10, 3, bounded=False)
    x0[:, 0] = np.abs(x0[:, 0]) * 0.2
    x0[3, 0] = 5.0  # infinite at x0
    got = lbfgsb_batched(Rosen(a, wall=0.6), x0, lower, upper, {"maxiter": 50})
    assert_same(got, reference(Rosen(a, wall=0.6), x0, lower, upper, {"maxiter": 50}))


@exact_lbfgsb_core
def test_fixed_variables_and_a_problem_fixed_entirely() -> None:
    x0, a, lower, upper = problems(5, 5, 3, bounded=True)
    lower[1, 1] = upper[1, 1] = 0.25  # one variable fixed: SciPy keeps it (jac given)
    lower[2] = upper[2] = [0.5, -0.5, 1.0]  # all fixed: SciPy's short result
    fun = Rosen(a)
    got = lbfgsb_batched(fun, x0, lower, upper, {})
    assert_same(got, reference(Rosen(a), x0, lower, upper, {}))
    assert got[2].message == "All independent variables were fixed by bounds."
    assert sum(int((c == 2).sum()) for c in fun.calls) == 1


def test_one_call_per_round_and_the_batch_shrinks() -> None:
    x0, a, lower, upper = problems(2, 20, 4, bounded=True)
    fun = Rosen(a)
    got = lbfgsb_batched(fun, x0, lower, upper, {"maxiter": 200})
    nfev = np.array([r.nfev for r in got])
    counts = np.zeros(20, int)
    for idx in fun.calls:
        assert idx.dtype == np.int64 and len(np.unique(idx)) == len(idx)
        counts[idx] += 1
    np.testing.assert_array_equal(counts, nfev)  # never a finished (or cached) problem
    sizes = [len(idx) for idx in fun.calls]
    assert sizes[0] == 20 and sizes[-1] < 20 and len(fun.calls) <= nfev.max() + 1
    # with a cap: the same results, no call above it
    capped = Rosen(a)
    assert_same(lbfgsb_batched(capped, x0, lower, upper, {"maxiter": 200}, max_rows=3), got)
    assert max(len(idx) for idx in capped.calls) == 3


def test_b_one_and_b_zero() -> None:
    x0, a, lower, upper = problems(1, 1, 2, bounded=True)
    got = lbfgsb_batched(Rosen(a), x0, lower, upper, {})
    assert_same(got, reference(Rosen(a), x0, lower, upper, {}))
    fun = Rosen(a)
    empty = np.zeros((0, 2))
    assert lbfgsb_batched(fun, empty, empty - np.inf, empty + np.inf, {}) == []
    assert fun.calls == []


def test_inputs_are_not_mutated() -> None:
    x0, a, lower, upper = problems(4, 4, 3, bounded=True)
    before = [x0.copy(), lower.copy(), upper.copy()]
    lbfgsb_batched(Rosen(a), x0, lower, upper, {"maxiter": 3})
    for arr, old in zip((x0, lower, upper), before, strict=True):
        np.testing.assert_array_equal(arr, old)


@derandomized("HYPOTHESIS_LBFGSB", 15)
@given(
    b=st.integers(1, 6),
    n=st.integers(1, 4),
    seed=st.integers(0, 2**16),
    bounded=st.booleans(),
    maxiter=st.integers(1, 40),
)
def test_equal_to_scipy_over_sizes(b: int, n: int, seed: int, bounded: bool, maxiter: int) -> None:
    x0, a, lower, upper = problems(seed, b, n, bounded)
    options = {"maxiter": maxiter}
    got = lbfgsb_batched(Rosen(a), x0, lower, upper, options)
    assert_same(got, reference(Rosen(a), x0, lower, upper, options))


def test_errors_name_what_was_expected() -> None:
    x0, a, lower, upper = problems(0, 2, 2, bounded=False)
    fun = Rosen(a)
    with pytest.raises(ValueError, match=r"does not take the option\(s\) \['disp'\]"):
        lbfgsb_batched(fun, x0, lower, upper, {"disp": True})
    with pytest.raises(ValueError, match="maxls must be positive"):
        lbfgsb_batched(fun, x0, lower, upper, {"maxls": 0})
    with pytest.raises(ValueError, match=r"x0 must have shape \(B, n\)"):
        lbfgsb_batched(fun, x0[0], lower[0], upper[0], {})
    with pytest.raises(ValueError, match="upper must have the shape of x0"):
        lbfgsb_batched(fun, x0, lower, upper[:, :1], {})
    with pytest.raises(ValueError, match="problem 1: one of the lower bounds is greater"):
        lbfgsb_batched(fun, x0, np.array([[0, 0], [2, 0]]), np.ones((2, 2)), {})
    with pytest.raises(ValueError, match="max_rows must be a positive int"):
        lbfgsb_batched(fun, x0, lower, upper, {}, max_rows=0)
    with pytest.raises(ValueError, match=r"expected \(2,\) and \(2, 2\)"):
        lbfgsb_batched(lambda i, x: (x.sum(), x), x0, lower, upper, {})


def test_an_unchecked_scipy_has_no_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lbfgsb_batch.scipy, "__version__", "9.0.0")
    assert not fast_path_available()
    x0, a, lower, upper = problems(0, 2, 2, bounded=False)
    with pytest.raises(RuntimeError, match=r"does not support SciPy 9\.0\.0"):
        lbfgsb_batched(Rosen(a), x0, lower, upper, {})

"""Faults during a run: non-finite values, interrupts and exceptions lose nothing."""

from __future__ import annotations

import importlib
import math
import traceback
import warnings
from typing import Any

import numpy as np
import pytest
import scipy.optimize

from dict_minimize import METHODS, NonFiniteError, minimize
from tests.conftest import Framework, flat_objective

TARGET = np.array([1.0, -2.0, 0.5])


def quad(x: np.ndarray) -> tuple[float, np.ndarray]:
    r = x - TARGET
    return float(r @ r), 2 * r


def x0_of(fw: Framework) -> dict:
    return {"a": fw.tensor([0.0, 0.0]), "b": fw.tensor(0.0)}


def flat_x(fw: Framework, d: Any) -> np.ndarray:
    return np.concatenate([fw.to_numpy(d["a"]).ravel(), fw.to_numpy(d["b"]).ravel()])


def snapshot(fw: Framework, d: dict) -> dict:
    return {k: fw.to_numpy(v).copy() for k, v in d.items()}


def poisoned(x: np.ndarray) -> tuple[float, np.ndarray]:
    """A quadratic that is NaN (value and gradient of 'a') beyond x[0] > 0.8."""
    f, g = quad(x)
    if x[0] > 0.8:
        g = g.copy()
        g[0] = np.nan
        return math.nan, g
    return f, g


# -- non-finite values --------------------------------------------------------------------------
def test_nonfinite_at_x0_names_the_keys(fw: Framework) -> None:
    def bad(x: np.ndarray) -> tuple[float, np.ndarray]:
        f, _g = quad(x)
        return f, np.array([0.0, np.inf, 0.0])

    x0 = x0_of(fw)
    before = snapshot(fw, x0)
    with pytest.raises(
        NonFiniteError,
        match=r"at x0: the gradient has non-finite entries for "
        r"key\(s\) 'a'",
    ):
        minimize(flat_objective(fw, bad), x0)
    with pytest.raises(ValueError, match=r"at x0: the value is nan"):
        minimize(flat_objective(fw, lambda x: (math.nan, quad(x)[1])), x0)
    assert all(np.array_equal(before[k], fw.to_numpy(x0[k])) for k in x0)


@pytest.mark.parametrize("method", ["bfgs", "l-bfgs-b", "cg", "slsqp", "tnc"])
def test_nonfinite_later_counts_as_inf(fw: Framework, method: str) -> None:
    """The target (x[0] = 1) lies in the NaN region: the run stays out of it, and goes on."""
    with pytest.warns(
        RuntimeWarning,
        match=r"not finite \(gradient entries of key\(s\) 'a'\) "
        r"and counted as worse than every finite point",
    ):
        res = minimize(flat_objective(fw, poisoned), x0_of(fw), method=method)
    assert res.nonfinite_count > 0
    assert math.isfinite(res.fun)
    x = flat_x(fw, res.x)
    assert x[0] <= 0.8 + 1e-12 and np.all(np.isfinite(x))
    # the run still made progress towards the target where it could
    assert res.fun < quad(np.zeros(3))[0]


def test_nonfinite_raise_policy(fw: Framework) -> None:
    with pytest.raises(NonFiniteError, match="nonfinite='raise'") as info:
        minimize(flat_objective(fw, poisoned), x0_of(fw), method="bfgs", nonfinite="raise")
    best = info.value.dict_minimize_result  # type: ignore[attr-defined]
    assert not best.success and math.isfinite(best.fun) and best.fun < quad(np.zeros(3))[0]
    assert fw.type_check(best.x["a"])
    with pytest.raises(ValueError, match="nonfinite must be 'inf', 'raise' or 'pass'"):
        minimize(flat_objective(fw, quad), x0_of(fw), nonfinite="ignore")


def test_final_nonfinite_point_is_replaced_by_the_best(fw: Framework) -> None:
    """Nelder-Mead never looks at gradients: a NaN value is +inf for it, the best point wins."""

    def cliff(x: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = quad(x)
        return (-math.inf if x[0] > 0.8 else f), g

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = minimize(
            flat_objective(fw, cliff), x0_of(fw), method="nelder-mead", options={"maxiter": 300}
        )
    assert math.isfinite(res.fun) and res.nonfinite_count > 0


# -- interrupts ---------------------------------------------------------------------------------
def rosen(x: np.ndarray) -> tuple[float, np.ndarray]:
    return float(scipy.optimize.rosen(x)), scipy.optimize.rosen_der(x)


def interrupting(fw: Framework, after: int) -> tuple[Any, list]:
    """Rosenbrock (many evaluations to go), interrupted at evaluation ``after + 1``."""
    calls: list[float] = []
    inner = flat_objective(fw, rosen)

    def fun(d: Any) -> Any:
        if len(calls) == after:
            raise KeyboardInterrupt
        out = inner(d)
        calls.append(float(out[0]))
        return out

    return fun, calls


@pytest.mark.parametrize("method", ["bfgs", "l-bfgs-b", "nelder-mead", "trust-constr", "tnc"])
def test_keyboard_interrupt_returns_best_point(fw: Framework, method: str) -> None:
    fun, calls = interrupting(fw, after=6)
    res = minimize(fun, x0_of(fw), method=method)
    assert not res.success and res.status == -1
    assert "interrupted by KeyboardInterrupt after 6 evaluations" in res.message
    assert res.fun == min(calls) and res.nfev == 6
    assert fw.type_check(res.x["a"])
    assert rosen(flat_x(fw, res.x))[0] == pytest.approx(res.fun)


def test_keyboard_interrupt_in_callback(fw: Framework) -> None:
    seen = []

    def callback(x: Any) -> None:
        seen.append(1)
        if len(seen) == 2:
            raise KeyboardInterrupt

    res = minimize(flat_objective(fw, quad), x0_of(fw), method="bfgs", callback=callback)
    assert not res.success and "interrupted" in res.message and res.nfev > 0


def test_dropin_reraises_interrupt_with_best_point(fw: Framework) -> None:
    dropin = importlib.import_module(f"dict_minimize.{fw.name}_api").minimize
    fun, calls = interrupting(fw, after=5)
    with pytest.raises(KeyboardInterrupt) as info:
        dropin(fun, x0_of(fw), method="L-BFGS-B")
    best = info.value.dict_minimize_result  # type: ignore[attr-defined]
    assert best.fun == min(calls) and list(best.x) == ["a", "b"]
    assert fw.type_check(best.x["b"])


def test_interrupt_at_the_first_evaluation_returns_x0(fw: Framework) -> None:
    fun, _ = interrupting(fw, after=0)
    x0 = x0_of(fw)
    res = minimize(fun, x0)
    assert math.isnan(res.fun) and res.nfev == 0
    np.testing.assert_array_equal(flat_x(fw, res.x), 0.0)


# -- exceptions ---------------------------------------------------------------------------------
class UserBug(Exception):
    pass


@pytest.mark.parametrize(
    "method",
    [m for m in METHODS if m not in ("dogleg", "trust-exact", "trust-ncg", "trust-krylov")],
)
def test_user_exception_propagates_unchanged(fw: Framework, method: str) -> None:
    inner = flat_objective(fw, quad)
    calls = []

    def fun(d: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise UserBug("boom")
        return inner(d)

    with pytest.raises(UserBug, match="boom") as info:
        minimize(fun, x0_of(fw), method=method)
    exc = info.value
    assert type(exc) is UserBug
    assert any("evaluations of fun" in n for n in exc.__notes__)
    assert "raised after 2 evaluations of fun" in exc.__notes__[0]
    frames = [f.name for f in traceback.extract_tb(exc.__traceback__)]
    assert frames[-1] == "fun"  # the user's frame is where the traceback ends
    best = exc.dict_minimize_result  # type: ignore[attr-defined]
    assert math.isfinite(best.fun) and not best.success


def test_callback_exception_propagates(fw: Framework) -> None:
    def callback(x: Any) -> None:
        raise UserBug("in callback")

    with pytest.raises(UserBug, match="in callback") as info:
        minimize(flat_objective(fw, quad), x0_of(fw), callback=callback)
    assert "dict_minimize: raised after" in info.value.__notes__[0]

"""error_handling='continue', maximize=True and str(result) (issue 28, items 3 and 4)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
import scipy.optimize
from scipy.optimize import rosen, rosen_der, rosen_hess, rosen_hess_prod

from dict_minimize import least_squares, minimize, minimize_many, multistart, root
from dict_minimize._problem.objective import counts_as_failure
from tests.conftest import Framework, flat_objective

X0 = np.array([-1.2, 1.0, 0.8])
#: a problem defined only for positive x (minimum 41 at x = 1), started where gradient steps
#: overshoot to negative x
WEIGHTS = np.array([10.0, 1.0, 30.0])
START = np.array([4.0, 0.2, 5.0])


def rosen_pair(x: np.ndarray) -> tuple[float, np.ndarray]:
    return float(rosen(x)), rosen_der(x)


def undefined_off_domain(x: np.ndarray) -> tuple[float, np.ndarray]:
    if (x <= 0).any():
        raise ArithmeticError("outside the domain")
    return float(WEIGHTS @ (x - np.log(x))), WEIGHTS * (1 - 1 / x)


def nan_off_domain(x: np.ndarray) -> tuple[float, np.ndarray]:
    if (x <= 0).any():
        return math.nan, np.full(x.shape, math.nan)
    return undefined_off_domain(x)


def x0_of(fw: Framework, x: np.ndarray = X0) -> dict:
    return {"a": fw.tensor(x[:2]), "b": fw.tensor(x[2])}


def flat_x(fw: Framework, d: Any) -> np.ndarray:
    return np.concatenate([fw.to_numpy(d["a"]).ravel(), fw.to_numpy(d["b"]).ravel()])


def run(fw: Framework, flat_fun: Any, method: str, **kw: Any) -> tuple[Any, np.ndarray]:
    points: list[np.ndarray] = []
    res = minimize(
        flat_objective(fw, flat_fun),
        x0_of(fw, START),
        method=method,
        callback=lambda x: points.append(flat_x(fw, x)),
        **kw,
    )
    return res, np.array(points)


# --- error_handling ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["L-BFGS-B", "BFGS", "CG", "SLSQP", "Nelder-Mead"])
def test_exceptions_follow_the_nonfinite_path(fw: Framework, method: str) -> None:
    res, path = run(fw, undefined_off_domain, method, error_handling="continue")
    with pytest.warns(RuntimeWarning, match="not finite"):
        ref, ref_path = run(fw, nan_off_domain, method)
    assert res.exception_count == ref.nonfinite_count > 0
    assert res.nonfinite_count == 0 and ref.exception_count == 0
    assert (res.nfev, res.nit, res.success) == (ref.nfev, ref.nit, ref.success)
    assert path.shape == ref_path.shape
    np.testing.assert_allclose(path, ref_path, rtol=1e-12, atol=0)
    assert res.fun == pytest.approx(ref.fun, rel=1e-12, abs=1e-300)
    assert "raised and counted as worse" in res.message
    assert "ArithmeticError: outside the domain" in res.message
    assert res.success and res.fun == pytest.approx(41.0, rel=1e-6)


def test_exceptions_with_autodiff(fw: Framework) -> None:
    if fw.name == "numpy":
        pytest.skip("NumPy has no autodiff (jac=True is covered above)")
    calls = []

    def value(d: Any) -> Any:
        a, b = d["a"], d["b"]
        return 10 * (a[0] - fw_log(fw, a[0])) + (a[1] - fw_log(fw, a[1])) + 30 * (b - fw_log(fw, b))

    def fun(d: Any) -> Any:
        calls.append(1)
        if (flat_x(fw, d) <= 0).any():  # a check on concrete values, as user code does
            raise ArithmeticError("outside the domain")
        if fw.name == "jax":  # (JAX traces under autodiff: fun returns its value_and_grad)
            import jax

            return jax.value_and_grad(value)(d)
        return value(d)

    res = minimize(
        fun, x0_of(fw, START), method="BFGS", jac=True if fw.name == "jax" else "autodiff",
        jit=False, error_handling="continue",
    )  # fmt: skip
    assert res.exception_count > 0 and res.nfev_ran == len(calls)
    np.testing.assert_allclose(flat_x(fw, res.x), np.ones(3), atol=1e-4)


def fw_log(fw: Framework, t: Any) -> Any:
    import importlib

    if fw.name == "torch":
        return importlib.import_module("torch").log(t)
    if fw.name == "jax":
        return importlib.import_module("jax.numpy").log(t)
    return importlib.import_module("tensorflow").math.log(t)


def test_exception_at_x0_still_raises(fw: Framework) -> None:
    def fun(d: Any) -> Any:
        raise ArithmeticError("undefined at x0")

    with pytest.raises(ArithmeticError, match="undefined at x0"):
        minimize(fun, x0_of(fw), error_handling="continue")

    def jac(d: Any) -> Any:
        raise ArithmeticError("no gradient at x0")

    with pytest.raises(ArithmeticError, match="no gradient at x0"):
        minimize(lambda d: rosen(flat_x(fw, d)), x0_of(fw), jac=jac, error_handling="continue")


def test_the_default_still_raises(fw: Framework) -> None:
    with pytest.raises(ArithmeticError, match="outside the domain"):
        minimize(flat_objective(fw, undefined_off_domain), x0_of(fw, START), method="L-BFGS-B")


def test_package_errors_and_interrupts_are_never_swallowed() -> None:
    calls = []

    def bad_shape(d: Any) -> Any:
        calls.append(1)
        grad = {"x": 2 * d["x"]} if len(calls) < 3 else {"x": np.zeros(5)}
        return float(d["x"] @ d["x"]), grad

    with pytest.raises(ValueError, match="shape"):
        minimize(bad_shape, {"x": np.ones(2)}, error_handling="continue")

    calls.clear()

    def no_gradient(d: Any) -> Any:
        calls.append(1)
        f = float(d["x"] @ d["x"])
        return f if len(calls) >= 3 else (f, {"x": 2 * d["x"]})

    with pytest.raises(TypeError, match="must return"):
        minimize(no_gradient, {"x": np.ones(2)}, error_handling="continue")

    calls.clear()

    def interrupted(d: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return float(d["x"] @ d["x"]), {"x": 2 * d["x"]}

    res = minimize(interrupted, {"x": np.ones(2)}, error_handling="continue")
    assert res.status == -1 and "KeyboardInterrupt" in res.message


def test_which_exceptions_count() -> None:
    def raise_(exc: BaseException) -> BaseException:
        try:
            raise exc
        except BaseException as caught:
            return caught

    assert counts_as_failure(raise_(ValueError("user")))
    assert counts_as_failure(ValueError("never raised"))
    assert not counts_as_failure(raise_(StopIteration()))
    assert not counts_as_failure(raise_(KeyboardInterrupt()))
    assert not counts_as_failure(raise_(SystemExit()))
    try:
        minimize(lambda d: 1.0, {"x": np.ones(1)}, method="BFGS")
    except TypeError as exc:  # the package's own: fun must return (value, grad_dict)
        assert not counts_as_failure(exc)


def test_error_handling_argument_and_other_entry_points() -> None:
    with pytest.raises(ValueError, match="error_handling must be"):
        minimize(rosen_pair_dict, {"x": X0}, error_handling="ignore")
    with pytest.raises(ValueError, match="error_handling='raise'"):
        least_squares(lambda d: d["x"], {"x": X0}, jac="2-point", error_handling="continue")
    with pytest.raises(ValueError, match="error_handling='raise'"):
        root(lambda d: d["x"], {"x": X0}, jac=None, error_handling="continue")
    results = minimize_many(
        lambda d: (undefined_off_domain(d["x"])[0], {"x": undefined_off_domain(d["x"])[1]}),
        [{"x": START}, {"x": START / 2}],
        method="L-BFGS-B",
        error_handling="continue",
    )
    assert all(r.success and r.exception_count > 0 for r in results)


def rosen_pair_dict(d: Any) -> tuple[float, dict]:
    f, g = rosen_pair(d["x"])
    return f, {"x": g}


# --- maximize ---------------------------------------------------------------------------------


def negated(flat_fun: Any) -> Any:
    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = flat_fun(x)
        return -f, -g

    return fun


@pytest.mark.parametrize("method", ["BFGS", "L-BFGS-B", "Nelder-Mead", "trust-constr", "TNC"])
def test_maximize_is_minimize_of_the_negation(fw: Framework, method: str) -> None:
    seen: dict[str, list] = {"max": [], "min": []}

    def callback(which: str) -> Any:
        def cb(intermediate_result: Any) -> None:
            seen[which].append((flat_x(fw, intermediate_result.x), intermediate_result.fun))

        return cb

    up = minimize(
        flat_objective(fw, negated(rosen_pair)),
        x0_of(fw),
        method=method,
        maximize=True,
        trace=True,
        callback=callback("max"),
    )
    down = minimize(
        flat_objective(fw, rosen_pair),
        x0_of(fw),
        method=method,
        trace=True,
        callback=callback("min"),
    )
    assert (up.nfev, up.nit, up.success) == (down.nfev, down.nit, down.success)
    assert up.fun == -down.fun and up.fun <= 0
    np.testing.assert_array_equal(up.trace.fun, -down.trace.fun)
    np.testing.assert_array_equal(up.trace.grad_norm, down.trace.grad_norm)
    assert up.trace.fun[0] == -rosen(X0)  # row 0 in the user's sign too
    np.testing.assert_array_equal([p for p, _ in seen["max"]], [p for p, _ in seen["min"]])
    np.testing.assert_array_equal([f for _, f in seen["max"]], [-f for _, f in seen["min"]])
    if down.jac is None:
        assert up.jac is None
    else:
        np.testing.assert_array_equal(flat_x(fw, up.jac), -flat_x(fw, down.jac))


def test_maximize_with_autodiff_and_finite_differences(fw: Framework) -> None:
    def peak(d: Any) -> Any:  # maximum 3.0 at a = (1, -2), b = 0.5
        return 3.0 - ((d["a"][0] - 1) ** 2 + (d["a"][1] + 2) ** 2 + (d["b"] - 0.5) ** 2)

    jacs = ["2-point"] + ([] if fw.name == "numpy" else ["autodiff"])
    for jac in jacs:
        res = minimize(peak, x0_of(fw), jac=jac, method="BFGS", maximize=True)
        assert res.success and res.fun == pytest.approx(3.0, abs=1e-9), jac
        np.testing.assert_allclose(flat_x(fw, res.x), [1, -2, 0.5], atol=1e-4)
        np.testing.assert_allclose(flat_x(fw, res.jac), 0, atol=1e-4)
    if fw.name != "numpy":  # the Hessian (and its products) by autodiff, negated
        for method in ("trust-exact", "trust-krylov", "Newton-CG"):
            res = minimize(peak, x0_of(fw), jac="autodiff", method=method, maximize=True)
            assert res.success and res.fun == pytest.approx(3.0, abs=1e-9), method


@pytest.mark.parametrize("method", ["trust-exact", "trust-ncg", "Newton-CG", "dogleg"])
def test_maximize_with_hess_and_hessp(method: str) -> None:
    def fun(d: Any) -> tuple[float, dict]:
        f, g = rosen_pair(d["x"])
        return -f, {"x": -g}

    second = (
        {"hessp": lambda d, p: {"x": -rosen_hess_prod(d["x"], p["x"])}}
        if method in ("trust-ncg", "Newton-CG")
        else {"hess": lambda d: -rosen_hess(d["x"])}
    )
    x0 = {"x": np.array([0.5, 0.6, 0.7])}  # dogleg needs a positive definite Hessian
    up = minimize(fun, x0, method=method, maximize=True, **second)
    ref = scipy.optimize.minimize(
        rosen, x0["x"], jac=rosen_der, method=method, **{k: _flat(v) for k, v in second.items()}
    )
    assert up.nfev == ref.nfev and up.nit == ref.nit
    assert up.fun == -ref.fun
    np.testing.assert_array_equal(up.x["x"], ref.x)


def _flat(user: Any) -> Any:
    """The reference's Hessian of rosen from the test's Hessian of -rosen."""
    if user.__code__.co_argcount == 2:
        return lambda x, p: -user({"x": x}, {"x": p})["x"]
    return lambda x: -user({"x": x})


def test_maximize_in_many_and_multistart() -> None:
    def fun(d: Any) -> tuple[float, dict]:  # maxima: x = -1 (f = 0.5) and x = 1 (f = -0.5)
        x = d["x"]
        return float(-((x**2 - 1) ** 2) - 0.5 * x), {"x": -4 * x * (x**2 - 1) - 0.5}

    results = minimize_many(fun, [{"x": np.float64(-0.5)}, {"x": np.float64(0.5)}], maximize=True)
    assert [round(r.fun, 2) for r in results] == [0.51, -0.48]
    best = multistart(
        fun, {"x": np.float64(0.0)}, 6, seed=1, lb_dict={"x": -2.0}, ub_dict={"x": 2.0},
        maximize=True,
    )  # fmt: skip
    assert round(float(best.x["x"]), 2) == -1.06 and best.fun == max(r.fun for r in best.starts)


def test_maximize_is_refused_where_it_makes_no_sense() -> None:
    with pytest.raises(ValueError, match="maximize"):
        least_squares(lambda d: d["x"], {"x": X0}, jac="2-point", maximize=True)
    with pytest.raises(ValueError, match="maximize"):
        root(lambda d: d["x"], {"x": X0}, jac=None, maximize=True)
    with pytest.raises(TypeError, match="maximize must be True or False"):
        minimize(rosen_pair_dict, {"x": X0}, maximize="yes")


# --- str(result) ------------------------------------------------------------------------------


def test_str_of_a_large_result_is_short() -> None:
    rng = np.random.default_rng(0)
    x0 = {f"w{i}": rng.normal(size=(3, 2)) for i in range(2000)}

    def fun(d: Any) -> tuple[float, dict]:
        return sum(float((v * v).sum()) for v in d.values()), {k: 2 * v for k, v in d.items()}

    res = minimize(fun, x0, method="L-BFGS-B", trace=True)
    text = str(res)
    assert len(text) < 1500, len(text)
    assert "array" not in text and "[[" not in text
    lines = text.splitlines()
    assert lines[0] == "OptimizeResult: success (status 0)"
    assert res.message in text
    assert f"fun: {res.fun:.10g}" in text and "|grad|: " in text
    assert f"nit: {res.nit}" in text and f"nfev: {res.nfev}" in text
    assert "nonfinite: 0" in text and "exceptions: 0" in text
    assert " s " in text and f"trace: {len(res.trace)} rows" in text
    assert "2,000 entries (12,000 scalars, numpy float64)" in text
    assert "'w0' (3, 2)" in text and "more" in text
    assert repr(res) == scipy.optimize.OptimizeResult.__repr__(res)  # repr stays SciPy's


def test_str_in_every_framework(fw: Framework) -> None:
    res = minimize(
        flat_objective(fw, undefined_off_domain), x0_of(fw, START), error_handling="continue"
    )
    text = str(res)
    assert f"{fw.name} float64" in text and "'a' (2,), 'b' ()" in text
    grad_norm = float(np.linalg.norm(flat_x(fw, res.jac)))
    assert f"|grad|: {grad_norm:.6g}" in text
    assert f"exceptions: {res.exception_count}" in text
    assert "tensor(" not in text and "array(" not in text


def test_str_of_other_results() -> None:
    lsq = least_squares(lambda d: d["x"] - 1.0, {"x": np.zeros(3)}, jac="2-point")
    assert "3 residuals, norm" in str(lsq) and "cost:" in str(lsq) and "|grad|:" in str(lsq)
    sol = root(lambda d: d["x"] - 1.0, {"x": np.zeros(3)}, jac=None)
    assert "3 residuals, norm" in str(sol) and "|grad|" not in str(sol)

    def fails(d: Any) -> Any:
        raise RuntimeError("no model here")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        failed, ok = (
            minimize_many(fails, [{"x": np.ones(2)}]),
            minimize_many(rosen_pair_dict, [{"x": X0}]),
        )
    assert "FAILED" in str(failed[0]) and "exception: RuntimeError" in str(failed[0])
    assert "success" in str(ok[0]) and "'x' (3,)" in str(ok[0])
    nested = minimize(
        lambda d: (0.0, {"a": {"b": 0 * d["a"]["b"]}, "c": [0 * d["c"][0]]}),
        {"a": {"b": np.ones(2)}, "c": [np.ones(4)]},
    )
    assert "'a'['b'] (2,), 'c'[0] (4,)" in str(nested)

"""root over dicts: the same iterates as SciPy on the flat problem, every method and framework."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.optimize

from dict_minimize import root
from dict_minimize._solvers.root import JAC_METHODS, ROOT_METHODS
from tests.conftest import Framework

START = np.array([2.0, 0.5])


def _stack(fw: Framework) -> Any:
    if fw.name == "torch":
        import torch

        return torch.stack
    if fw.name == "jax":
        import jax.numpy as jnp

        return jnp.stack
    if fw.name == "tensorflow":
        import tensorflow as tf

        return tf.stack
    return np.stack


def circle(fw: Framework) -> Any:
    """x^2 + y^2 = 4, x*y = 1: a root near (1.93, 0.52)."""
    stack = _stack(fw)

    def fun(d: dict) -> Any:
        x, y = d["x"], d["y"]
        return stack([x**2 + y**2 - 4.0, x * y - 1.0])

    return fun


def flat_circle(p: np.ndarray) -> np.ndarray:
    return np.array([p[0] ** 2 + p[1] ** 2 - 4.0, p[0] * p[1] - 1.0])


def flat_circle_jac(p: np.ndarray) -> np.ndarray:
    return np.array([[2 * p[0], 2 * p[1]], [p[1], p[0]]])


def x0_of(fw: Framework, p: np.ndarray = START) -> dict:
    return {"x": fw.tensor(p[0], "float64"), "y": fw.tensor(p[1], "float64")}


def point(d: dict, fw: Framework) -> np.ndarray:
    return np.array([float(fw.to_numpy(d["x"])), float(fw.to_numpy(d["y"]))])


EXACT = np.array([np.sqrt(2 + np.sqrt(3)), np.sqrt(2 - np.sqrt(3))])


@pytest.mark.parametrize("method", JAC_METHODS)
def test_callable_jacobian_matches_flat_scipy(fw: Framework, method: str) -> None:
    def jac(d: dict) -> np.ndarray:
        return flat_circle_jac(point(d, fw))

    ref = scipy.optimize.root(flat_circle, START, jac=flat_circle_jac, method=method)
    res = root(circle(fw), x0_of(fw), jac=jac, method=method)
    assert res.success and ref.success
    np.testing.assert_allclose(point(res.x, fw), ref.x, rtol=0, atol=1e-12)
    np.testing.assert_allclose(point(res.x, fw), EXACT, atol=1e-9)
    assert res.nfev == ref.nfev
    assert fw.type_check(res.x["x"]) and res.fun.shape == (2,)
    if fw.name != "numpy":
        ad = root(circle(fw), x0_of(fw), method=method)
        np.testing.assert_allclose(point(ad.x, fw), ref.x, rtol=0, atol=1e-12)
        assert ad.nfev == ref.nfev


def contraction(fw: Framework) -> Any:
    """A near-identity system every method of scipy.optimize.root solves with margin."""
    if fw.name == "torch":
        import torch

        sin, cos = torch.sin, torch.cos
    elif fw.name == "jax":
        import jax.numpy as jnp

        sin, cos = jnp.sin, jnp.cos
    elif fw.name == "tensorflow":
        import tensorflow as tf

        sin, cos = tf.sin, tf.cos
    else:
        sin, cos = np.sin, np.cos

    def fun(d: dict) -> dict:
        return {"a": 1.0 - d["a"] - 0.1 * sin(d["b"]), "b": 2.0 - d["b"] + 0.1 * cos(d["a"])}

    return fun


def flat_contraction(p: np.ndarray) -> np.ndarray:
    return np.array([1.0 - p[0] - 0.1 * np.sin(p[1]), 2.0 - p[1] + 0.1 * np.cos(p[0])])


@pytest.mark.parametrize("method", ROOT_METHODS)
def test_every_method_matches_flat_scipy(fw: Framework, method: str) -> None:
    x0 = {"a": fw.tensor(0.0, "float64"), "b": fw.tensor(0.0, "float64")}
    seen = []
    cb = None if method in JAC_METHODS else (lambda x, f: seen.append(sorted(f)))
    ref = scipy.optimize.root(flat_contraction, np.zeros(2), method=method)
    res = root(contraction(fw), x0, jac=None, method=method, callback=cb)
    assert res.success and ref.success
    got = np.array([float(fw.to_numpy(res.x["a"])), float(fw.to_numpy(res.x["b"]))])
    np.testing.assert_allclose(got, ref.x, rtol=0, atol=1e-8)
    sol = scipy.optimize.root(flat_contraction, np.zeros(2), method="hybr", tol=1e-14).x
    np.testing.assert_allclose(got, sol, atol=1e-4)
    assert list(res.fun) == ["a", "b"]
    if cb is not None:
        assert seen and seen[0] == ["a", "b"]


def test_errors() -> None:
    x0 = {"x": np.array(2.0), "y": np.array(0.5)}
    with pytest.raises(ValueError, match="3 residual values, but x0 has 2 scalars"):
        root(lambda d: np.array([d["x"], d["y"], 1.0]), x0, jac=None)
    with pytest.raises(ValueError, match="'autodiff' needs a framework"):
        root(lambda d: np.stack([d["x"], d["y"]]), x0)
    # methods that do not use a Jacobian accept NumPy x0 with the default jac
    res = root(lambda d: np.stack([d["x"] - 1, d["y"] - 2]), x0, method="df-sane")
    assert res.success
    with pytest.raises(ValueError, match="method must be"):
        root(lambda d: d["x"], x0, method="bfgs")
    with pytest.raises(ValueError, match="residual 'q' changed shape"):
        calls = []

        def fun(d: dict) -> dict:
            calls.append(1)
            return {"q": np.stack([d["x"], d["y"]]) if len(calls) < 2 else np.zeros(3)}

        root(fun, x0, jac=None)


def test_method_names_are_case_insensitive_as_in_scipy() -> None:
    def fun(d: dict) -> np.ndarray:
        return np.stack([d["x"] ** 2 + d["y"] ** 2 - 4.0, d["x"] * d["y"] - 1.0])

    x0 = {"x": np.array(2.0), "y": np.array(0.5)}
    lower = root(fun, x0, jac=None, method="hybr")
    upper = root(fun, x0, jac=None, method="HYBR")
    assert upper.success and upper.nfev == lower.nfev
    assert float(upper.x["x"]) == float(lower.x["x"])


# SciPy's conventions, as SciPy takes them (the SciPy suite through the package:
# tools/scipy_shims/lsq_root.py)


@pytest.mark.parametrize("method", JAC_METHODS)
def test_jac_true_fun_returns_residuals_and_jacobian(method: str) -> None:
    def both(d: dict) -> tuple:
        p = np.array([d["x"], d["y"]])
        return flat_circle(p), flat_circle_jac(p)

    def flat_both(p: np.ndarray) -> tuple:
        return flat_circle(p), flat_circle_jac(p)

    ref = scipy.optimize.root(flat_both, START, jac=True, method=method)
    res = root(both, {"x": np.array(START[0]), "y": np.array(START[1])}, jac=True, method=method)
    np.testing.assert_allclose([res.x["x"], res.x["y"]], ref.x, rtol=0, atol=1e-12)
    assert res.nfev == ref.nfev and res.get("njev") == ref.get("njev")
    with pytest.raises(TypeError, match=r"with jac=True, fun must return \(residuals, jacobian\)"):
        root(lambda d: flat_circle(np.array([d["x"], d["y"]])), {"x": 2.0, "y": 0.5}, jac=True)


def test_unused_jac_warns_as_scipy() -> None:
    x0 = {"x": np.array(2.0), "y": np.array(0.5)}

    def fun(d: dict) -> np.ndarray:
        return flat_circle(np.array([d["x"], d["y"]]))

    ref = root(fun, x0, method="krylov")
    with pytest.warns(RuntimeWarning, match="Method krylov does not use the jacobian"):
        res1 = root(fun, x0, method="krylov", jac=lambda d: flat_circle_jac(d))
    with pytest.warns(RuntimeWarning, match="Method krylov does not use the jacobian"):
        res2 = root(lambda d: (fun(d), None), x0, method="krylov", jac=True)
    assert res1.x["x"] == res2.x["x"] == ref.x["x"]


def test_scipy_positional_order() -> None:
    # root(fun, x0, args, method, jac, ...) as scipy.optimize.root
    res = root(
        lambda d, a: np.stack([d["x"] - a, d["y"] - 2 * a]),
        {"x": np.array(0.0), "y": np.array(0.0)},
        (1.5,),
        "hybr",
        None,
    )
    assert res.success and float(res.x["y"]) == pytest.approx(3.0)

"""least_squares over dicts: the same iterates as SciPy on the flat problem, every framework."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.optimize

from dict_minimize import least_squares
from tests.conftest import Framework

T = np.linspace(-3.0, 3.0, 41)
TRUE = np.array([2.0, 0.4, 0.8])  # amplitude, centre, width
Y = TRUE[0] * np.exp(-((T - TRUE[1]) ** 2) / (2 * TRUE[2] ** 2)) + 0.01 * np.sin(7 * T)
START = np.array([1.5, 0.0, 1.0])
KEYS = ("amplitude", "centre", "width")


def _exp(fw: Framework) -> Any:
    if fw.name == "torch":
        import torch

        return torch.exp
    if fw.name == "jax":
        import jax.numpy as jnp

        return jnp.exp
    if fw.name == "tensorflow":
        import tensorflow as tf

        return tf.exp
    return np.exp


def flat_res(p: np.ndarray) -> np.ndarray:
    a, c, w = p
    return a * np.exp(-((T - c) ** 2) / (2 * w**2)) - Y


def flat_jac(p: np.ndarray) -> np.ndarray:
    a, c, w = p
    e = np.exp(-((T - c) ** 2) / (2 * w**2))
    return np.stack([e, a * e * (T - c) / w**2, a * e * (T - c) ** 2 / w**3], axis=1)


def x0_of(fw: Framework, p: np.ndarray = START) -> dict:
    return {k: fw.tensor(v, "float64") for k, v in zip(KEYS, p, strict=True)}


def gauss(fw: Framework) -> Any:
    exp = _exp(fw)
    t, y = fw.tensor(T, "float64"), fw.tensor(Y, "float64")

    def fun(d: dict) -> Any:
        return d["amplitude"] * exp(-((t - d["centre"]) ** 2) / (2 * d["width"] ** 2)) - y

    return fun


def np_point(d: dict, fw: Framework) -> np.ndarray:
    return np.array([float(fw.to_numpy(d[k])) for k in KEYS])


def block_jac(fw: Framework) -> Any:
    def jac(d: dict) -> dict:
        j = flat_jac(np_point(d, fw))
        # blocks keyed like x0 in reversed order: matched by key, never by position
        return {k: j[:, i] for i, k in reversed(list(enumerate(KEYS)))}

    return jac


@pytest.mark.parametrize("method", ["trf", "dogbox", "lm"])
def test_callable_jacobian_matches_flat_scipy(fw: Framework, method: str) -> None:
    ref = scipy.optimize.least_squares(flat_res, START, jac=flat_jac, method=method)
    res = least_squares(gauss(fw), x0_of(fw), jac=block_jac(fw), method=method)
    assert res.success and ref.success
    np.testing.assert_allclose(np_point(res.x, fw), ref.x, rtol=0, atol=1e-12)
    assert abs(res.cost - ref.cost) <= 1e-12 * max(1.0, ref.cost)
    assert res.nfev == ref.nfev and res.njev == ref.njev
    assert fw.type_check(res.x["centre"])
    np.testing.assert_allclose(np_point(res.x, fw), TRUE, atol=0.02)
    assert res.jac.shape == (T.size, 3) and res.fun.shape == T.shape
    np.testing.assert_allclose([float(res.grad[k]) for k in KEYS], ref.grad, atol=1e-12)
    assert set(res.active_mask) == set(KEYS)


@pytest.mark.parametrize("method", ["trf", "dogbox", "lm"])
def test_autodiff_matches_flat_scipy(fw: Framework, method: str) -> None:
    if fw.name == "numpy":
        with pytest.raises(ValueError, match="autodiff"):
            least_squares(gauss(fw), x0_of(fw), method=method)
        return
    ref = scipy.optimize.least_squares(flat_res, START, jac=flat_jac, method=method)
    res = least_squares(gauss(fw), x0_of(fw), method=method)
    assert res.success
    np.testing.assert_allclose(np_point(res.x, fw), ref.x, rtol=0, atol=1e-12)
    assert abs(res.cost - ref.cost) <= 1e-9 * max(1.0, ref.cost)
    assert res.nfev == ref.nfev


@pytest.mark.parametrize("scheme", ["2-point", "3-point"])
def test_finite_differences_match_flat_scipy(fw: Framework, scheme: str) -> None:
    ref = scipy.optimize.least_squares(flat_res, START, jac=scheme)
    res = least_squares(gauss(fw), x0_of(fw), jac=scheme)
    # the framework's arithmetic differs in the last bits, which differencing amplifies
    np.testing.assert_allclose(np_point(res.x, fw), ref.x, rtol=0, atol=1e-8)
    assert res.nfev == ref.nfev


def _decay_data() -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(0.0, 4.0, 30)
    y = 3.0 * np.exp(-0.7 * t) + 0.005 * np.cos(5 * t)
    y[[4, 11, 19, 25]] += np.array([2.5, -2.0, 3.0, 2.2])  # outliers
    return t, y


@pytest.mark.parametrize("loss", ["soft_l1", "huber", "cauchy"])
def test_robust_loss_recovers_decay_with_outliers(fw: Framework, loss: str) -> None:
    t_np, y_np = _decay_data()
    exp = _exp(fw)
    t, y = fw.tensor(t_np, "float64"), fw.tensor(y_np, "float64")

    def fun(d: dict) -> Any:
        return d["a"] * exp(-d["k"] * t) - y

    def jac(d: dict) -> dict:
        a, k = float(fw.to_numpy(d["a"])), float(fw.to_numpy(d["k"]))
        e = np.exp(-k * t_np)
        return {"a": e, "k": -a * t_np * e}

    x0 = {"a": fw.tensor(1.0, "float64"), "k": fw.tensor(0.3, "float64")}
    kw: dict = {"f_scale": 0.1}
    lin = least_squares(fun, x0, jac=jac)
    rob = least_squares(fun, x0, jac=jac, loss=loss, **kw)
    err_lin = abs(float(fw.to_numpy(lin.x["k"])) - 0.7)
    err_rob = abs(float(fw.to_numpy(rob.x["k"])) - 0.7)
    assert err_rob < 0.02 < err_lin
    assert abs(float(fw.to_numpy(rob.x["a"])) - 3.0) < 0.05


def test_dict_residuals_in_key_order(fw: Framework) -> None:
    base = gauss(fw)

    def fun(d: dict) -> dict:
        r = base(d)
        return {"peak": r, "prior": d["width"] - 0.8}

    def jac(d: dict) -> dict:
        blocks = block_jac(fw)(d)
        return {
            "prior": {"amplitude": 0.0, "centre": 0.0, "width": 1.0},
            "peak": blocks,
        }

    def flat(p: np.ndarray) -> np.ndarray:
        return np.concatenate([flat_res(p), [p[2] - 0.8]])

    def fjac(p: np.ndarray) -> np.ndarray:
        return np.vstack([flat_jac(p), [0.0, 0.0, 1.0]])

    ref = scipy.optimize.least_squares(flat, START, jac=fjac)
    res = least_squares(fun, x0_of(fw), jac=jac)
    np.testing.assert_allclose(np_point(res.x, fw), ref.x, rtol=0, atol=1e-12)
    assert res.nfev == ref.nfev
    assert list(res.fun) == ["peak", "prior"] and res.fun["peak"].shape == T.shape
    np.testing.assert_allclose(res.fun["prior"], ref.fun[-1], atol=1e-12)
    if fw.name != "numpy":
        ad = least_squares(fun, x0_of(fw))
        np.testing.assert_allclose(np_point(ad.x, fw), ref.x, rtol=0, atol=1e-12)


def test_bounds_as_dicts(fw: Framework) -> None:
    lb = {"amplitude": 0.0, "centre": -1.0, "width": 0.1}
    ub = {"amplitude": 1.8, "centre": 1.0, "width": 2.0}
    ref = scipy.optimize.least_squares(
        flat_res, START, jac=flat_jac, bounds=([0.0, -1.0, 0.1], [1.8, 1.0, 2.0])
    )
    res = least_squares(gauss(fw), x0_of(fw), jac=block_jac(fw), lb_dict=lb, ub_dict=ub)
    np.testing.assert_allclose(np_point(res.x, fw), ref.x, rtol=0, atol=1e-12)
    assert float(fw.to_numpy(res.x["amplitude"])) == pytest.approx(1.8)
    assert int(res.active_mask["amplitude"]) == 1 and int(res.active_mask["centre"]) == 0
    with pytest.raises(ValueError, match="'lm' does not take bounds"):
        least_squares(gauss(fw), x0_of(fw), jac=block_jac(fw), method="lm", lb_dict=lb)


def test_errors_name_keys() -> None:
    x0 = {"a": np.array(1.0), "b": np.zeros(2)}
    calls = []

    def changing(d: dict) -> dict:
        calls.append(1)
        return {"r1": d["b"] - 1} if len(calls) == 1 else {"r2": d["b"] - 1}

    with pytest.raises(ValueError, match=r"missing 'r1'.*new 'r2'"):
        least_squares(changing, x0, jac="2-point")

    def reshaping(d: dict) -> dict:
        calls.append(1)
        return {"r": d["b"] - 1 if len(calls) < 3 else np.zeros(5)}

    calls.clear()
    with pytest.raises(ValueError, match="residual 'r' changed shape"):
        least_squares(reshaping, x0, jac="2-point")

    def bad_jac(d: dict) -> dict:
        return {"a": np.zeros(2), "b": np.zeros((2, 3))}

    with pytest.raises(ValueError, match="block for 'b' has shape"):
        least_squares(lambda d: d["b"] - d["a"], x0, jac=bad_jac)
    with pytest.raises(ValueError, match="missing key"):
        least_squares(lambda d: d["b"] - d["a"], x0, jac=lambda d: {"a": np.ones(2)})
    with pytest.raises(ValueError, match="'autodiff' needs a framework"):
        least_squares(lambda d: d["b"] - d["a"], x0)
    with pytest.raises(ValueError, match="complex step"):
        least_squares(lambda d: d["b"] - d["a"], x0, jac="cs")
    with pytest.raises(ValueError, match="method must be"):
        least_squares(lambda d: d["b"], x0, jac="2-point", method="bfgs")
    with pytest.raises(TypeError, match="x0 must be a dict"):
        least_squares(lambda d: d, np.ones(2), jac="2-point")


@pytest.mark.parametrize("x_scale", [None, 2.0, "jac"])
def test_x_scale_reaches_scipy_only_when_given(monkeypatch, x_scale) -> None:
    """Left out, SciPy applies its own default (SciPy before 1.16 refuses ``x_scale=None``)."""
    seen: dict[str, Any] = {}
    real = scipy.optimize.least_squares

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(scipy.optimize, "least_squares", spy)
    kwargs = {} if x_scale is None else {"x_scale": x_scale}
    res = least_squares(lambda d: d["a"] - 3.0, {"a": np.zeros(2)}, jac="2-point", **kwargs)
    assert res.success and np.allclose(res.x["a"], 3.0)
    assert seen.get("x_scale", "absent") == ("absent" if x_scale is None else x_scale)

"""least_squares over dicts: the same iterates as SciPy on the flat problem, every framework."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st

from dict_minimize import least_squares
from tests.conftest import _MAKERS, Framework

T = np.linspace(-3.0, 3.0, 41)
TRUE = np.array([2.0, 0.4, 0.8])  # amplitude, centre, width
Y = TRUE[0] * np.exp(-((T - TRUE[1]) ** 2) / (2 * TRUE[2] ** 2)) + 0.01 * np.sin(7 * T)
START = np.array([1.5, 0.0, 1.0])
KEYS = ("amplitude", "centre", "width")
NP = _MAKERS["numpy"]()


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
    with pytest.raises(ValueError, match="Method 'lm' doesn't support bounds"):
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
    with pytest.raises(ValueError, match="`method` must be"):
        least_squares(lambda d: d["b"], x0, jac="2-point", method="bfgs")
    with pytest.raises(TypeError, match="x0 must be a dict"):
        least_squares(lambda d: d, np.ones(2), jac="2-point")


# SciPy's keywords, taken as SciPy takes them (the SciPy suite through the package:
# tools/scipy_shims/lsq_root.py)

LB, UB = np.array([0.0, -1.0, 0.1]), np.array([1.8, 1.0, 2.0])


@pytest.mark.parametrize(
    "bounds",
    [
        (LB, UB),
        scipy.optimize.Bounds(LB, UB),
        (dict(zip(KEYS, LB, strict=True)), dict(zip(KEYS, UB, strict=True))),
        scipy.optimize.Bounds(dict(zip(KEYS, LB, strict=True)), UB),
        {k: (lo, hi) for k, lo, hi in zip(KEYS, LB, UB, strict=True)},
    ],
    ids=["flat-pair", "flat-Bounds", "dict-pair", "dict-Bounds", "dict-of-pairs"],
)
def test_scipy_bounds_keyword(bounds: Any) -> None:
    ref = scipy.optimize.least_squares(flat_res, START, jac=flat_jac, bounds=(LB, UB))
    res = least_squares(gauss(NP), x0_of(NP), jac=block_jac(NP), bounds=bounds)
    np.testing.assert_allclose(np_point(res.x, NP), ref.x, rtol=0, atol=1e-12)
    assert res.nfev == ref.nfev and res.njev == ref.njev
    assert [int(res.active_mask[k]) for k in KEYS] == list(ref.active_mask)


def test_scipy_bounds_errors_keep_scipy_text_and_name_the_key() -> None:
    x0 = {"a": np.array(1.0), "b": np.array([0.5, 0.5])}

    def fun(d: dict) -> np.ndarray:
        return np.concatenate([[d["a"] - 2.0], d["b"]])

    with pytest.raises(ValueError, match="`bounds` must contain 2 elements"):
        least_squares(fun, x0, jac="2-point", bounds=(0.0, 1.0, 2.0))
    with pytest.raises(ValueError, match="Inconsistent shapes between bounds and `x0`"):
        least_squares(fun, x0, jac="2-point", bounds=(0.0, [1.0, 2.0]))
    with pytest.raises(
        ValueError, match=r"strictly less than each upper bound: x0\['b'\] at index \(1,\)"
    ):
        least_squares(fun, x0, jac="2-point", bounds=(0.0, [3.0, 2.0, 0.0]))
    with pytest.raises(ValueError, match=r"outside of provided bounds: x0\['a'\] is 1.0"):
        least_squares(fun, x0, jac="2-point", bounds={"a": (1.5, 3.0)})
    with pytest.raises(ValueError, match="Method 'lm' doesn't support bounds"):
        least_squares(fun, x0, jac="2-point", method="lm", bounds=(0.0, 3.0))
    with pytest.raises(TypeError, match=r"bounds\['a'\] is a float; expected an \(lb, ub\) pair"):
        least_squares(fun, x0, jac="2-point", bounds={"a": 1.0})
    with pytest.raises(TypeError, match="either as bounds= or as lb_dict/ub_dict"):
        least_squares(fun, x0, jac="2-point", bounds=(0, 3), lb_dict={"a": 0.0})
    with pytest.raises(ValueError, match=r"`x0` must be real: x0\['a'\] is complex"):
        least_squares(fun, {"a": np.array(1.0 + 0j)}, jac="2-point")
    # SciPy's closed test: a start on a bound is inside (trf then steps strictly inside)
    res = least_squares(fun, x0, jac="2-point", bounds=(0.5, 3.0))
    np.testing.assert_allclose(res.x["a"], 2.0, atol=1e-6)
    # an unbounded pair is no bounds at all, and so 'lm' takes it
    assert least_squares(fun, x0, jac="2-point", method="lm", bounds=(-np.inf, np.inf)).success


def test_complex_step_on_numpy_matches_scipy(fw: Framework) -> None:
    if fw.name != "numpy":
        with pytest.raises(ValueError, match="complex step"):
            least_squares(gauss(fw), x0_of(fw), jac="cs")
        return
    ref = scipy.optimize.least_squares(flat_res, START, jac="cs")
    res = least_squares(gauss(fw), x0_of(fw), jac="cs")
    np.testing.assert_allclose(np_point(res.x, fw), ref.x, rtol=0, atol=1e-12)
    assert res.nfev == ref.nfev and res.njev == ref.njev


def test_kwargs_callback_and_counts_as_scipy() -> None:
    def fun(d: dict, scale: float = 1.0, *, shift: float) -> np.ndarray:
        return scale * (d["x"] - shift)

    x0 = {"x": np.array([0.0, 1.0])}
    res = least_squares(fun, x0, jac="2-point", args=(2.0,), kwargs={"shift": 3.0})
    np.testing.assert_allclose(res.x["x"], [3.0, 3.0], atol=1e-8)
    with pytest.raises(TypeError):
        least_squares(fun, x0, jac="2-point", kwargs={"kaboom": 3.0})
    seen: list[Any] = []
    least_squares(fun, x0, jac="2-point", kwargs={"shift": 3.0}, callback=seen.append)
    assert seen and isinstance(seen[-1], dict) and seen[-1]["x"].shape == (2,)
    results: list[Any] = []

    def with_result(intermediate_result: Any) -> None:
        results.append(intermediate_result)

    least_squares(fun, x0, jac="2-point", kwargs={"shift": 3.0}, callback=with_result)
    assert results and isinstance(results[-1].x, dict) and results[-1].nit > 0

    def stop(intermediate_result: Any) -> None:
        raise StopIteration

    stopped = least_squares(gauss(NP), x0_of(NP), jac=block_jac(NP), callback=stop)
    ref = scipy.optimize.least_squares(flat_res, START, jac=flat_jac, callback=stop)
    assert stopped.status == ref.status == -2 and stopped.nfev == ref.nfev
    # 'lm' with finite differences: SciPy's njev is None, and so is ours
    lm = least_squares(fun, x0, jac="2-point", kwargs={"shift": 3.0}, method="lm")
    assert lm.njev is None
    # workers: SciPy's map-like callable for the finite differences
    par = least_squares(fun, x0, jac="2-point", kwargs={"shift": 3.0}, workers=map)
    ser = least_squares(fun, x0, jac="2-point", kwargs={"shift": 3.0})
    np.testing.assert_array_equal(par.x["x"], ser.x["x"])
    assert par.nfev == ser.nfev


@pytest.mark.parametrize("kind", ["sparse", "operator"])
def test_sparse_and_operator_jacobians_pass_to_scipy(kind: str) -> None:
    from scipy.sparse import csr_array
    from scipy.sparse.linalg import aslinearoperator

    def flat_jac_kind(x: np.ndarray) -> Any:
        j = csr_array(flat_jac(x))
        return j if kind == "sparse" else aslinearoperator(j)

    ref = scipy.optimize.least_squares(flat_res, START, jac=flat_jac_kind)
    res = least_squares(gauss(NP), x0_of(NP), jac=lambda d: flat_jac_kind(np_point(d, NP)))
    np.testing.assert_allclose(np_point(res.x, NP), ref.x, rtol=0, atol=1e-10)
    assert res.nfev == ref.nfev and res.njev == ref.njev
    assert type(res.jac) is type(ref.jac)
    with pytest.raises(ValueError, match="The return value of `jac` has wrong shape"):
        least_squares(gauss(NP), x0_of(NP), jac=lambda d: csr_array(np.ones((3, 3))))


def test_float32_residuals_keep_scipy_steps() -> None:
    t = np.linspace(0, 1, 50, dtype=np.float32)
    y = (0.3 + 0.7 * t + 0.01 * np.sin(9 * t)).astype(np.float32)

    def flat(p: np.ndarray) -> np.ndarray:
        return (p[0] + p[1] * t - y).astype(np.float32)

    ref = scipy.optimize.least_squares(flat, np.array([1.0, 1.0]))
    res = least_squares(
        lambda d: flat(np.array([d["a"], d["b"]])),
        {"a": np.array(1.0), "b": np.array(1.0)},
        jac="2-point",
    )
    assert res.nfev == ref.nfev
    np.testing.assert_allclose([res.x["a"], res.x["b"]], ref.x, rtol=0, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    shape_a=st.sampled_from([(), (1,), (3,), (2, 2)]),
    shape_b=st.sampled_from([(), (2,), (1, 3)]),
    lo=st.floats(-5, 0, allow_nan=False),
    width=st.floats(0.5, 5, allow_nan=False),
    data=st.data(),
)
def test_bounds_forms_flatten_alike(
    shape_a: tuple, shape_b: tuple, lo: float, width: float, data: Any
) -> None:
    """Every spelling of the same bounds gives the same flat vectors (no solve)."""
    from dict_minimize._problem.prepare import prepare
    from dict_minimize._problem.scipy_bounds import least_squares_bounds

    x0 = {"a": np.zeros(shape_a), "b": np.zeros(shape_b)}
    prep = prepare(x0, None, None, None)
    per_key = {
        k: data.draw(st.sampled_from([lo, np.full(np.shape(v), lo)]), label=k)
        for k, v in x0.items()
    }
    hi = lo + width
    flat_lb = np.concatenate([np.broadcast_to(per_key[k], np.shape(x0[k])).ravel() for k in x0])
    want = scipy.optimize.Bounds(flat_lb, np.full(flat_lb.size, hi))
    forms = [
        (flat_lb, hi),
        (per_key, {k: hi for k in x0}),
        scipy.optimize.Bounds(per_key, hi),
        scipy.optimize.Bounds(flat_lb, {k: hi for k in x0}),
        {k: (per_key[k], hi) for k in x0},
    ]
    for form in forms:
        got = least_squares_bounds(form, prep.layout, prep.backend)
        assert got is not None
        np.testing.assert_array_equal(got.lb, want.lb)
        np.testing.assert_array_equal(got.ub, want.ub)


@pytest.mark.parametrize("x_scale", [None, 2.0, "jac"])
def test_x_scale_reaches_scipy_only_when_given(monkeypatch, x_scale) -> None:
    """Left out, SciPy applies its own default (SciPy before 1.16 refuses ``x_scale=None``)."""
    seen: dict[str, Any] = {}
    import dict_minimize._solvers.least_squares as module

    real = module.scipy_least_squares

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "scipy_least_squares", spy)
    kwargs = {} if x_scale is None else {"x_scale": x_scale}
    res = least_squares(lambda d: d["a"] - 3.0, {"a": np.zeros(2)}, jac="2-point", **kwargs)
    assert res.success and np.allclose(res.x["a"], 3.0)
    assert seen.get("x_scale", "absent") == ("absent" if x_scale is None else x_scale)

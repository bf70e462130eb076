"""Automatic differentiation backends (``jac='autodiff'``), written once for every framework.

Each framework's ``scalar_ad`` / ``vector_ad`` builder is checked against central finite
differences on fixed random points, for reuse of the forward pass (how many times the user's
function runs), dtypes, unused keys and the errors a user can cause. A framework without autodiff
(NumPy, or one whose builders have not landed) is skipped.
"""

from __future__ import annotations

import importlib
from collections import OrderedDict
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from dict_minimize import minimize
from dict_minimize._structure.layout import Layout, make_layout
from dict_minimize.backends import get_backend
from tests.conftest import Framework, get_framework

#: whether ``jit=True`` traces the user's function once (later points reuse the trace)
TRACES_UNDER_JIT = {"torch": False, "tensorflow": True, "jax": True}
JITS = [None, True]
H = 1e-6  # central finite-difference step (float64)
RTOL, ATOL = 1e-6, 1e-7  # finite-difference comparisons


# ---------------------------------------------------------------- problems, in each framework


def ops(fw: Framework) -> SimpleNamespace:
    """The few framework operations the test problems use."""
    if fw.name == "torch":
        import torch

        return SimpleNamespace(
            exp=torch.exp,
            sin=torch.sin,
            sum=torch.sum,
            stack=torch.stack,
            reshape=torch.reshape,
            complex=lambda t: t * (1 + 1j),
        )
    if fw.name == "tensorflow":
        import tensorflow as tf

        return SimpleNamespace(
            exp=tf.exp,
            sin=tf.sin,
            sum=tf.reduce_sum,
            stack=tf.stack,
            reshape=tf.reshape,
            complex=lambda t: tf.complex(t, t),
        )
    import jax.numpy as jnp

    return SimpleNamespace(
        exp=jnp.exp,
        sin=jnp.sin,
        sum=jnp.sum,
        stack=jnp.stack,
        reshape=jnp.reshape,
        complex=lambda t: t * (1 + 1j),
    )


def make_x0(fw: Framework, dtype: str = "float64") -> OrderedDict:
    """A 2-D, a 0-d, an empty (0, 2) and a 1-D entry, in that order."""
    return OrderedDict(
        [
            ("w", fw.tensor([[0.1, -0.2, 0.3], [1.0, 2.0, -1.0]], dtype)),
            ("b", fw.tensor(1.5, dtype)),
            ("empty", fw.tensor(np.zeros((0, 2)), dtype)),
            ("v", fw.tensor([0.7, -0.4], dtype)),
        ]
    )


def make_objective(fw: Framework) -> Callable:
    """A non-quadratic scalar mixing the keys; ``scale`` comes through ``args``."""
    o = ops(fw)

    def objective(d: Any, scale: float) -> Any:
        w, b, v, e = d["w"], d["b"], d["v"], d["empty"]
        return (
            o.sum(o.exp(0.1 * w) * b**2)
            + scale * o.sum(o.sin(v) * v)
            + o.sum(w**2) * b
            + o.sum(e**2)
        )

    return objective


def make_constraint(fw: Framework, kind: str) -> Callable:
    """Vector-valued functions of the dict: a 0-d, a (3,) and a (2, 2) output."""
    o = ops(fw)

    def constraint(d: Any, scale: float) -> Any:
        w, b, v = d["w"], d["b"], d["v"]
        parts = [
            o.sum(w * w) * b,
            scale * o.sum(o.sin(v)) * b**3,
            o.exp(w[0, 1] * v[0]),
            o.sum(w[1] * w[0]) + v[1] ** 3,
        ]
        if kind == "scalar":
            return parts[0] * parts[2]
        if kind == "vector":
            return o.stack(parts[:3])
        return o.reshape(o.stack(parts), (2, 2))

    return constraint


# --------------------------------------------------------------------------------- helpers


def build_scalar(
    fw: Framework,
    fun: Callable,
    *,
    x0: Any = None,
    args: tuple = (0.7,),
    jit: bool | None = None,
    second_order: bool = False,
) -> tuple[Any, Layout]:
    """``backend.scalar_ad`` for ``fun`` on ``x0`` (default ``make_x0``), or skip."""
    backend = get_backend(fw.name)
    if backend.scalar_ad is None:
        pytest.skip(f"the {fw.name} backend has no autodiff")
    layout = make_layout(make_x0(fw) if x0 is None else x0, backend)
    codec = backend.make_codec(layout)
    ad = backend.scalar_ad(layout, codec, fun, args, jit=jit, second_order=second_order)
    return ad, layout


def build_vector(
    fw: Framework,
    cfun: Callable,
    *,
    x0: Any = None,
    args: tuple = (0.7,),
    jit: bool | None = None,
) -> tuple[Any, Layout]:
    backend = get_backend(fw.name)
    if backend.vector_ad is None:
        pytest.skip(f"the {fw.name} backend has no autodiff")
    layout = make_layout(make_x0(fw) if x0 is None else x0, backend)
    codec = backend.make_codec(layout)
    return backend.vector_ad(layout, codec, cfun, args, jit=jit), layout


def flat(fw: Framework, x0: Any) -> np.ndarray:
    return np.concatenate([fw.to_numpy(x0[k]).ravel() for k in x0])


def random_point(fw: Framework, seed: int = 0) -> np.ndarray:
    base = flat(fw, make_x0(fw))
    return base + 0.3 * np.random.default_rng(seed).normal(size=base.size)


def fd(f: Callable[[np.ndarray], Any], x: np.ndarray, h: float = H) -> np.ndarray:
    """Central differences: column ``i`` is ``d f / d x_i`` (a vector for scalar ``f``)."""
    cols = []
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        cols.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * h))
    return np.stack(cols, axis=-1)


def assert_vec(a: Any, n: int) -> None:
    assert isinstance(a, np.ndarray) and a.dtype == np.float64 and a.shape == (n,)


# ------------------------------------------------------------------------- scalar objective


@pytest.mark.parametrize("jit", JITS)
def test_value_and_grad_match_finite_differences(fw: Framework, jit: bool | None) -> None:
    ad, layout = build_scalar(fw, make_objective(fw), jit=jit)
    ref, _ = build_scalar(fw, make_objective(fw), jit=False)
    for seed in range(3):
        x = random_point(fw, seed)
        value, grad = ad.value_and_grad(x)
        assert type(value) is float
        assert_vec(grad, layout.n)
        np.testing.assert_allclose(
            grad, fd(lambda y: ref.value_and_grad(y)[0], x), rtol=RTOL, atol=ATOL
        )
        assert value == pytest.approx(ref.value_and_grad(x)[0], rel=1e-12)


@pytest.mark.parametrize("second_order", [False, True])
@pytest.mark.parametrize("jit", JITS)
def test_hvp_and_hess_match_finite_differences(
    fw: Framework, jit: bool | None, second_order: bool
) -> None:
    ad, layout = build_scalar(fw, make_objective(fw), jit=jit, second_order=second_order)
    ref, _ = build_scalar(fw, make_objective(fw), jit=False)
    n = layout.n
    rng = np.random.default_rng(1)
    for seed in range(2):
        x = random_point(fw, seed)
        ad.value_and_grad(x)
        fd_hess = fd(lambda y: ref.value_and_grad(y)[1], x)
        for _ in range(2):
            p = rng.normal(size=n)
            hv = ad.hvp(x, p)
            assert_vec(hv, n)
            np.testing.assert_allclose(hv, fd_hess @ p, rtol=RTOL, atol=ATOL)
        hess = ad.hess(x)
        assert isinstance(hess, np.ndarray) and hess.dtype == np.float64
        assert hess.shape == (n, n)
        np.testing.assert_array_equal(hess, hess.T)
        np.testing.assert_allclose(hess, fd_hess, rtol=RTOL, atol=ATOL)
        stacked = np.stack([ad.hvp(x, e) for e in np.eye(n)], axis=1)
        np.testing.assert_allclose(hess, stacked, rtol=1e-12, atol=1e-12)


def test_second_order_reuses_the_forward_pass(fw: Framework) -> None:
    """Eager mode: products and the Hessian at the point of the last gradient run no new fun."""
    counted = {"n": 0}
    inner = make_objective(fw)

    def fun(d: Any, scale: float) -> Any:
        counted["n"] += 1
        return inner(d, scale)

    ad, layout = build_scalar(fw, fun, jit=False, second_order=True)
    rng = np.random.default_rng(2)
    x = random_point(fw, 0)
    x_before = x.copy()
    ad.value_and_grad(x)
    for _ in range(3):
        ad.hvp(x, rng.normal(size=layout.n))
    ad.hess(x)
    assert ad.fun_calls == 1 == counted["n"]
    np.testing.assert_array_equal(x, x_before)

    # a new point (here SciPy's buffer changed in place) recomputes, once
    x2 = random_point(fw, 1)
    x[:] = x2
    p = rng.normal(size=layout.n)
    hv = ad.hvp(x, p)
    assert ad.fun_calls == 2 == counted["n"]
    fresh, _ = build_scalar(fw, inner, jit=False, second_order=True)
    np.testing.assert_allclose(hv, fresh.hvp(x2, p), rtol=1e-12, atol=1e-12)


def test_first_order_hvp_recomputes(fw: Framework) -> None:
    ad, layout = build_scalar(fw, make_objective(fw), jit=False, second_order=False)
    x = random_point(fw, 0)
    ad.value_and_grad(x)
    assert ad.fun_calls == 1
    ad.hvp(x, np.ones(layout.n))
    assert ad.fun_calls == 2


def test_hvp_without_gradient_first(fw: Framework) -> None:
    """hvp and hess work at a point never seen by value_and_grad (no cache)."""
    ad, layout = build_scalar(fw, make_objective(fw), jit=False, second_order=True)
    ref, _ = build_scalar(fw, make_objective(fw), jit=False)
    x = random_point(fw, 3)
    fd_hess = fd(lambda y: ref.value_and_grad(y)[1], x)
    np.testing.assert_allclose(ad.hess(x), fd_hess, rtol=RTOL, atol=ATOL)
    p = np.linspace(-1.0, 1.0, layout.n)
    np.testing.assert_allclose(ad.hvp(x, p), fd_hess @ p, rtol=RTOL, atol=ATOL)


def test_jit_traces_once(fw: Framework) -> None:
    """Under jit the count is of traces: a second point reuses them (PyTorch ignores jit)."""
    ad, layout = build_scalar(fw, make_objective(fw), jit=True, second_order=True)
    calls = []
    p = np.ones(layout.n)
    for seed in range(3):
        x = random_point(fw, seed)
        ad.value_and_grad(x)
        ad.hvp(x, p)
        ad.hess(x)
        calls.append(ad.fun_calls)
    assert calls[0] >= 1
    if TRACES_UNDER_JIT[fw.name]:
        assert calls[2] == calls[1] == calls[0]
    else:
        assert calls == [1, 2, 3]


@pytest.mark.parametrize("jit", JITS)
def test_float32_entries_give_float64_results(fw: Framework, jit: bool | None) -> None:
    x0 = make_x0(fw, "float32")
    ad, layout = build_scalar(fw, make_objective(fw), x0=x0, jit=jit, second_order=True)
    ref, _ = build_scalar(fw, make_objective(fw), jit=False, second_order=True)
    x = random_point(fw, 0).astype(np.float32).astype(np.float64)
    value, grad = ad.value_and_grad(x)
    value64, grad64 = ref.value_and_grad(x)
    assert type(value) is float and value == pytest.approx(value64, rel=1e-5)
    assert_vec(grad, layout.n)
    np.testing.assert_allclose(grad, grad64, rtol=1e-4, atol=1e-5)
    p = np.linspace(-1.0, 1.0, layout.n)
    hv = ad.hvp(x, p)
    assert_vec(hv, layout.n)
    np.testing.assert_allclose(hv, ref.hvp(x, p), rtol=1e-4, atol=1e-4)
    hess = ad.hess(x)
    assert hess.dtype == np.float64
    np.testing.assert_allclose(hess, ref.hess(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_entries(fw: Framework, dtype: str) -> None:
    x0 = make_x0(fw, dtype)
    ad, layout = build_scalar(fw, make_objective(fw), x0=x0, jit=False)
    ref, _ = build_scalar(fw, make_objective(fw), jit=False)
    x = random_point(fw, 0)
    value, grad = ad.value_and_grad(x)
    assert type(value) is float
    assert_vec(grad, layout.n)
    grad64 = ref.value_and_grad(x)[1]
    np.testing.assert_allclose(grad, grad64, rtol=0.1, atol=0.05 * np.abs(grad64).max())


@pytest.mark.parametrize("jit", JITS)
def test_unused_keys_get_zero_gradient(fw: Framework, jit: bool | None) -> None:
    o = ops(fw)
    ad, layout = build_scalar(fw, lambda d, s: o.sum(o.exp(d["w"])) * s, jit=jit, second_order=True)
    x = random_point(fw, 0)
    _, grad = ad.value_and_grad(x)
    w = layout.slice_of(layout.keys.index("w"))
    np.testing.assert_allclose(grad[w], 0.7 * np.exp(x[w]), rtol=1e-12)
    grad[w] = 0.0
    np.testing.assert_array_equal(grad, 0.0)
    hv = ad.hvp(x, np.ones(layout.n))
    np.testing.assert_allclose(hv[w], 0.7 * np.exp(x[w]), rtol=1e-12)
    hv[w] = 0.0
    np.testing.assert_array_equal(hv, 0.0)
    hess = ad.hess(x)
    np.testing.assert_allclose(np.diag(hess)[w], 0.7 * np.exp(x[w]), rtol=1e-12)


@pytest.mark.parametrize("jit", JITS)
def test_value_independent_of_x_has_zero_derivatives(fw: Framework, jit: bool | None) -> None:
    ad, layout = build_scalar(
        fw, lambda d, s: fw.tensor(3.0, "float64") * s, jit=jit, second_order=True
    )
    x = random_point(fw, 0)
    value, grad = ad.value_and_grad(x)
    assert value == pytest.approx(2.1)
    np.testing.assert_array_equal(grad, np.zeros(layout.n))
    np.testing.assert_array_equal(ad.hvp(x, np.ones(layout.n)), np.zeros(layout.n))
    np.testing.assert_array_equal(ad.hess(x), np.zeros((layout.n, layout.n)))


@pytest.mark.parametrize("jit", JITS)
def test_many_variables(fw: Framework, jit: bool | None) -> None:
    """n = 40: dense Hessian and Jacobian with more rows than a small problem (analytic)."""
    o = ops(fw)
    n = 40
    x0 = {"a": fw.tensor(np.zeros(n), "float64")}
    ad, _ = build_scalar(fw, lambda d, s: o.sum(o.exp(d["a"]) * d["a"]) * s, x0=x0, jit=jit)
    vec, _ = build_vector(fw, lambda d, s: d["a"] ** 3 * s, x0=x0, jit=jit)
    x = np.random.default_rng(5).normal(size=n)
    np.testing.assert_allclose(ad.value_and_grad(x)[1], 0.7 * (x + 1) * np.exp(x), rtol=1e-12)
    np.testing.assert_allclose(ad.hess(x), np.diag(0.7 * (x + 2) * np.exp(x)), rtol=1e-12)
    np.testing.assert_allclose(vec.jacobian(x), np.diag(2.1 * x**2), rtol=1e-12)
    v, p = np.linspace(-1, 1, n), np.linspace(2, 3, n)
    np.testing.assert_allclose(vec.vhp(x, v, p), 4.2 * x * v * p, rtol=1e-12)


def test_jit_must_be_a_bool_or_none(fw: Framework) -> None:
    with pytest.raises(TypeError, match=r"jit must be True, False or None; got a str"):
        build_scalar(fw, make_objective(fw), jit="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"jit must be True, False or None; got a str"):
        build_vector(fw, make_constraint(fw, "vector"), jit="yes")  # type: ignore[arg-type]


def test_torch_falls_back_to_a_loop_without_batching(monkeypatch: pytest.MonkeyPatch) -> None:
    """Operations without a vmap rule: the Hessian and Jacobian come from one backward per row."""
    pytest.importorskip("torch")
    from dict_minimize.backends import torch_ad

    fw = get_framework("torch")
    ref, _ = build_scalar(fw, make_objective(fw), second_order=True)
    vref, _ = build_vector(fw, make_constraint(fw, "vector"))
    x = random_point(fw, 0)
    expected_hess, expected_jac = ref.hess(x), vref.jacobian(x)

    real_grad = torch_ad._grad

    def no_batching(*args: Any, batched: bool = False, **kwargs: Any) -> Any:
        if batched:
            raise RuntimeError("no batching rule (simulated)")
        return real_grad(*args, **kwargs)

    monkeypatch.setattr(torch_ad, "_grad", no_batching)
    ad, _ = build_scalar(fw, make_objective(fw), second_order=True)
    vec, _ = build_vector(fw, make_constraint(fw, "vector"))
    np.testing.assert_allclose(ad.hess(x), expected_hess, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(vec.jacobian(x), expected_jac, rtol=1e-12, atol=1e-12)
    assert ad.fun_calls == vec.fun_calls == 1


# -------------------------------------------------------------------- vector (constraints)


@pytest.mark.parametrize("kind, m", [("scalar", 1), ("vector", 3), ("matrix", 4)])
@pytest.mark.parametrize("jit", JITS)
def test_vector_value_jacobian_vhp(fw: Framework, jit: bool | None, kind: str, m: int) -> None:
    ad, layout = build_vector(fw, make_constraint(fw, kind), jit=jit)
    ref, _ = build_vector(fw, make_constraint(fw, kind), jit=False)
    n = layout.n
    rng = np.random.default_rng(4)
    for seed in range(2):
        x = random_point(fw, seed)
        value = ad.value(x)
        assert_vec(value, m)
        jac = ad.jacobian(x)
        assert isinstance(jac, np.ndarray) and jac.dtype == np.float64 and jac.shape == (m, n)
        np.testing.assert_allclose(jac, fd(ref.value, x), rtol=RTOL, atol=ATOL)
        v, p = rng.normal(size=m), rng.normal(size=n)
        hv = ad.vhp(x, v, p)
        assert_vec(hv, n)
        fd_vh = fd(lambda y: v @ ref.jacobian(y), x)  # noqa: B023 (called right here)
        np.testing.assert_allclose(hv, fd_vh @ p, rtol=RTOL, atol=ATOL)


def test_vector_jacobian_reuses_value(fw: Framework) -> None:
    ad, _ = build_vector(fw, make_constraint(fw, "vector"), jit=False)
    x = random_point(fw, 0)
    ad.value(x)
    ad.jacobian(x)
    assert ad.fun_calls == 1
    ad.value(random_point(fw, 1))
    assert ad.fun_calls == 2


def test_vector_float32_entries(fw: Framework) -> None:
    ad, _ = build_vector(fw, make_constraint(fw, "vector"), x0=make_x0(fw, "float32"))
    ref, _ = build_vector(fw, make_constraint(fw, "vector"))
    x = random_point(fw, 0).astype(np.float32).astype(np.float64)
    assert_vec(ad.value(x), 3)
    np.testing.assert_allclose(ad.value(x), ref.value(x), rtol=1e-5)
    jac = ad.jacobian(x)
    assert jac.dtype == np.float64
    np.testing.assert_allclose(jac, ref.jacobian(x), rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- user errors


@pytest.mark.parametrize("jit", JITS)
def test_scalar_errors(fw: Framework, jit: bool | None) -> None:
    o = ops(fw)
    cases = [
        (lambda d, s: 1.5, TypeError, r"must return a scalar .*; it returned a float"),
        (lambda d, s: np.float64(1.5), TypeError, r"it returned a numpy\.float64"),
        (lambda d, s: d["w"][0] * s, ValueError, r"has shape \(3,\); expected a scalar.*\.sum\(\)"),
        (lambda d, s: o.complex(d["b"]), TypeError, r"complex"),
    ]
    for fun, exc, match in cases:
        ad, layout = build_scalar(fw, fun, jit=jit, second_order=True)
        x = random_point(fw, 0)
        with pytest.raises(exc, match=match):
            ad.value_and_grad(x)
        fresh, _ = build_scalar(fw, fun, jit=jit, second_order=True)
        with pytest.raises(exc, match=match):
            fresh.hvp(x, np.ones(layout.n))


@pytest.mark.parametrize("jit", JITS)
def test_vector_errors(fw: Framework, jit: bool | None) -> None:
    o = ops(fw)
    cases = [
        (lambda d, s: [1.0, 2.0], TypeError, r"returned a list"),
        (lambda d, s: 2.0, TypeError, r"returned a float"),
        (lambda d, s: o.complex(d["v"]), TypeError, r"complex"),
        (lambda d, s: d["v"] > 0, TypeError, r"non-floating tensor .*; expected a real floating"),
    ]
    for cfun, exc, match in cases:
        ad, _ = build_vector(fw, cfun, jit=jit)
        x = random_point(fw, 0)
        with pytest.raises(exc, match=match):
            ad.value(x)
        fresh, _ = build_vector(fw, cfun, jit=jit)
        with pytest.raises(exc, match=match):
            fresh.jacobian(x)


# ------------------------------------------------------------------------ inputs untouched


def test_inputs_are_not_mutated(fw: Framework) -> None:
    x0 = make_x0(fw)
    before = {k: fw.to_numpy(v).copy() for k, v in x0.items()}
    ad, layout = build_scalar(fw, make_objective(fw), x0=x0, second_order=True)
    vec, _ = build_vector(fw, make_constraint(fw, "vector"), x0=x0)
    x = random_point(fw, 0)
    x_copy = x.copy()
    p = np.ones(layout.n)
    ad.value_and_grad(x)
    ad.hvp(x, p)
    ad.hess(x)
    vec.value(x)
    vec.jacobian(x)
    vec.vhp(x, np.ones(3), p)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(p, np.ones(layout.n))
    for k, v in x0.items():
        np.testing.assert_array_equal(fw.to_numpy(v), before[k])
        if fw.name == "torch":
            assert not v.requires_grad and v.grad is None


def test_results_do_not_alias_scipy_vector(fw: Framework) -> None:
    """Tensors built from x must not share memory with it: SciPy reuses its buffers."""
    ad, layout = build_scalar(fw, make_objective(fw), jit=False, second_order=True)
    x = random_point(fw, 0)
    p = np.linspace(-1.0, 1.0, layout.n)
    ad.value_and_grad(x)
    expected = ad.hvp(x.copy(), p)
    _, grad = ad.value_and_grad(x)
    grad[:] = 123.0  # our returned arrays are ours to modify too
    np.testing.assert_allclose(ad.hvp(x, p), expected, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------- dict-level value_and_grad


def api_value_and_grad(fw: Framework) -> Callable:
    module = importlib.import_module(f"dict_minimize.{fw.name}_api")
    helper = getattr(module, "value_and_grad", None)
    if helper is None:
        pytest.skip(f"dict_minimize.{fw.name}_api has no value_and_grad")
    assert "value_and_grad" in module.__all__
    return helper


def test_api_value_and_grad(fw: Framework) -> None:
    helper = api_value_and_grad(fw)
    fun = make_objective(fw)
    g = helper(fun)
    x0 = make_x0(fw)
    value, grads = g(x0, 0.7)
    assert fw.type_check(value) and tuple(value.shape) == ()
    if fw.name == "torch":
        assert not value.requires_grad
    assert type(grads) is OrderedDict and list(grads) == list(x0)
    for k in x0:
        assert fw.type_check(grads[k]) and tuple(grads[k].shape) == tuple(x0[k].shape)
    ref, layout = build_scalar(fw, fun, jit=False)
    x = flat(fw, x0)
    got = np.concatenate([fw.to_numpy(grads[k]).ravel() for k in layout.keys])
    np.testing.assert_allclose(got, ref.value_and_grad(x)[1], rtol=1e-12)
    assert fw.to_numpy(value) == pytest.approx(ref.value_and_grad(x)[0], rel=1e-12)


def test_api_value_and_grad_drives_minimize(fw: Framework) -> None:
    helper = api_value_and_grad(fw)
    o = ops(fw)

    def fun(d: Any, target: float) -> Any:
        return o.sum((d["w"] - target) ** 2) + (d["b"] - target) ** 2 + o.sum(d["v"] ** 2) * 0

    x0 = make_x0(fw)
    res = minimize(helper(fun), x0, args=(0.25,), method="L-BFGS-B")
    assert res.success, res.message
    np.testing.assert_allclose(fw.to_numpy(res.x["w"]), 0.25, atol=1e-6)
    np.testing.assert_allclose(fw.to_numpy(res.jac["v"]), 0.0)


def test_api_value_and_grad_errors(fw: Framework) -> None:
    helper = api_value_and_grad(fw)
    with pytest.raises(TypeError, match=r"returned a float"):
        helper(lambda d: 1.0)(make_x0(fw))
    with pytest.raises(ValueError, match=r"shape \(2,\); expected a scalar"):
        helper(lambda d: d["v"] * 2)(make_x0(fw))

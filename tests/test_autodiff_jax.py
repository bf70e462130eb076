"""JAX-only autodiff behaviour: jit vs eager, the compile cache, tracing hints, float32 without
x64, devices and shardings. The behaviour shared with the other frameworks is in
``test_autodiff.py``."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import threading
import weakref
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

from dict_minimize import minimize  # noqa: E402
from dict_minimize._structure.layout import Layout, make_layout  # noqa: E402
from dict_minimize.backends import get_backend, jax_ad, jax_trace  # noqa: E402
from dict_minimize.jax_api import value_and_grad  # noqa: E402

BACKEND = get_backend("jax")


def x0_of(dtype: Any = None) -> OrderedDict:
    dtype = dtype or jnp.float64
    return OrderedDict(
        [
            ("w", jnp.asarray([[0.1, -0.2, 0.3], [1.0, 2.0, -1.0]], dtype=dtype)),
            ("b", jnp.asarray(1.5, dtype=dtype)),
            ("v", jnp.asarray([0.7, -0.4], dtype=dtype)),
        ]
    )


def objective(d: Any, scale: Any) -> Any:
    w, b, v = d["w"], d["b"], d["v"]
    return jnp.sum(jnp.exp(0.1 * w) * b**2) + scale * jnp.sum(jnp.sin(v) * v) + jnp.sum(w**2) * b


def constraint(d: Any, scale: Any) -> Any:
    w, b, v = d["w"], d["b"], d["v"]
    return jnp.stack([jnp.sum(w * w) * b, scale * jnp.sum(jnp.sin(v)) * b**3])


def layout_of(x0: Any) -> Layout:
    return make_layout(x0, BACKEND)


def point(layout: Layout, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=layout.n)


def test_jit_and_eager_agree() -> None:
    with jax.enable_x64(True):
        layout = layout_of(x0_of())
        x, p = point(layout, 0), point(layout, 1)
        results: list[tuple[Any, ...]] = []
        for jit, second_order in [(None, False), (True, True), (False, False), (False, True)]:
            ad = jax_ad.scalar_ad(
                layout, None, objective, (0.7,), jit=jit, second_order=second_order
            )
            value, grad = ad.value_and_grad(x)
            results.append((value, grad, ad.hvp(x, p), ad.hess(x)))
        cons: list[tuple[Any, ...]] = []
        for jit in (True, False):
            c = jax_ad.vector_ad(layout, None, constraint, (0.7,), jit=jit)
            cons.append((c.value(x), c.jacobian(x), c.vhp(x, np.array([0.3, -2.0]), p)))
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    for a, b in zip(*cons, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_eager_second_order_calls_fun_once_per_point() -> None:
    calls = []

    def fun(d: Any, scale: Any) -> Any:
        calls.append(1)
        return objective(d, scale)

    with jax.enable_x64(True):
        layout = layout_of(x0_of())
        ad = jax_ad.scalar_ad(layout, None, fun, (0.7,), jit=False, second_order=True)
        x = point(layout)
        value, _ = ad.value_and_grad(x)
        hvs = [ad.hvp(x, e) for e in np.eye(layout.n)[:3]]
        hess = ad.hess(x)
        assert ad.fun_calls == 1 == len(calls)
        np.testing.assert_allclose(np.stack(hvs, axis=1), hess[:, :3], rtol=1e-12, atol=1e-12)
        # the same point again: nothing new; a new point: one call
        assert ad.value_and_grad(x.copy())[0] == value
        assert ad.fun_calls == 1
        ad.value_and_grad(x + 1.0)
        assert ad.fun_calls == 2 == len(calls)


def test_jit_cache_reuses_traces_across_calls() -> None:
    calls = []

    def fun(d: Any, scale: Any) -> Any:
        calls.append(1)
        return objective(d, scale)

    layout = layout_of(x0_of(jnp.float32))
    x = point(layout)
    first = jax_ad.scalar_ad(layout, None, fun, (0.7,))
    v1, _ = first.value_and_grad(x)
    assert first.fun_calls == 1 == len(calls)
    # the same fun and layout, new data for the dynamic argument: no new trace
    second = jax_ad.scalar_ad(layout_of(x0_of(jnp.float32)), None, fun, (1.4,))
    v2, _ = second.value_and_grad(x)
    assert second.fun_calls == 0 and len(calls) == 1
    assert v2 != v1
    # a new layout (another shape) is a new signature
    third = jax_ad.scalar_ad(
        layout_of({**x0_of(jnp.float32), "v": jnp.zeros(3)}), None, fun, (1.0,)
    )
    third.value_and_grad(np.zeros(10))
    assert third.fun_calls == 1


def test_static_arguments_steer_python_control_flow() -> None:
    def fun(d: Any, power: int, label: str) -> Any:
        assert label == "sq"
        return jnp.sum(d["x"] ** power) if power > 1 else jnp.sum(d["x"])

    layout = layout_of({"x": jnp.ones(2)})
    x = np.array([1.0, 2.0])
    square = jax_ad.scalar_ad(layout, None, fun, (2, "sq"))
    linear = jax_ad.scalar_ad(layout, None, fun, (1, "sq"))
    assert square.value_and_grad(x)[0] == 5.0
    assert linear.value_and_grad(x)[0] == 3.0
    assert square.fun_calls == linear.fun_calls == 1
    # True == 1 but is a different static value
    assert jax_ad.scalar_ad(layout, None, fun, (True, "sq")).value_and_grad(x)[0] == 3.0

    # an unhashable static argument is cached by identity
    def scaled(d: Any, o: _Obj) -> Any:
        return jnp.sum(d["x"] * o.k)

    obj = _Obj()
    first = jax_ad.scalar_ad(layout, None, scaled, (obj,))
    assert first.value_and_grad(x)[0] == 6.0 and first.fun_calls == 1
    again = jax_ad.scalar_ad(layout, None, scaled, (obj,))
    assert again.value_and_grad(x)[0] == 6.0 and again.fun_calls == 0
    other = jax_ad.scalar_ad(layout, None, scaled, (_Obj(),))
    assert other.value_and_grad(x)[0] == 6.0 and other.fun_calls == 1


class _Obj:
    k = 2.0
    __hash__ = None  # type: ignore[assignment]


def test_fresh_lambdas_leave_nothing_in_the_cache() -> None:
    gc.collect()
    before = jax_ad.cache_size()
    layout = layout_of({"x": jnp.ones(2)})
    entries = []
    for i in range(200):
        ad = jax_ad.scalar_ad(layout, None, lambda d, c: jnp.sum(d["x"] ** 2) * c, (float(i),))
        if i % 10 == 0:  # compiling each one is slow; every tenth is compiled and run
            assert ad.value_and_grad(np.ones(2))[0] == 2.0 * i
        entries.append(weakref.ref(ad._compiled))
        del ad
    gc.collect()
    assert jax_ad.cache_size() == before
    assert all(ref() is None for ref in entries)


def test_cache_is_bounded_per_fun_and_thread_safe() -> None:
    def fun(d: Any) -> Any:
        return jnp.sum(d["x"] ** 2)

    layouts = [layout_of({"x": jnp.ones(k)}) for k in range(1, jax_ad.CACHE_PER_FUN + 4)]
    for layout in layouts:
        jax_ad.scalar_ad(layout, None, fun, ())
    assert len(jax_trace._CACHE[fun]) == jax_ad.CACHE_PER_FUN

    def g(d: Any) -> Any:
        return jnp.sum(d["x"])

    built: list[Any] = []
    threads = [
        threading.Thread(target=lambda: built.append(jax_ad.scalar_ad(layouts[0], None, g, ())))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(ad._compiled) for ad in built}) == 1
    assert len(jax_trace._CACHE[g]) == 1


def test_tracing_error_gets_a_jit_hint() -> None:
    def fun(d: Any) -> Any:
        if d["x"][0] > 0:  # Python control flow on a value
            return jnp.sum(d["x"] ** 2)
        return jnp.sum(d["x"])

    layout = layout_of({"x": jnp.ones(2)})
    ad = jax_ad.scalar_ad(layout, None, fun, ())
    with pytest.raises(jax.errors.TracerBoolConversionError) as info:
        ad.value_and_grad(np.ones(2))
    assert "pass jit=False to run it eagerly" in "\n".join(info.value.__notes__)
    for second_order in (False, True):
        eager = jax_ad.scalar_ad(layout, None, fun, (), jit=False, second_order=second_order)
        assert eager.value_and_grad(np.array([1.0, 2.0]))[0] == 5.0
        np.testing.assert_allclose(eager.hess(np.array([1.0, 2.0])), 2 * np.eye(2))
    with pytest.raises(jax.errors.TracerArrayConversionError) as info2:
        jax_ad.vector_ad(layout, None, lambda d: jnp.asarray(np.asarray(d["x"])), ()).value(
            np.ones(2)
        )
    assert "the constraint function was compiled with jax.jit" in "".join(info2.value.__notes__)
    with pytest.raises(jax.errors.TracerBoolConversionError) as info3:
        value_and_grad(fun)({"x": jnp.ones(2)})
    assert "pass jit=False" in "".join(info3.value.__notes__)
    value, grads = value_and_grad(fun, jit=False)({"x": jnp.asarray([1.0, 2.0])})
    assert float(value) == 5.0 and list(grads) == ["x"]


def test_float32_without_x64_gives_float64_vectors() -> None:
    assert not jax.config.jax_enable_x64
    layout32 = layout_of(x0_of(jnp.float32))
    with jax.enable_x64(True):
        ref = jax_ad.scalar_ad(layout_of(x0_of()), None, objective, (0.7,), jit=False)
        x = point(layout32)
        value64, grad64 = ref.value_and_grad(x)
        p = point(layout32, 1)
        hv64, hess64 = ref.hvp(x, p), ref.hess(x)
        cref = jax_ad.vector_ad(layout_of(x0_of()), None, constraint, (0.7,), jit=False)
        jac64 = cref.jacobian(x)
    for jit, second_order in [(True, False), (False, True)]:
        ad = jax_ad.scalar_ad(layout32, None, objective, (0.7,), jit=jit, second_order=second_order)
        value, grad = ad.value_and_grad(x)
        assert type(value) is float and value == pytest.approx(value64, rel=1e-5)
        assert grad.dtype == np.float64 and grad.shape == (layout32.n,) and grad.flags.writeable
        np.testing.assert_allclose(grad, grad64, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(ad.hvp(x, p), hv64, rtol=1e-4, atol=1e-4)
        hess = ad.hess(x)
        assert hess.dtype == np.float64
        np.testing.assert_allclose(hess, hess64, rtol=1e-4, atol=1e-4)
        c = jax_ad.vector_ad(layout32, None, constraint, (0.7,), jit=jit)
        jac = c.jacobian(x)
        assert jac.dtype == np.float64 and jac.shape == (2, layout32.n)
        np.testing.assert_allclose(jac, jac64, rtol=1e-4, atol=1e-4)


def test_minimize_with_float32_objective_converges() -> None:
    """The autodiff object drives SciPy directly (float64 in and out) on float32 entries."""
    import scipy.optimize

    layout = layout_of({"a": jnp.zeros(3, jnp.float32), "b": jnp.zeros((), jnp.float32)})
    target = np.array([1.0, -2.0, 0.5], np.float32)
    ad = jax_ad.scalar_ad(
        layout, None, lambda d, t: jnp.sum((d["a"] - t) ** 2) + (d["b"] - 3.0) ** 2, (target,)
    )
    res = scipy.optimize.minimize(ad.value_and_grad, np.zeros(4), jac=True, method="L-BFGS-B")
    assert res.success
    np.testing.assert_allclose(res.x, [1.0, -2.0, 0.5, 3.0], atol=1e-4)
    res = scipy.optimize.minimize(
        ad.value_and_grad, np.zeros(4), jac=True, hessp=ad.hvp, method="trust-ncg"
    )
    np.testing.assert_allclose(res.x, [1.0, -2.0, 0.5, 3.0], atol=1e-4)
    assert ad.fun_calls == 2  # one trace for value_and_grad, one for hvp


def concrete(v: Any) -> Any:
    """The concrete array under an eager autodiff tracer (for looking at its device)."""
    while isinstance(v, jax.core.Tracer):
        v = v.primal
    return v


def test_committed_device_is_kept() -> None:
    device = jax.devices()[0]
    x0 = {k: jax.device_put(v, device) for k, v in x0_of(jnp.float32).items()}
    layout = layout_of(x0)
    seen = []

    def fun(d: Any, scale: Any) -> Any:
        seen.append({k: concrete(v).devices() for k, v in d.items()})
        return objective(d, scale)

    ad = jax_ad.scalar_ad(layout, None, fun, (0.7,), jit=False)
    ad.value_and_grad(point(layout))
    assert seen == [{k: {device} for k in x0}]
    jitted = jax_ad.scalar_ad(layout, None, objective, (0.7,))
    assert jitted._compiled is not None
    out = jitted._compiled.packed(jitted._host(point(layout)), jitted._dyn)
    assert out.devices() == {device}


_MULTI_DEVICE = """
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from dict_minimize._structure.layout import make_layout
from dict_minimize.backends import get_backend

jax.config.update("jax_enable_x64", True)
B = get_backend("jax")
devs = jax.devices()
assert len(devs) == 4, devs

def fun(d):
    return jnp.sum(d["w"] ** 2 * d["b"]) + jnp.sum(jnp.sin(d["v"]))

def check(x0, expect_devices):
    lay = make_layout(x0, B)
    x = np.random.default_rng(0).normal(size=lay.n)
    seen = []
    def spy(d):
        seen.append({k: concrete(v).sharding for k, v in d.items()})
        return fun(d)

def concrete(v):
    while isinstance(v, jax.core.Tracer):
        v = v.primal
    return v
    eager = B.scalar_ad(lay, None, spy, (), jit=False)
    jitted = B.scalar_ad(lay, None, fun, ())
    v1, g1 = eager.value_and_grad(x)
    v2, g2 = jitted.value_and_grad(x)
    np.testing.assert_allclose(g1, g2, rtol=1e-12)
    np.testing.assert_allclose(eager.hess(x), jitted.hess(x), rtol=1e-12, atol=1e-12)
    for k in x0:
        assert seen[0][k].device_set == x0[k].sharding.device_set, (k, seen[0][k])
    if expect_devices is not None:
        out = jitted._compiled.packed(jitted._host(x), jitted._dyn)
        assert out.sharding.device_set == expect_devices, out.sharding

# all entries on one non-default device
one = {k: jax.device_put(jnp.ones(s), devs[2]) for k, s in [("w", (4,)), ("b", ()), ("v", (3,))]}
check(one, {devs[2]})
# entries sharded over a mesh of two devices
mesh = Mesh(np.array(devs[:2]), ("i",))
sharded = {
    "w": jax.device_put(jnp.ones(4), NamedSharding(mesh, P("i"))),
    "b": jax.device_put(jnp.ones(()), NamedSharding(mesh, P())),
    "v": jax.device_put(jnp.ones(3), NamedSharding(mesh, P())),
}
check(sharded, set(devs[:2]))
# entries on different single devices: eager keeps each, jit runs on the default device
mixed = {"w": jax.device_put(jnp.ones(4), devs[1]), "b": jax.device_put(jnp.ones(()), devs[3]),
         "v": jax.device_put(jnp.ones(3), devs[1])}
check(mixed, None)
print("ok")
"""


def test_devices_and_shardings_with_several_cpu_devices() -> None:
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    import os

    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_MULTI_DEVICE)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")


@pytest.mark.parametrize("jit", [True, False])
def test_user_errors(jit: bool) -> None:
    layout = layout_of({"x": jnp.ones(2)})
    cases = [
        (lambda d: jnp.sum(d["x"]).astype(jnp.int32), TypeError, r"non-floating .*int32"),
        (lambda d: (jnp.sum(d["x"]), {"x": d["x"]}), TypeError, r"it returned a tuple"),
        (lambda d: "1.0", TypeError, r"it returned a str"),
        (lambda d: 3, TypeError, r"it returned a int"),
    ]
    for fun, exc, match in cases:
        with pytest.raises(exc, match=match):
            jax_ad.scalar_ad(layout, None, fun, (), jit=jit).value_and_grad(np.ones(2))
    with pytest.raises(TypeError, match=r"non-floating .*bool"):
        jax_ad.vector_ad(layout, None, lambda d: d["x"] > 0, (), jit=jit).value(np.ones(2))
    with pytest.raises(ValueError, match=r"x must have shape \(2,\); got shape \(3,\)"):
        jax_ad.scalar_ad(layout, None, lambda d: jnp.sum(d["x"]), (), jit=jit).hvp(
            np.ones(3), np.ones(2)
        )


def test_builder_argument_errors() -> None:
    layout = layout_of({"x": jnp.ones(2)})
    with pytest.raises(TypeError, match=r"jit must be True, False or None; got a str"):
        jax_ad.scalar_ad(layout, None, lambda d: jnp.sum(d["x"]), (), jit="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"fun must be callable; got a int"):
        jax_ad.scalar_ad(layout, None, 3, ())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"value_and_grad needs a callable"):
        value_and_grad(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"x_dict must be a dict of JAX arrays; got a list"):
        value_and_grad(lambda d: d["x"].sum())([1.0])


@pytest.mark.parametrize("m", [0, 1, 7])
@pytest.mark.parametrize("jit", [True, False])
def test_vector_shapes_and_modes(m: int, jit: bool) -> None:
    """m < n uses reverse mode, m >= n forward mode; a 0-d output counts as one value."""
    with jax.enable_x64(True):
        layout = layout_of({"a": jnp.ones(3), "s": jnp.ones(())})
        mat = np.random.default_rng(m).normal(size=(max(m, 1), 4))

        def cfun(d: Any, mat: Any) -> Any:
            z = jnp.concatenate([d["a"], d["s"][None]])
            out = jnp.tanh(mat @ z)
            return out[0] if m == 1 else out[:m].reshape((m, 1))

        c = jax_ad.vector_ad(layout, None, cfun, (mat,), jit=jit)
        x = np.array([0.1, -0.3, 0.2, 0.5])
        y = np.tanh(mat @ x)[:m]
        np.testing.assert_allclose(c.value(x), y, rtol=1e-12)
        jac = c.jacobian(x)
        assert jac.shape == (m, 4)
        np.testing.assert_allclose(jac, (1 - y**2)[:, None] * mat[:m], rtol=1e-12)
        v, p = np.linspace(-1, 1, m), np.array([1.0, 2.0, -1.0, 0.5])
        expected = mat[:m].T @ (v * -2 * y * (1 - y**2) * (mat[:m] @ p))
        np.testing.assert_allclose(c.vhp(x, v, p), expected, rtol=1e-10, atol=1e-12)


def test_value_and_grad_helper_keeps_mapping_type_and_order() -> None:
    class Params(dict):
        pass

    g = value_and_grad(lambda d, c: jnp.sum(d["z"] * c) + d["a"] ** 2)
    x = Params(z=jnp.ones(2), a=jnp.asarray(3.0))
    value, grads = g(x, jnp.asarray([1.0, 2.0]))
    assert type(grads) is Params and list(grads) == ["z", "a"]
    assert float(value) == 12.0
    np.testing.assert_allclose(np.asarray(grads["a"]), 6.0)
    value2, _ = g(x, np.array([2.0, 2.0]))  # new data: no new trace needed
    assert float(value2) == 13.0
    res = minimize(g, {"z": jnp.zeros(2), "a": jnp.ones(())}, args=(jnp.zeros(2),), jac=True)
    assert res.success and abs(float(res.x["a"])) < 1e-3


def test_backend_record_has_the_builders() -> None:
    assert BACKEND.scalar_ad is jax_ad.scalar_ad and BACKEND.vector_ad is jax_ad.vector_ad


def test_eager_device_arrays_never_alias_scipy_buffer() -> None:
    """JAX may alias 64-byte aligned host memory on the CPU; SciPy reuses its buffers."""
    with jax.enable_x64(True):
        layout = layout_of({"x": jnp.ones(8)})
        ad = jax_ad.scalar_ad(layout, None, lambda d: jnp.sum(d["x"]), (), jit=False)
        buf = np.zeros(16)
        start = (-buf.ctypes.data % 64) // 8
        x = buf[start : start + 8]
        x[:] = 1.0
        on_device = ad._device(x)
        x[:] = 2.0
        np.testing.assert_array_equal(np.asarray(on_device), 1.0)

"""``jac=True`` with a compiled ``fun`` (``jax.jit``, ``tf.function``): one compiled call per
evaluation, with the split before the user's function and the concatenation after it.

The compiled path must give what the eager path gives (same points, same counts, same errors),
trace once per ``fun`` and layout (repeated ``minimize`` calls reuse it), move data once each
way per evaluation whatever the number of keys, and be safe from several threads.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from dict_minimize import minimize
from tests.conftest import INSTALLED, Framework, get_framework

COMPILING = [n for n in ("jax", "tensorflow") if n in INSTALLED]
SHAPES = [(), (2,), (2, 3), (3,), (3,), (1, 1), (4,)]


@pytest.fixture(params=COMPILING)
def cfw(request: pytest.FixtureRequest) -> Any:
    framework = get_framework(request.param)
    with framework.x64():
        yield framework


def _x0(fw: Framework, dtypes: tuple[str, ...] = ("float64", "float32")) -> dict[str, Any]:
    return {
        f"k{i}": fw.tensor(np.full(s, 0.1 * i), dtypes[i % len(dtypes)])
        for i, s in enumerate(SHAPES)
    }


def _loss(fw: Framework) -> Callable[..., Any]:
    """sum_k w_k * |x_k - c|^2 + 0.1 * |x_k - c|^4, in the framework's ops."""
    if fw.name == "jax":
        import jax.numpy as jnp

        def loss(d: Any, c: Any) -> Any:
            total = 0.0
            for i, k in enumerate(sorted(d)):
                r = d[k].astype(jnp.float64) - c
                total = total + (i + 1) * jnp.sum(r * r) + 0.1 * jnp.sum(r**4)
            return total

        return loss
    import tensorflow as tf

    def tf_loss(d: Any, c: Any) -> Any:
        total = tf.constant(0.0, tf.float64)
        for i, k in enumerate(sorted(d)):
            r = tf.cast(d[k], tf.float64) - c
            total += (i + 1) * tf.reduce_sum(r * r) + 0.1 * tf.reduce_sum(r**4)
        return total

    return tf_loss


def _pair(fw: Framework, loss: Callable, *, compiled: bool = True) -> Callable[..., Any]:
    """``loss`` as ``(value, grad_dict)``, compiled the framework's way (or left eager)."""
    if fw.name == "jax":
        import jax

        vg = jax.value_and_grad(loss)
        return jax.jit(vg) if compiled else vg
    import tensorflow as tf

    def vg_tf(d: Any, *args: Any) -> Any:
        keys = list(d)
        with tf.GradientTape() as tape:
            values = [d[k] for k in keys]
            tape.watch(values)
            value = loss(dict(zip(keys, values, strict=True)), *args)
        grads = tape.gradient(value, values, unconnected_gradients="zero")
        return value, dict(zip(keys, grads, strict=True))

    return tf.function(vg_tf) if compiled else vg_tf


def _pair_class(fw: Framework) -> type:
    if fw.name == "jax":
        return importlib.import_module("dict_minimize.backends.jax_ad").JaxPair
    return importlib.import_module("dict_minimize.backends.tensorflow_ad").TensorFlowPair


def _spy(mp: pytest.MonkeyPatch, cls: type) -> list[int]:
    """Count evaluations that went through the compiled pair."""
    calls: list[int] = []
    original = cls.value_and_grad

    def counted(self: Any, x: np.ndarray) -> Any:
        calls.append(1)
        return original(self, x)

    mp.setattr(cls, "value_and_grad", counted)
    return calls


@pytest.mark.parametrize("method", ["L-BFGS-B", "BFGS", "SLSQP", "trust-constr"])
def test_compiled_pair_matches_the_eager_path(cfw: Framework, method: str) -> None:
    fun = _pair(cfw, _loss(cfw))
    x0 = _x0(cfw)
    with pytest.MonkeyPatch.context() as mp:
        used = _spy(mp, _pair_class(cfw))
        fast = minimize(fun, x0, args=(0.5,), method=method)
    slow = minimize(fun, x0, args=(0.5,), method=method, jit=False)
    assert used and len(used) == fast.nfev  # every evaluation went through the compiled pair
    assert fast.success and slow.success
    assert (fast.nfev, fast.njev, fast.nit) == (slow.nfev, slow.njev, slow.nit)
    assert fast.fun == pytest.approx(slow.fun, rel=1e-10, abs=1e-12)
    for k in x0:
        assert cfw.dtype_name(fast.x[k]) == cfw.dtype_name(x0[k])
        assert tuple(fast.x[k].shape) == tuple(x0[k].shape)
        np.testing.assert_allclose(cfw.to_numpy(fast.x[k]), cfw.to_numpy(slow.x[k]), atol=1e-7)
        np.testing.assert_allclose(cfw.to_numpy(fast.x[k]), 0.5, atol=1e-3)


def test_compiled_pair_single_low_precision_dtype(cfw: Framework) -> None:
    """All entries float32: the flat vector is cast once, gradients joined then cast once."""
    fun = _pair(cfw, _loss(cfw))
    x0 = _x0(cfw, ("float32",))
    fast = minimize(fun, x0, args=(0.5,), method="L-BFGS-B")
    slow = minimize(fun, x0, args=(0.5,), method="L-BFGS-B", jit=False)
    assert fast.nfev == slow.nfev and fast.fun == pytest.approx(slow.fun, rel=1e-6, abs=1e-9)
    for k in x0:
        assert cfw.dtype_name(fast.x[k]) == "float32"
        np.testing.assert_allclose(cfw.to_numpy(fast.x[k]), cfw.to_numpy(slow.x[k]), atol=1e-6)


def test_jit_false_and_plain_functions_stay_eager(cfw: Framework) -> None:
    x0 = _x0(cfw)
    with pytest.MonkeyPatch.context() as mp:
        used = _spy(mp, _pair_class(cfw))
        minimize(_pair(cfw, _loss(cfw)), x0, args=(0.5,), jit=False)
        minimize(_pair(cfw, _loss(cfw), compiled=False), x0, args=(0.5,))
    assert used == []


def test_jit_true_compiles_a_plain_function_once(cfw: Framework) -> None:
    """jit=True traces a plain traceable function: Python runs it once, not once per point."""
    loss, runs = _loss(cfw), []

    def counted(d: Any, c: Any) -> Any:
        runs.append(1)
        return loss(d, c)

    fun = _pair(cfw, counted, compiled=False)
    x0 = _x0(cfw)
    res = minimize(fun, x0, args=(0.5,), method="L-BFGS-B", jit=True)
    assert res.success and res.nfev > 5
    assert len(runs) == 1
    again = minimize(fun, x0, args=(0.25,), method="L-BFGS-B", jit=True)
    # a new float is a new trace in both frameworks' rules only when it is static; either way
    # the result follows the new argument
    np.testing.assert_allclose(cfw.to_numpy(again.x["k2"]), 0.25, atol=1e-3)


def test_repeated_calls_reuse_the_trace(cfw: Framework) -> None:
    """Same fun and layout, new data of the same shape: no new trace."""
    loss, runs = _loss(cfw), []

    def counted(d: Any, c: Any) -> Any:
        runs.append(1)
        return loss(d, c)

    fun = _pair(cfw, counted)
    x0 = _x0(cfw)
    targets = [cfw.tensor(np.full((), t), "float64") for t in (0.5, -0.5, 1.5)]
    for t in targets:
        res = minimize(fun, x0, args=(t,), method="L-BFGS-B")
        np.testing.assert_allclose(cfw.to_numpy(res.x["k3"]), cfw.to_numpy(t), atol=1e-3)
    assert len(runs) == 1


def _bad_returns(fw: Framework) -> dict[str, Callable[[Any], Any]]:
    if fw.name == "jax":
        import jax.numpy as jnp

        zeros, cast_int = jnp.zeros, (lambda t: t.astype(jnp.int32))
        total = jnp.sum
    else:
        import tensorflow as tf

        zeros, cast_int = tf.zeros, (lambda t: tf.cast(t, tf.int32))
        total = tf.reduce_sum

    def value(d: Any) -> Any:
        return total(d["a"] ** 2)

    return {
        "value only": lambda d: value(d),
        "missing key": lambda d: (value(d), {"a": 2 * d["a"]}),
        "extra key": lambda d: (value(d), {"a": 2 * d["a"], "b": d["b"], "c": d["b"]}),
        "wrong shape": lambda d: (value(d), {"a": zeros(5), "b": d["b"]}),
        "integer gradient": lambda d: (value(d), {"a": cast_int(d["a"]), "b": d["b"]}),
        "vector value": lambda d: (d["a"], {"a": d["a"], "b": d["b"]}),
        "not a dict": lambda d: (value(d), [d["a"], d["b"]]),
    }


@pytest.mark.parametrize(
    "case",
    [
        "value only",
        "missing key",
        "extra key",
        "wrong shape",
        "integer gradient",
        "vector value",
        "not a dict",
    ],
)
def test_compiled_errors_are_the_eager_errors(cfw: Framework, case: str) -> None:
    body = _bad_returns(cfw)[case]
    if cfw.name == "jax":
        import jax

        compiled = jax.jit(body)
    else:
        import tensorflow as tf

        compiled = tf.function(body)
    x0 = {"a": cfw.tensor([1.0, 2.0], "float64"), "b": cfw.tensor([0.5], "float64")}
    errors = []
    for jit in (None, False):
        with pytest.raises((TypeError, ValueError)) as info:
            minimize(compiled, x0, method="L-BFGS-B", jit=jit)
        errors.append((type(info.value), str(info.value)))
    assert errors[0][0] is errors[1][0]
    if case != "vector value":  # eagerly the value is checked by the codec, in other words
        assert errors[0][1] == errors[1][1]
    assert "gradient" in errors[0][1] or "value" in errors[0][1] or "scalar" in errors[0][1]


def _transfers(cfw: Framework, n_keys: int, maxiter: int) -> tuple[int, dict[str, int]]:
    x0 = {f"k{i}": cfw.tensor(np.zeros(3), "float64") for i in range(n_keys)}
    fun = _FUNS.setdefault((cfw.name, n_keys), _pair(cfw, _loss(cfw)))
    minimize(fun, x0, args=(0.5,), method="L-BFGS-B", options={"maxiter": 2})  # compile
    calls = {"h2d": 0, "d2h": 0, "dispatch": 0}
    with pytest.MonkeyPatch.context() as mp:

        def count(obj: Any, name: str, label: str) -> None:
            original = getattr(obj, name)

            def counted(*a: Any, **k: Any) -> Any:
                calls[label] += 1
                return original(*a, **k)

            mp.setattr(obj, name, counted)

        if cfw.name == "jax":
            import jax

            mod = importlib.import_module("dict_minimize.backends.jax_ad")
            count(mod._Base, "_host", "h2d")  # the one conversion before the compiled call
            count(mod, "_host64", "d2h")  # the one read-back after it
            count(mod._Base, "_jitted", "dispatch")
            count(jax, "device_put", "h2d")
            count(jax, "device_get", "d2h")
        else:
            import tensorflow as tf

            mod = importlib.import_module("dict_minimize.backends.tensorflow_ad")
            sample = tf.zeros(1)
            count(tf, "constant", "h2d")
            count(tf, "convert_to_tensor", "h2d")
            owner = next(c for c in type(sample).__mro__ if "numpy" in vars(c))
            count(owner, "numpy", "d2h")
            count(mod._Base, "_xflat", "dispatch")  # the one input of the compiled call
        res = minimize(fun, x0, args=(0.5,), method="L-BFGS-B", options={"maxiter": maxiter})
    return res.nfev, calls


_FUNS: dict[tuple[str, int], Any] = {}


def test_compiled_pair_moves_data_once_each_way(cfw: Framework) -> None:
    """Per evaluation: one dispatch, one host->device and one device->host step, whatever the
    key count (x0 in and the result out add some per solve, not per evaluation)."""
    for n_keys in (1, 100):
        nfev_short, short = _transfers(cfw, n_keys, 1)
        nfev_long, long = _transfers(cfw, n_keys, 4)
        extra = nfev_long - nfev_short
        assert extra > 0
        for label in ("h2d", "d2h", "dispatch"):
            assert long[label] - short[label] == extra, (n_keys, label, short, long)
        assert long["dispatch"] == nfev_long


def test_threads_share_one_compiled_function(cfw: Framework) -> None:
    """One compiled fun, several threads with different targets: each gets its own answer."""
    fun = _pair(cfw, _loss(cfw))
    x0 = _x0(cfw, ("float64",))
    targets = [0.5, -1.0, 2.0, 0.0]
    results: dict[float, Any] = {}
    barrier = threading.Barrier(len(targets))

    def work(t: float) -> None:
        c = cfw.tensor(np.full((), t), "float64")
        with cfw.x64():
            barrier.wait()
            results[t] = minimize(fun, x0, args=(c,), method="L-BFGS-B")

    threads = [threading.Thread(target=work, args=(t,)) for t in targets]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for t in targets:
        for k in x0:
            np.testing.assert_allclose(cfw.to_numpy(results[t].x[k]), t, atol=1e-3)


def test_tensorflow_autodiff_compiles_a_tf_function_by_default() -> None:
    if "tensorflow" not in INSTALLED:
        pytest.skip("TensorFlow is not installed")
    import tensorflow as tf

    fw = get_framework("tensorflow")
    loss, runs = _loss(fw), []

    def counted(d: Any, c: Any) -> Any:
        runs.append(1)
        return loss(d, c)

    x0 = _x0(fw)
    eager = minimize(counted, x0, args=(0.5,), jac="autodiff", method="L-BFGS-B")
    assert len(runs) == eager.nfev  # a plain function runs eagerly, once per point
    runs.clear()
    compiled = tf.function(counted)
    res = minimize(compiled, x0, args=(0.5,), jac="autodiff", method="L-BFGS-B")
    assert len(runs) == 1 and res.nfev == eager.nfev  # traced once
    np.testing.assert_allclose(fw.to_numpy(res.x["k1"]), fw.to_numpy(eager.x["k1"]), atol=1e-9)
    minimize(compiled, x0, args=(0.5,), jac="autodiff", method="L-BFGS-B")
    assert len(runs) == 1  # the trace is kept for the next call


def test_constraint_evaluations_are_counted_when_compiled(cfw: Framework) -> None:
    """nfev_constraints counts evaluations, not traces (1 or 2), under jit: SciPy's requests for
    the value; eagerly, the Python calls (a request at the last point reuses its tape)."""
    if cfw.name == "jax":
        import jax.numpy as jnp

        def circle(d: Any) -> Any:
            return 1.0 - jnp.sum(d["w"] ** 2)

        def loss(d: Any) -> Any:
            return jnp.sum((d["w"] - 2.0) ** 2)

    else:
        import tensorflow as tf

        def circle(d: Any) -> Any:
            return 1.0 - tf.reduce_sum(d["w"] ** 2)

        def loss(d: Any) -> Any:
            return tf.reduce_sum((d["w"] - 2.0) ** 2)

    x0 = {"w": cfw.tensor([0.1, 0.2], "float64")}
    counts = []
    for jit in (True, False):
        res = minimize(
            loss,
            x0,
            jac="autodiff",
            method="SLSQP",
            constraints={"type": "ineq", "fun": circle},
            jit=jit,
        )
        assert res.success
        np.testing.assert_allclose(cfw.to_numpy(res.x["w"]), np.sqrt(0.5), atol=1e-5)
        counts.append(res["nfev_constraints"])
    assert counts[1] > 2 and counts[1] <= counts[0] <= counts[1] + 2, counts


def test_value_and_grad_helpers_are_compiled_with_the_split(cfw: Framework) -> None:
    """``value_and_grad`` of this package (JAX with jit; TF of a tf.function) counts as
    compiled: minimize traces it with the split. TF's helper of a plain function does not."""
    api = importlib.import_module(f"dict_minimize.{cfw.name}_api")
    loss = _loss(cfw)
    if cfw.name == "jax":
        compiled, plain = api.value_and_grad(loss), api.value_and_grad(loss, jit=False)
    else:
        import tensorflow as tf

        compiled, plain = api.value_and_grad(tf.function(loss)), api.value_and_grad(loss)
    x0 = _x0(cfw)
    with pytest.MonkeyPatch.context() as mp:
        used = _spy(mp, _pair_class(cfw))
        res = minimize(compiled, x0, args=(0.5,), method="L-BFGS-B")
        assert res.success and len(used) == res.nfev
        used.clear()
        eager = minimize(plain, x0, args=(0.5,), method="L-BFGS-B")
        assert used == []
    np.testing.assert_allclose(cfw.to_numpy(res.x["k2"]), cfw.to_numpy(eager.x["k2"]), atol=1e-7)

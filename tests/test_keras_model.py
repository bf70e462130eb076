"""``tensorflow_api.minimize_model``: Keras 3 and tf.Module models fitted in place."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "tensorflow":  # pragma: no cover - KERAS_BACKEND set elsewhere
    pytest.skip("minimize_model needs Keras's TensorFlow backend", allow_module_level=True)

from dict_minimize._models.keras import _Program, _select  # noqa: E402
from dict_minimize.tensorflow_api import minimize_model  # noqa: E402
from tests.test_examples import load_example  # noqa: E402

TRUE_W = np.array([[1.0], [-2.0], [0.5]])
TRUE_B = 3.0
#: L-BFGS-B options that solve the small least-squares problems far below the test tolerances
TIGHT = {"gtol": 1e-12, "ftol": 1e-15}


def make_data(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = x @ TRUE_W + TRUE_B + 0.1 * rng.normal(size=(n, 1))
    return x, y


def lstsq(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """The closed-form least-squares line: (kernel (3, 1), bias)."""
    coef = np.linalg.lstsq(np.hstack([x, np.ones((len(x), 1))]), y, rcond=None)[0]
    return coef[:3], float(coef[3, 0])


def mse(model, x, y):
    return tf.reduce_mean((model(x) - y) ** 2)


def linear(dtype: str = "float64") -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(1, "linear", True, "zeros", name="out", dtype=dtype),
        ],
        name="net",
    )


def mlp(hidden: int = 4) -> keras.Model:
    init = keras.initializers.GlorotUniform(seed=0)
    return keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(
                hidden, "tanh", kernel_initializer=init, name="hidden", dtype="float64"
            ),
            keras.layers.Dense(1, kernel_initializer=init, name="out", dtype="float64"),
        ],
        name="mlp",
    )


def values(model) -> dict[str, np.ndarray]:
    return {v.path: np.array(v.numpy()) for v in model.variables}


class Line(tf.Module):
    """A plain tf.Module: y = x @ w + b, with a non-trainable scale."""

    def __init__(self) -> None:
        super().__init__()
        self.w = tf.Variable(tf.zeros((3, 1), tf.float64), name="w")
        self.b = tf.Variable(tf.zeros((), tf.float64), name="b")
        self.scale = tf.Variable(tf.ones((), tf.float64), trainable=False, name="scale")

    def __call__(self, x):
        return self.scale * (x @ self.w + self.b)


# --- fitting ------------------------------------------------------------------------------------


def test_dense_regression_matches_lstsq():
    x, y = make_data()
    model = linear()
    seen = []
    res = minimize_model(
        model, mse, args=(x, y), method="L-BFGS-B", options=TIGHT, callback=seen.append
    )
    kernel, bias = lstsq(x, y)
    assert res.success, res.message
    assert list(res.x) == ["net/out/kernel", "net/out/bias"]
    assert len(seen) == res.nit and list(seen[-1]) == list(res.x)  # callbacks get the dict
    for value in res.x.values():
        assert isinstance(value, tf.Tensor) and not isinstance(value, tf.Variable)
        assert value.dtype == tf.float64
    np.testing.assert_allclose(res.x["net/out/kernel"].numpy(), kernel, atol=1e-7)
    np.testing.assert_allclose(res.x["net/out/bias"].numpy(), [bias], atol=1e-7)
    np.testing.assert_allclose(res.fun, float(mse(model, x, y)), rtol=1e-12)


def test_float32_model_with_float64_data():
    x, y = make_data()  # float64 NumPy data, as Keras users often have
    model = linear("float32")
    calls = [0]

    def loss(m, x, y):
        calls[0] += 1
        return mse(m, x, y)  # float32 output - y: y is converted to float32 for the graph

    res = minimize_model(
        model,
        loss,
        args=(x, y),
        method="L-BFGS-B",
        options={"ftol": 1e-6},  # float32's resolution: not the last bits
    )
    kernel, bias = lstsq(x, y)
    assert res.success, res.message
    assert calls[0] <= 2 < res.nfev  # compiled, no eager fallback (that would warn)
    assert all(v.dtype == tf.float32 for v in model.trainable_variables)
    assert all(v.dtype == tf.float32 for v in res.x.values())
    np.testing.assert_allclose(model.layers[0].kernel.numpy(), kernel, atol=1e-3)
    np.testing.assert_allclose(model.layers[0].bias.numpy(), [bias], atol=1e-3)


def test_in_place_same_objects_and_optimizer_keeps_them():
    x, y = make_data()
    model = mlp()
    before = list(model.trainable_variables)
    optimizer = keras.optimizers.SGD(learning_rate=0.5)
    optimizer.build(model.trainable_variables)
    res = minimize_model(model, mse, args=(x, y))
    assert res.success, res.message
    after = model.trainable_variables
    assert len(after) == len(before) and all(a is b for a, b in zip(after, before, strict=True))
    for v in after:  # the variables hold the solution, and the model uses it
        np.testing.assert_array_equal(v.numpy(), res.x[v.path].numpy())
    assert float(mse(model, x, y)) == pytest.approx(res.fun, rel=1e-12)
    # the optimizer built before the fit still updates the same (fitted) variables
    optimizer.apply_gradients([(tf.ones_like(v), v) for v in after])
    for v in after:
        np.testing.assert_allclose(v.numpy(), res.x[v.path].numpy() - 0.5, rtol=1e-12)


def test_tf_module_with_plain_variables():
    x, y = make_data()
    line = Line()
    res = minimize_model(line, lambda m, x, y: tf.reduce_mean((m(x) - y) ** 2), args=(x, y))
    kernel, bias = lstsq(x, y)
    assert sorted(res.x) == ["b", "w"]
    assert res.success, res.message
    np.testing.assert_allclose(line.w.numpy(), kernel, atol=1e-5)
    assert float(line.b) == pytest.approx(bias, abs=1e-5)
    assert float(line.scale) == 1.0  # non-trainable: a constant
    # names given with TensorFlow's ":0" suffix find the same variable
    res = minimize_model(line, lambda m: tf.reduce_sum((m.b - 7.0) ** 2), variables=["b:0"])
    assert list(res.x) == ["b"] and float(line.b) == pytest.approx(7.0)
    res = minimize_model(line, lambda m: tf.reduce_sum((m.b + 1.0) ** 2), variables="b")
    assert list(res.x) == ["b"] and float(line.b) == pytest.approx(-1.0)


# --- which variables ----------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["names", "objects", "tf_variables", "predicate"])
def test_variables_selection(how):
    x, y = make_data()
    model = mlp()
    out = model.layers[1]
    start = values(model)
    selection = {
        "names": ["mlp/out/kernel", "mlp/out/bias"],
        "objects": [out.kernel, out.bias],
        "tf_variables": [out.kernel.value, out.bias.value],  # keyed by their Keras paths
        "predicate": lambda path, v: path.startswith("mlp/out/"),
    }[how]
    res = minimize_model(model, mse, args=(x, y), variables=selection)
    assert res.success, res.message
    assert list(res.x) == ["mlp/out/kernel", "mlp/out/bias"]
    now = values(model)
    for path in ("mlp/hidden/kernel", "mlp/hidden/bias"):
        np.testing.assert_array_equal(now[path], start[path])
    assert not np.array_equal(now["mlp/out/kernel"], start["mlp/out/kernel"])
    # with the hidden layer fixed, the output layer is a linear least-squares fit
    features = np.hstack([np.tanh(x @ now["mlp/hidden/kernel"] + now["mlp/hidden/bias"])])
    kernel = np.linalg.lstsq(np.hstack([features, np.ones((len(x), 1))]), y, rcond=None)[0]
    np.testing.assert_allclose(now["mlp/out/kernel"], kernel[:-1], atol=1e-5)


def test_frozen_layer_untouched():
    x, y = make_data()
    model = mlp()
    model.layers[0].trainable = False
    start = values(model)
    res = minimize_model(model, mse, args=(x, y))
    assert list(res.x) == ["mlp/out/kernel", "mlp/out/bias"]
    now = values(model)
    np.testing.assert_array_equal(now["mlp/hidden/kernel"], start["mlp/hidden/kernel"])
    with pytest.raises(ValueError, match=r"'mlp/hidden/kernel' is not trainable"):
        minimize_model(model, mse, args=(x, y), variables=["mlp/hidden/kernel"])
    with pytest.raises(ValueError, match=r"'mlp/hidden/bias' is not trainable"):
        minimize_model(model, mse, args=(x, y), variables=[model.layers[0].bias])
    with pytest.raises(ValueError, match=r"'scale' is not trainable"):
        minimize_model(Line(), lambda m: tf.reduce_sum(m.w), variables=["scale"])


# --- bounds -------------------------------------------------------------------------------------


def test_bound_on_bias_is_respected_and_active():
    x, y = make_data()
    model = linear()
    res = minimize_model(
        model,
        mse,
        args=(x, y),
        method="L-BFGS-B",
        ub_dict={"net/out/bias": 1.0},  # the free fit has bias ~3: the bound is active
        options=TIGHT,
    )
    assert res.success, res.message
    assert float(model.layers[0].bias[0]) == 1.0
    # the kernel is the least-squares fit with the bias fixed at its bound
    kernel = np.linalg.lstsq(x, y - 1.0, rcond=None)[0]
    np.testing.assert_allclose(model.layers[0].kernel.numpy(), kernel, atol=1e-7)


# --- compiled and eager -------------------------------------------------------------------------


def test_compiled_and_eager_agree():
    x, y = make_data()
    calls = {}

    def counting(model, x, y):
        calls[mode] += 1
        return mse(model, x, y)

    results = {}
    for mode in (None, False):
        calls[mode] = 0
        results[mode] = minimize_model(
            linear(), counting, args=(x, y), method="L-BFGS-B", jit=mode, options=TIGHT
        )
    compiled, eager = results[None], results[False]
    assert compiled.success and eager.success
    assert calls[None] <= 2 < compiled.nfev  # traced once, then run as a graph
    assert calls[False] == eager.nfev  # eagerly: one Python call per evaluation
    # a convex problem solved far below the tolerance: both reach the one minimum
    assert compiled.fun == pytest.approx(eager.fun, rel=1e-10)
    for key in compiled.x:
        np.testing.assert_allclose(compiled.x[key].numpy(), eager.x[key].numpy(), atol=1e-7)


def numpy_loss(model, x, y):
    """Traceable by no tf.function: it takes a NumPy value in the middle."""
    scale = float(tf.reduce_mean(y).numpy()) * 0.0 + 1.0
    return scale * mse(model, x, y)


def test_untraceable_loss_falls_back_to_eager_with_a_warning():
    x, y = make_data()
    model = linear()
    with pytest.warns(UserWarning, match=r"cannot be traced by tf.function .*numpy"):
        res = minimize_model(model, numpy_loss, args=(x, y), method="L-BFGS-B", options=TIGHT)
    kernel, _ = lstsq(x, y)
    assert res.success, res.message
    np.testing.assert_allclose(model.layers[0].kernel.numpy(), kernel, atol=1e-6)
    # jit=False: eager from the start, no warning; jit=True: the tracing error propagates
    minimize_model(linear(), numpy_loss, args=(x, y), jit=False)
    with pytest.raises(AttributeError, match="numpy"):
        minimize_model(linear(), numpy_loss, args=(x, y), jit=True)


def test_failing_loss_raises_its_own_error_not_the_fallback():
    def broken(model):
        raise ValueError("broken loss")

    with pytest.raises(ValueError, match="broken loss") as info:
        minimize_model(linear(), broken)
    assert info.value.__context__ is None  # not chained to the failed trace


# --- second order -------------------------------------------------------------------------------


def test_exact_hessp_matches_finite_differences():
    x, y = make_data()
    model = mlp()
    sel = _select(model, None)
    rng = np.random.default_rng(1)
    point = [tf.identity(v) for v in sel.tf_vars]
    tangent = [tf.constant(rng.normal(size=v.shape)) for v in sel.tf_vars]
    for jit in (None, False):
        program = _Program(model, mse, sel, (x, y), jit)
        program.prepare("pair", (point,))
        program.prepare("hvp", (point, tangent))
        hv = program.call("hvp", point, tangent)
        eps = 1e-6
        _, g_plus = program.call("pair", [p + eps * t for p, t in zip(point, tangent, strict=True)])
        _, g_minus = program.call(
            "pair", [p - eps * t for p, t in zip(point, tangent, strict=True)]
        )
        for h, gp, gm in zip(hv, g_plus, g_minus, strict=True):
            np.testing.assert_allclose(h.numpy(), (gp - gm).numpy() / (2 * eps), atol=1e-6)


@pytest.mark.parametrize("method", ["Newton-CG", "trust-krylov", "trust-ncg"])
def test_second_order_methods_use_exact_hessp(method):
    x, y = make_data()
    model = linear()
    res = minimize_model(model, mse, args=(x, y), method=method, tol=1e-10)
    kernel, _ = lstsq(x, y)
    assert res.success, res.message
    assert res.nhev > 0
    assert res.nit <= 10  # a quadratic: a few Newton steps
    np.testing.assert_allclose(model.layers[0].kernel.numpy(), kernel, atol=1e-6)


def test_dense_hessian_methods_are_refused():
    with pytest.raises(ValueError, match="needs a dense Hessian"):
        minimize_model(linear(), mse, method="dogleg")
    with pytest.raises(ValueError, match="no dense autodiff Hessian"):
        minimize_model(linear(), mse, method="trust-constr", hess="autodiff")


def test_gradient_free_method_and_constraints():
    line = Line()
    calls = []

    def loss(m):
        calls.append(1)
        return tf.reduce_sum((m.w - 1.0) ** 2) + (m.b - 2.0) ** 2

    res = minimize_model(line, loss, method="Powell", jit=False, options={"xtol": 1e-8})
    assert res.success, res.message
    np.testing.assert_allclose(line.w.numpy(), np.ones((3, 1)), atol=1e-5)
    # SLSQP with a constraint on the dict of values (keyed by name)
    res = minimize_model(
        Line(),
        loss,
        method="SLSQP",
        constraints={"type": "eq", "fun": lambda d: tf.reduce_sum(d["w"]) - 6.0},
    )
    assert res.success, res.message
    np.testing.assert_allclose(res.x["w"].numpy(), np.full((3, 1), 2.0), atol=1e-6)


# --- errors -------------------------------------------------------------------------------------


def test_errors_name_the_path():
    model = linear()
    with pytest.raises(KeyError, match=r"no variable 'net/out/kernal'.*'net/out/kernel'"):
        minimize_model(model, mse, variables=["net/out/kernal"])
    with pytest.raises(ValueError, match="selected none"):
        minimize_model(model, mse, variables=lambda path, v: "nothing" in path)
    with pytest.raises(ValueError, match=r"no trainable variables.*build"):
        minimize_model(keras.Sequential([keras.layers.Dense(1)]), mse)
    with pytest.raises(ValueError, match="variables is empty"):
        minimize_model(model, mse, variables=[])
    with pytest.raises(TypeError, match="takes no jac"):
        minimize_model(model, mse, jac=True)
    with pytest.raises(TypeError, match="unexpected keyword argument 'tolerance'"):
        minimize_model(model, mse, tolerance=1e-3)
    with pytest.raises(TypeError, match="trainable_variables"):
        minimize_model(object(), mse)
    with pytest.raises(TypeError, match="variables must hold"):
        minimize_model(model, mse, variables=[np.zeros(2)])


def test_duplicate_keys_are_refused():
    class Twins(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = tf.Variable(1.0)
            self.b = tf.Variable(2.0)

    twins = Twins()
    with pytest.raises(ValueError, match=r"two different variables have the key 'Variable'"):
        minimize_model(twins, lambda m: m.a**2 + m.b**2)
    with pytest.raises(ValueError, match=r"2 variables of the model are named 'Variable'"):
        minimize_model(twins, lambda m: m.a**2, variables=["Variable"])
    # one of them, as an object, is fine; the other stays as it was
    res = minimize_model(twins, lambda m: (m.a - 3.0) ** 2, variables=[twins.a])
    assert list(res.x) == ["Variable"]
    assert float(twins.a) == pytest.approx(3.0) and float(twins.b) == 2.0


def test_loss_must_be_a_scalar_tensor():
    x, y = make_data()
    with pytest.raises(ValueError, match=r"shape \(40, 1\); expected a scalar"):
        minimize_model(linear(), lambda m, x, y: (m(x) - y) ** 2, args=(x, y))
    with pytest.raises(TypeError, match="carries no derivative"):
        minimize_model(linear(), lambda m, x, y: float(mse(m, x, y)), args=(x, y), jit=False)


# --- runs that end early ------------------------------------------------------------------------


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, RuntimeError])
def test_run_ending_early_leaves_the_best_point(exc_type):
    x, y = make_data()
    model = mlp()
    start = float(mse(model, x, y))
    calls = [0]

    def loss(m, x, y):
        calls[0] += 1
        if calls[0] == 12:
            raise exc_type("stop here")
        return mse(m, x, y)

    if exc_type is KeyboardInterrupt:  # minimize returns the best point seen
        res = minimize_model(model, loss, args=(x, y), jit=False)
        assert not res.success and "KeyboardInterrupt" in res.message
        best = res
    else:  # the error propagates, with the best point attached
        with pytest.raises(RuntimeError, match="stop here") as info:
            minimize_model(model, loss, args=(x, y), jit=False)
        best = info.value.dict_minimize_result
    assert best.fun < start
    for v in model.trainable_variables:
        np.testing.assert_array_equal(v.numpy(), best.x[v.path].numpy())
    assert float(mse(model, x, y)) == pytest.approx(best.fun, rel=1e-12)


# --- examples/keras_model.py --------------------------------------------------------------------


def test_example_runs_small(capsys):
    example = load_example("keras_model")
    assert example.main(["--size", "64"]) == 0
    out = capsys.readouterr().out
    assert "loss before" in out and "loss after" in out
    fit = example.fit(64)
    assert fit.success and fit.loss_after < fit.loss_before
    assert fit.bias.shape == (1,) and np.all(fit.bias <= example.BIAS_UPPER)
    assert f"output bias: {fit.bias[0]:.6f}" in out

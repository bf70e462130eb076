"""Shared behaviour of the generic API and the drop-in shims, written once for every framework."""

from __future__ import annotations

import importlib
import warnings
from collections import OrderedDict, defaultdict
from types import MappingProxyType

import numpy as np
import pytest
import scipy.optimize

import dict_minimize
from dict_minimize import METHODS, OptimizeResult, minimize
from tests.conftest import Framework, flat_objective

HESSIAN_METHODS = {"dogleg", "trust-ncg", "trust-exact", "trust-krylov"}
RUNNABLE = [m for m in METHODS if m not in HESSIAN_METHODS]


def quadratic(x: np.ndarray, target: float = 0.5) -> tuple[float, np.ndarray]:
    w = np.arange(1, x.size + 1, dtype=np.float64)
    r = x - target
    return float(np.sum(w * r**2)), 2 * w * r


def make_x0(fw: Framework, dtype: str = "float64") -> OrderedDict:
    return OrderedDict(
        [
            ("w", fw.tensor([[0.1, -0.2, 0.3], [1.0, 2.0, -1.0]], dtype)),
            ("b", fw.tensor(1.5, dtype)),
            ("empty", fw.tensor(np.zeros((0, 2)), dtype)),
            ("v", fw.tensor([0.7, -0.7], dtype)),
        ]
    )


def _long(method: str) -> dict:
    return {"maxfun": 3000} if method == "tnc" else {"maxiter": 3000}


def dropin(fw: Framework):
    return importlib.import_module(f"dict_minimize.{fw.name}_api").minimize


def test_result_keeps_keys_order_type_dtype_shape(fw: Framework) -> None:
    x0 = make_x0(fw)
    res = minimize(flat_objective(fw, quadratic), x0, method="L-BFGS-B")
    assert isinstance(res, OptimizeResult) and isinstance(res, scipy.optimize.OptimizeResult)
    assert res.success, res.message
    assert type(res.x) is OrderedDict and list(res.x) == list(x0)
    for k in x0:
        assert fw.type_check(res.x[k]) and fw.type_check(res.jac[k])
        assert fw.dtype_name(res.x[k]) == fw.dtype_name(x0[k])
        assert tuple(res.x[k].shape) == tuple(x0[k].shape) == tuple(res.jac[k].shape)
    flat = np.concatenate([fw.to_numpy(res.x[k]).ravel() for k in x0])
    np.testing.assert_allclose(flat, 0.5, atol=1e-6)
    assert isinstance(res.fun, float) and res.fun < 1e-10
    for field in ("nfev", "njev", "nit", "status"):
        assert isinstance(res[field], int)
    assert isinstance(res.message, str) and isinstance(res.success, bool)


@pytest.mark.parametrize("method", RUNNABLE)
def test_every_method_runs(fw: Framework, method: str) -> None:
    x0 = make_x0(fw)
    with warnings.catch_warnings():
        # SciPy warns that gradient-free methods ignore jac; the drop-in contract always has it
        warnings.simplefilter("ignore", RuntimeWarning)
        res = minimize(flat_objective(fw, quadratic), x0, method=method, options=_long(method))
    flat = np.concatenate([fw.to_numpy(res.x[k]).ravel() for k in x0])
    np.testing.assert_allclose(flat, 0.5, atol=2e-3)
    if method in {"nelder-mead", "powell", "cobyla", "cobyqa"}:
        assert res.jac is None or set(res.jac) == set(x0)
        assert "njev" not in res and res.njev_ran == 0  # as SciPy: no njev field
    else:
        assert set(res.jac) == set(x0)


@pytest.mark.parametrize("method", RUNNABLE)
def test_dropin_returns_ordereddict(fw: Framework, method: str) -> None:
    x0 = make_x0(fw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = dropin(fw)(flat_objective(fw, quadratic), x0, method=method, options=_long(method))
    assert type(out) is OrderedDict and list(out) == list(x0)
    for k in x0:
        assert fw.type_check(out[k]) and fw.dtype_name(out[k]) == fw.dtype_name(x0[k])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_dtypes_kept_and_mixed(fw: Framework, dtype: str) -> None:
    x0 = {"a": fw.tensor([1.0, 2.0], dtype), "b": fw.tensor([[3.0]], "float64")}
    res = minimize(flat_objective(fw, quadratic), x0, method="L-BFGS-B", options={"ftol": 1e-6})
    assert fw.dtype_name(res.x["a"]) == dtype and fw.dtype_name(res.x["b"]) == "float64"
    np.testing.assert_allclose(fw.to_numpy(res.x["a"]), 0.5, atol=5e-2)
    np.testing.assert_allclose(fw.to_numpy(res.x["b"]), 0.5, atol=1e-5)


def test_zero_d_and_empty_entries(fw: Framework) -> None:
    x0 = {"s": fw.tensor(3.0), "e": fw.tensor(np.zeros((2, 0, 3)))}
    res = minimize(flat_objective(fw, quadratic), x0)
    assert tuple(res.x["s"].shape) == () and tuple(res.x["e"].shape) == (2, 0, 3)
    assert abs(float(fw.to_numpy(res.x["s"])) - 0.5) < 1e-6


@pytest.mark.parametrize(
    "make",
    [
        dict,
        OrderedDict,
        lambda items: MappingProxyType(dict(items)),
        lambda items: defaultdict(list, items),
    ],
    ids=["dict", "OrderedDict", "MappingProxyType", "defaultdict"],
)
def test_mapping_types_and_hashable_keys(fw: Framework, make) -> None:
    items = [(("tuple", 1), fw.tensor([1.0, 2.0])), (7, fw.tensor(1.0)), ("z", fw.tensor([0.0]))]
    x0 = make(items)
    res = minimize(flat_objective(fw, quadratic), x0)
    assert list(res.x) == [k for k, _ in items]
    expected = dict if isinstance(x0, MappingProxyType) else type(x0)
    assert type(res.x) is expected
    if isinstance(x0, defaultdict):
        assert res.x.default_factory is list


def test_x0_is_not_mutated(fw: Framework) -> None:
    x0 = make_x0(fw)
    before = {k: fw.to_numpy(v).copy() for k, v in x0.items()}
    ids = {k: id(v) for k, v in x0.items()}
    minimize(flat_objective(fw, quadratic), x0, lb_dict={"w": 0.0})
    assert list(x0) == list(before) and {k: id(v) for k, v in x0.items()} == ids
    for k in x0:
        np.testing.assert_array_equal(fw.to_numpy(x0[k]), before[k])


def test_args_passed_through(fw: Framework) -> None:
    seen = []

    def shifted(x: np.ndarray, shift: float, scale: float) -> tuple[float, np.ndarray]:
        seen.append((shift, scale))
        return quadratic(x, target=shift)

    res = minimize(flat_objective(fw, shifted), {"x": fw.tensor([0.0, 0.0])}, args=(2.0, 1.0))
    np.testing.assert_allclose(fw.to_numpy(res.x["x"]), 2.0, atol=1e-6)
    assert set(seen) == {(2.0, 1.0)}


def test_callback_old_form_gets_dicts(fw: Framework) -> None:
    seen = []
    x0 = make_x0(fw)
    res = minimize(flat_objective(fw, quadratic), x0, callback=lambda xd: seen.append(xd))
    assert len(seen) == res.nit > 0
    assert all(list(d) == list(x0) and fw.type_check(d["w"]) for d in seen)


def test_callback_intermediate_result_no_reevaluation(fw: Framework) -> None:
    calls = {"n": 0}
    base = flat_objective(fw, quadratic)

    def counted(d):
        calls["n"] += 1
        return base(d)

    seen = []

    def callback(intermediate_result):
        seen.append((intermediate_result.fun, intermediate_result.x))

    res = minimize(counted, make_x0(fw), method="L-BFGS-B", callback=callback)
    assert calls["n"] == res.nfev  # the callback never re-evaluated the objective
    assert len(seen) == res.nit
    last_fun, last_x = seen[-1]
    assert isinstance(last_fun, float) and last_fun == pytest.approx(res.fun)
    assert fw.type_check(last_x["w"])


@pytest.mark.parametrize("method", RUNNABLE)
def test_stop_iteration_stops_cleanly(fw: Framework, method: str) -> None:
    n_calls = []

    def callback(intermediate_result):
        n_calls.append(intermediate_result.fun)
        if len(n_calls) == 2:
            raise StopIteration

    x0 = {"x": fw.tensor(np.linspace(-1.0, 1.0, 5)), "y": fw.tensor([[3.0, -2.0]])}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = minimize(
            flat_objective(fw, quadratic),
            x0,
            method=method,
            callback=callback,
            options=_long(method),
        )
    assert len(n_calls) == 2, "the run continued after StopIteration"
    assert res.success is (method.lower() == "cobyqa")  # COBYQA's own status 3, as in SciPy
    assert "StopIteration" in res.message or "callback" in res.message.lower()
    assert list(res.x) == ["x", "y"] and np.isfinite(res.fun)


def test_torch_objective_sees_leaves_that_require_grad() -> None:
    torch = pytest.importorskip("torch")
    from dict_minimize.torch_api import minimize as torch_minimize

    def fun(d):
        assert all(v.is_leaf and v.requires_grad for v in d.values())
        loss = ((d["a"] - 1.0) ** 2).sum() + (d["b"] ** 2).sum()
        loss.backward()  # .grad on the leaves works too
        return loss, {"a": d["a"].grad, "b": d["b"].grad}

    out = torch_minimize(fun, OrderedDict(a=torch.zeros(3), b=torch.ones(2, 2)), method="L-BFGS-B")
    torch.testing.assert_close(out["a"], torch.ones(3))
    assert not out["a"].requires_grad


def test_jax_sorted_gradient_keys_are_matched_by_key() -> None:
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    targets = {"zeta": 1.0, "alpha": -2.0}
    vg = jax.value_and_grad(lambda d: sum(jnp.sum((d[k] - t) ** 2) for k, t in targets.items()))
    x0 = OrderedDict(zeta=jnp.zeros(2), alpha=jnp.zeros(3))
    _, g = vg(x0)
    res = minimize(lambda d: vg(dict(d)), x0)  # a plain dict in: JAX sorts the gradient keys
    assert list(res.x) == ["zeta", "alpha"]
    np.testing.assert_allclose(np.asarray(res.x["zeta"]), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(res.x["alpha"]), -2.0, atol=1e-5)
    assert list(g) == ["zeta", "alpha"] or list(g) == ["alpha", "zeta"]


def test_tensorflow_variables_read_not_modified() -> None:
    tf = pytest.importorskip("tensorflow")
    v = tf.Variable([1.0, 2.0], dtype=tf.float32)
    fw = _fw("tensorflow")
    res = minimize(flat_objective(fw, quadratic), {"v": v})
    assert isinstance(res.x["v"], tf.Tensor) and res.x["v"].dtype == tf.float32
    np.testing.assert_array_equal(v.numpy(), [1.0, 2.0])
    np.testing.assert_allclose(res.x["v"].numpy(), 0.5, atol=1e-5)


def _fw(name: str) -> Framework:
    from tests.conftest import get_framework

    return get_framework(name)


@pytest.mark.parametrize("jac", ["2-point", "3-point", None])
def test_finite_difference_strategies(fw: Framework, jac) -> None:
    def value_only(d):
        return flat_objective(fw, quadratic)(d)[0]

    res = minimize(value_only, {"x": fw.tensor([2.0, -1.0])}, jac=jac, method="L-BFGS-B")
    np.testing.assert_allclose(fw.to_numpy(res.x["x"]), 0.5, atol=1e-4)


def test_jac_callable(fw: Framework) -> None:
    both = flat_objective(fw, quadratic)
    res = minimize(lambda d: both(d)[0], {"x": fw.tensor([2.0, -1.0])}, jac=lambda d: both(d)[1])
    np.testing.assert_allclose(fw.to_numpy(res.x["x"]), 0.5, atol=1e-6)
    assert res.njev > 0


def test_default_method_follows_scipy(fw: Framework) -> None:
    obj = flat_objective(fw, quadratic)
    plain = minimize(obj, {"x": fw.tensor([2.0])})
    bounded = minimize(obj, {"x": fw.tensor([2.0])}, lb_dict={"x": 1.0})
    assert "hess_inv" in plain and isinstance(plain.hess_inv, np.ndarray)  # BFGS
    assert fw.to_numpy(bounded.x["x"]).item() == pytest.approx(1.0)  # L-BFGS-B honours bounds


def test_generic_api_public_surface() -> None:
    assert set(dict_minimize.__all__) == {
        "BatchedResult",
        "METHODS",
        "LinearConstraint",
        "Method",
        "NonFiniteError",
        "NonlinearConstraint",
        "OptimizeResult",
        "PrecisionWarning",
        "Trace",
        "__version__",
        "compare",
        "compare_table",
        "least_squares",
        "methods",
        "minimize",
        "minimize_batched",
        "minimize_many",
        "multistart",
        "read_log",
        "root",
    }
    for name in dict_minimize.__all__:
        obj = getattr(dict_minimize, name)
        if callable(obj):
            assert obj.__doc__ and ">>>" in obj.__doc__, name
    assert dict_minimize.__version__.count(".") == 2


def test_lbfgsb_disp_prints_summary_without_deprecation(fw: Framework, capsys) -> None:
    # the original README passes options={"disp": True}; SciPy 1.17 deprecates it for L-BFGS-B
    res = minimize(
        flat_objective(fw, quadratic), make_x0(fw), method="L-BFGS-B", options={"disp": True}
    )
    out = capsys.readouterr().out
    assert res.message in out and f"nit: {res.nit}" in out


def test_blas_threads_capped_during_the_solve() -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from dict_minimize._threads import ENV_VAR, _controller

    if _controller("scipy") is None or ENV_VAR in __import__("os").environ:
        pytest.skip("no BLAS library found for SciPy, or the limit is overridden")
    seen = []

    def fun(d: dict) -> tuple:
        info = threadpoolctl.threadpool_info()
        seen.append({i["filepath"]: i["num_threads"] for i in info if i["user_api"] == "blas"})
        return float(d["x"] @ d["x"]), {"x": 2 * d["x"]}

    minimize(fun, {"x": np.ones(3)}, method="L-BFGS-B", blas_threads=1)
    scipy_libs = {lib.filepath for lib in _controller("scipy").lib_controllers}
    assert all(seen[0][p] == 1 for p in scipy_libs if p in seen[0])
    with pytest.raises(ValueError, match="blas_threads must be None or a positive int"):
        minimize(fun, {"x": np.ones(3)}, blas_threads=0)
    assert minimize(fun, {"x": np.ones(3)}, blas_threads=None).success

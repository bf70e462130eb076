"""Every error a user can cause: the right exception type and a message naming the key."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from collections.abc import MutableMapping
from typing import Any

import numpy as np
import pytest

from dict_minimize import minimize
from dict_minimize._problem.bounds import make_bounds
from dict_minimize._structure.layout import make_layout
from dict_minimize.backends import get_backend
from tests.conftest import INSTALLED, Framework, flat_objective, get_framework


def quad(x: np.ndarray) -> tuple[float, np.ndarray]:
    return float(x @ x), 2 * x


def good_x0(fw: Framework) -> dict:
    return {"w": fw.tensor([[1.0, 2.0]]), "b": fw.tensor(0.5)}


def grad_returning(fw: Framework, grad_of):
    """An objective whose gradient dict is replaced by ``grad_of(x_dict)``."""

    def fun(d):
        value, _ = flat_objective(fw, quad)(d)
        return value, grad_of(d)

    return fun


def test_empty_dict(fw: Framework) -> None:
    with pytest.raises(ValueError, match="x0 is empty"):
        minimize(flat_objective(fw, quad), {})


def test_all_entries_empty(fw: Framework) -> None:
    with pytest.raises(ValueError, match=r"every entry of x0 is empty.*'e'"):
        minimize(flat_objective(fw, quad), {"e": fw.tensor(np.zeros((0,)))})


def test_x0_not_a_mapping(fw: Framework) -> None:
    with pytest.raises(TypeError, match=r"x0 must be a dict .* Wrap a single tensor"):
        minimize(flat_objective(fw, quad), fw.tensor([1.0]))


def native(fw: Framework, values: Any) -> Any:
    """A tensor of ``fw`` holding ``values`` with their own dtype (int, bool, complex, ...)."""
    arr = np.asarray(values)
    if fw.name == "numpy":
        return arr
    if fw.name == "torch":
        import torch

        return torch.from_numpy(arr.copy())
    if fw.name == "jax":
        import jax.numpy as jnp

        return jnp.asarray(arr)
    import tensorflow as tf

    return tf.constant(arr)


NON_REAL: dict[str, list[Any]] = {"int": [1, 2], "bool": [True, False], "complex": [1 + 2j, 0j]}


@pytest.mark.parametrize("kind", ["int", "bool", "complex"])
def test_non_floating_entry(fw: Framework, kind: str) -> None:
    bad = native(fw, NON_REAL[kind])
    with pytest.raises(TypeError, match=r"x0\['bad'\] has dtype .*expected a real floating dtype"):
        minimize(flat_objective(fw, quad), {"ok": fw.tensor([1.0]), "bad": bad})


@pytest.mark.parametrize("bad", ["x", None, 3, b"x"])
def test_non_tensor_entry(fw: Framework, bad) -> None:
    with pytest.raises(TypeError, match=r"x0\['bad'\] is a .*expected a NumPy array or a PyTorch"):
        minimize(flat_objective(fw, quad), {"ok": fw.tensor([1.0]), "bad": bad})


@pytest.mark.parametrize(
    ("bad", "where"), [([1.0, "x"], r"\['bad'\]\[1\]"), ({"w": None}, r"\['bad'\]\['w'\]")]
)
def test_non_tensor_leaf_is_named_by_its_path(fw: Framework, bad, where: str) -> None:
    with pytest.raises(TypeError, match=rf"x0{where} is a .*expected a NumPy array or a PyTorch"):
        minimize(flat_objective(fw, quad), {"ok": fw.tensor([1.0]), "bad": bad})


@pytest.mark.parametrize("bad", [[1.0, 2.0], 3.0, {"w": 1.0}])
def test_dropin_keeps_the_flat_contract(fw: Framework, bad) -> None:
    """Floats and containers are generic-API features; the drop-in refuses them, as before."""
    api = importlib.import_module(f"dict_minimize.{fw.name}_api")
    with pytest.raises(TypeError, match=r"x0(_dict)?\['bad'\] is a"):
        api.minimize(flat_objective(fw, quad), {"ok": fw.tensor([1.0]), "bad": bad})


def test_dropin_rejects_other_framework_tensor(fw: Framework) -> None:
    others = [n for n in ("numpy", "torch", "jax", "tensorflow") if n != fw.name]
    other = next(n for n in others if importlib.util.find_spec(n) is not None)
    api = importlib.import_module(f"dict_minimize.{other}_api")
    with pytest.raises(TypeError, match=r"x0\['w'\] is a .*expected a"):
        api.minimize(flat_objective(fw, quad), good_x0(fw))


def test_gradient_missing_key(fw: Framework) -> None:
    fun = grad_returning(fw, lambda d: {"w": d["w"]})
    with pytest.raises(ValueError, match=r"gradient dict is missing key\(s\) 'b'"):
        minimize(fun, good_x0(fw))


def test_gradient_extra_key(fw: Framework) -> None:
    fun = grad_returning(fw, lambda d: {"w": d["w"], "b": d["b"], "zz": d["b"]})
    with pytest.raises(ValueError, match=r"gradient dict has key\(s\) 'zz' that x0 does not have"):
        minimize(fun, good_x0(fw))


def test_gradient_wrong_shape(fw: Framework) -> None:
    fun = grad_returning(fw, lambda d: {"w": fw.tensor([1.0, 2.0]), "b": d["b"]})
    with pytest.raises(ValueError, match=r"gradient for 'w' has shape \(2,\), expected \(1, 2\)"):
        minimize(fun, good_x0(fw))


def test_gradient_not_floating(fw: Framework) -> None:
    fun = grad_returning(fw, lambda d: {"w": d["w"], "b": native(fw, 1 + 0j)})
    with pytest.raises(TypeError, match=r"gradient for 'b' has dtype .*floating"):
        minimize(fun, good_x0(fw))


def test_gradient_not_a_tensor(fw: Framework) -> None:
    fun = grad_returning(fw, lambda d: {"w": [[1.0, 2.0]], "b": d["b"]})
    if fw.name == "numpy":  # numbers as SciPy takes them: a list, integers
        ints = grad_returning(fw, lambda d: {"w": np.array([[1, 2]]), "b": d["b"]})
        for f in (fun, ints):
            assert minimize(f, good_x0(fw), method="CG", options={"maxiter": 1}).nit <= 1
        return
    with pytest.raises(TypeError, match=r"gradient for 'w' is a list; expected a"):
        minimize(fun, good_x0(fw))


def test_gradient_none_hints_at_unconnected(fw: Framework) -> None:
    fun = grad_returning(fw, lambda d: {"w": d["w"], "b": None})
    with pytest.raises(TypeError, match=r"gradient for 'b' is a NoneType.*does not depend"):
        minimize(fun, good_x0(fw))


def test_gradient_not_a_dict(fw: Framework) -> None:
    fun = grad_returning(fw, lambda d: [d["w"], d["b"]])
    with pytest.raises(TypeError, match="the gradient must be a dict with the keys of x0"):
        minimize(fun, good_x0(fw))


def test_non_scalar_value(fw: Framework) -> None:
    def fun(d):
        _, g = flat_objective(fw, quad)(d)
        return d["w"], g

    with pytest.raises(ValueError, match=r"returned a value of shape \(1, 2\); expected a scalar"):
        minimize(fun, good_x0(fw))


def test_single_value_where_pair_expected(fw: Framework) -> None:
    def fun(d):
        return flat_objective(fw, quad)(d)[0]

    with pytest.raises(TypeError, match=r"fun must return \(value, grad_dict\).*jac="):
        minimize(fun, good_x0(fw))


def test_complex_value(fw: Framework) -> None:
    with pytest.raises(TypeError, match="complex"):
        minimize(
            lambda d: (np.complex128(1 + 1j), {"w": d["w"], "b": d["b"]}),
            good_x0(fw),
            method="L-BFGS-B",
        )


def test_bound_for_unknown_key(fw: Framework) -> None:
    with pytest.raises(ValueError, match=r"lb_dict has bound\(s\) for unknown key\(s\) 'nope'"):
        minimize(flat_objective(fw, quad), good_x0(fw), lb_dict={"nope": 0.0})


def test_bound_wrong_shape(fw: Framework) -> None:
    with pytest.raises(ValueError, match=r"ub_dict\['w'\] has shape \(3,\), expected \(1, 2\)"):
        minimize(flat_objective(fw, quad), good_x0(fw), ub_dict={"w": np.ones(3)})


def test_lb_greater_than_ub(fw: Framework) -> None:
    with pytest.raises(ValueError, match=r"lb_dict\['w'\] > ub_dict\['w'\] at index \(0, 1\)"):
        minimize(
            flat_objective(fw, quad),
            good_x0(fw),
            lb_dict={"w": np.array([[0.0, 2.0]])},
            ub_dict={"w": 1.0},
        )


def test_nan_in_bound(fw: Framework) -> None:
    with pytest.raises(ValueError, match=r"lb_dict\['b'\] contains NaN"):
        minimize(flat_objective(fw, quad), good_x0(fw), lb_dict={"b": float("nan")})


@pytest.mark.parametrize("bad", ["zero", True, object()])
def test_bound_of_wrong_kind(fw: Framework, bad) -> None:
    with pytest.raises(TypeError, match=r"lb_dict\['b'\]"):
        minimize(flat_objective(fw, quad), good_x0(fw), lb_dict={"b": bad})


def test_bounds_not_a_dict(fw: Framework) -> None:
    with pytest.raises(TypeError, match="ub_dict must be a dict keyed like x0"):
        minimize(flat_objective(fw, quad), good_x0(fw), ub_dict=[(0, 1)])


def test_mixed_frameworks() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"x0 mixes frameworks: .*'a'.* PyTorch .*'b'.* NumPy"):
        minimize(lambda d: 0.0, {"a": torch.zeros(2), "b": np.zeros(2)})


def test_unknown_method(fw: Framework) -> None:
    with pytest.raises(
        ValueError, match=r"unknown method 'lbfgs'; did you mean .*'l-bfgs-b'.*\? expected one of"
    ):
        minimize(flat_objective(fw, quad), good_x0(fw), method="lbfgs")


@pytest.mark.parametrize("method", ["dogleg", "trust-ncg", "trust-exact", "trust-krylov"])
def test_hessian_methods_need_hessian(fw: Framework, method: str) -> None:
    with pytest.raises(ValueError, match=f"method '{method}' needs the Hessian"):
        minimize(flat_objective(fw, quad), good_x0(fw), method=method)


def test_bad_jac(fw: Framework) -> None:
    with pytest.raises(ValueError, match=r"jac must be True, 'autodiff', a callable"):
        minimize(flat_objective(fw, quad), good_x0(fw), jac="5-point")


def test_fun_not_callable(fw: Framework) -> None:
    with pytest.raises(TypeError, match="fun must be callable"):
        minimize("f", good_x0(fw))


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="unknown backend 'mxnet'"):
        minimize(lambda d: 0.0, {"a": np.zeros(1)}, backend="mxnet")


def test_user_exception_propagates_unchanged(fw: Framework) -> None:
    class Boom(Exception):
        pass

    def fun(d):
        raise Boom("from the objective")

    with pytest.raises(Boom, match="from the objective"):
        minimize(fun, good_x0(fw))


@pytest.mark.parametrize("framework", ["torch", "jax", "tensorflow"])
def test_missing_framework_names_the_extra(framework: str) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules[{framework!r}] = None  # as if it were not installed
        import numpy as np
        from dict_minimize.backends import get_backend
        try:
            get_backend({framework!r})
        except ImportError as exc:
            assert "pip install 'dict_minimize[{framework}]'" in str(exc), exc
        else:
            raise SystemExit("no ImportError")
        try:
            import dict_minimize.{framework}_api
        except ImportError as exc:
            assert "dict_minimize[{framework}]" in str(exc), exc
        else:
            raise SystemExit("drop-in imported without the framework")
        import dict_minimize  # the core and NumPy still work
        res = dict_minimize.minimize(lambda d: (float(d['x'] @ d['x']), {{'x': 2 * d['x']}}),
                                     {{'x': np.ones(2)}})
        assert res.success
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("method", ["BFGS", "CG", "Newton-CG"])
def test_bounds_with_method_that_ignores_them(fw: Framework, method: str) -> None:
    # SciPy's RuntimeWarning, in its words, and the run goes on without them (as in SciPy)
    with pytest.warns(RuntimeWarning, match=f"Method {method} cannot handle bounds"):
        minimize(flat_objective(fw, quad), good_x0(fw), method=method, lb_dict={"b": 0.0})


# ------------------------------------------------- cases found by the fuzzer (tests/test_fuzz.py)


@pytest.mark.parametrize("kind", ["bool", "complex"])
def test_bound_tensor_of_non_real_dtype(fw: Framework, kind: str) -> None:
    """A complex bound lost its imaginary part silently; a bool one counted as 0/1."""
    with pytest.raises(TypeError, match=rf"lb_dict\['b'\] has dtype \S*{kind}\S*; expected real"):
        minimize(
            flat_objective(fw, quad), good_x0(fw), lb_dict={"b": native(fw, NON_REAL[kind][0])}
        )


@pytest.mark.parametrize(
    "bad",
    [
        np.bool_(True),
        np.complex128(1j),
        np.array([[1j, 0]]),
        np.datetime64("2020-01-01"),
        [[0, None]],
    ],
    ids=["np.bool_", "np.complex128", "complex-array", "datetime64", "list-with-None"],
)
def test_bound_of_non_real_dtype(fw: Framework, bad: Any) -> None:
    with pytest.raises(TypeError, match=r"ub_dict\['w'\] has dtype \S+; expected real numbers"):
        minimize(flat_objective(fw, quad), good_x0(fw), ub_dict={"w": bad})


def test_bound_tensor_of_another_framework(fw: Framework) -> None:
    others = [n for n in INSTALLED if n not in (fw.name, "numpy")]
    if not others:
        pytest.skip("no second framework with tensors installed")
    bound = get_framework(others[0]).tensor([[0.0, 0.0]], "float32")
    if others[0] == "torch":
        bound.requires_grad_(True)  # np.asarray on it raised RuntimeError
    with pytest.raises(TypeError, match=r"lb_dict\['w'\] is a \w+ \w+, but x0 holds"):
        minimize(flat_objective(fw, quad), good_x0(fw), lb_dict={"w": bound})


@pytest.mark.parametrize("kind", ["bool", "str"])
def test_value_of_non_real_dtype(fw: Framework, kind: str) -> None:
    """A 0-d bool or string value was turned into 1.0 or parsed as a number."""
    value = native(fw, True) if kind == "bool" else np.array("1.5")
    _, grad = flat_objective(fw, quad)(good_x0(fw))
    with pytest.raises(TypeError, match=r"the objective returned a value of dtype \S+; expected a"):
        minimize(lambda d: (value, grad), good_x0(fw))


def test_value_too_large_for_a_float(fw: Framework) -> None:
    """A huge Python int raised OverflowError."""
    _, grad = flat_objective(fw, quad)(good_x0(fw))
    with pytest.raises(ValueError, match=r"returned a number too large for a float \(int\)"):
        minimize(lambda d: (10**400, grad), good_x0(fw))


class View(MutableMapping):
    """A Mapping over someone else's dict: ``copy.copy`` shares the storage."""

    def __init__(self, data: dict) -> None:
        self.data = data

    def __getitem__(self, key: Any) -> Any:
        return self.data[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self.data[key] = value

    def __delitem__(self, key: Any) -> None:
        del self.data[key]

    def __iter__(self) -> Any:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def test_view_mapping_x0_is_never_written(fw: Framework) -> None:
    """x0 of a Mapping type whose copies share storage was overwritten at every evaluation."""
    x0 = View(good_x0(fw))
    before = {k: (v, fw.to_numpy(v).copy()) for k, v in x0.items()}
    seen = []
    base = flat_objective(fw, quad)

    def fun(d):
        seen.append(d)
        return base(d)

    res = minimize(fun, x0)
    assert res.success
    for k, (v, values) in before.items():
        assert x0[k] is v
        np.testing.assert_array_equal(fw.to_numpy(x0[k]), values)
    assert type(res.x) is dict and all(d is not x0.data and type(d) is dict for d in seen)


def test_value_that_requires_grad_with_a_gradient_free_method() -> None:
    """float() of the loss warned at every evaluation (Nelder-Mead with a (loss, grads) fun)."""
    torch = pytest.importorskip("torch")

    def fun(d):
        loss = ((d["a"] - 1.0) ** 2).sum()
        return loss, {"a": torch.autograd.grad(loss, d["a"])[0]}

    res = minimize(fun, {"a": torch.zeros(3)}, method="Nelder-Mead", options={"maxiter": 20})
    assert res.nfev > 1


def test_low_precision_bounds_beyond_the_dtype_range(fw: Framework) -> None:
    """Rounding float16 bounds overflowed (a warning) and turned lb=7e4 into lb=inf."""
    backend = get_backend(fw.name)
    layout = make_layout({"w": fw.tensor(np.zeros(3), "float16")}, backend)
    bounds = make_bounds(
        {"w": np.array([-7e4, 65504.0, 7e4])},
        {"w": np.array([7e4, np.inf, np.inf])},
        layout,
        backend,
    )
    assert bounds is not None
    np.testing.assert_array_equal(bounds.lb, [-65504.0, 65504.0, 7e4])
    np.testing.assert_array_equal(bounds.ub, [65504.0, np.inf, np.inf])

"""The drop-in contract: what the original package promised, on the inputs its own tests draw.

The original ``dict_minimize`` 0.0.4 tests its ``minimize`` with hypothesis: any text keys,
float16/32/64 arrays of 0 to 5 dimensions with sides 0 to 5 whose elements may be ±inf, the
gradient methods CG, BFGS, L-BFGS-B, TNC, SLSQP and trust-constr, bounds for every method, and
checks that the result (and every point the objective and the callback see) keeps the keys, key
order, tensor type, dtype and shape of ``x0``, and that L-BFGS-B, TNC and SLSQP stay within the
bounds. These tests draw the same inputs through our drop-in ``*_api.minimize`` in all four
frameworks, and also check what the drop-in says where the original went on silently: a
warning for a non-finite objective at ``x0`` and one for bounds that the method ignores.
"""

from __future__ import annotations

import importlib
import warnings
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest
import scipy.optimize
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import dict_minimize
from tests.conftest import Framework, derandomized

#: the original's gradient methods, and those of them that keep every iterate within bounds
METHODS = ("CG", "BFGS", "L-BFGS-B", "TNC", "SLSQP", "trust-constr")
RESPECTS_BOUNDS = frozenset({"L-BFGS-B", "TNC", "SLSQP"})
DTYPES = ("float16", "float32", "float64")
CONTRACT = derandomized("DICT_MINIMIZE_CONTRACT_EXAMPLES", 40)
_SHAPES = hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=5)


def _entries(bounded: bool) -> st.SearchStrategy:
    """(array, dtype name): an array of any shape; with bounds, 3 stacked (lb, x0, ub)."""
    shapes = _SHAPES.map(lambda s: (3, *s)) if bounded else _SHAPES
    values = hnp.arrays(
        np.float64,
        shapes,
        # float16-representable values, ±inf included where the original allows them
        elements=st.floats(allow_nan=False, allow_infinity=not bounded, width=16),
    )
    return st.tuples(values, st.sampled_from(DTYPES))


def _dicts(bounded: bool) -> st.SearchStrategy:
    return st.dictionaries(st.text(), _entries(bounded), min_size=1).filter(
        lambda d: sum(a.size for a, _ in d.values()) > 0
    )


def _api(fw: Framework) -> Any:
    return importlib.import_module(f"dict_minimize.{fw.name}_api")


def _check_like(fw: Framework, x0: OrderedDict, x: Any, lb: Any = None, ub: Any = None) -> None:
    """What the original promised of every dict it hands out."""
    assert isinstance(x, OrderedDict)
    assert list(x) == list(x0)
    for k, v0 in x0.items():
        assert type(x[k]) is type(v0), k
        assert fw.dtype_name(x[k]) == fw.dtype_name(v0), k
        assert tuple(x[k].shape) == tuple(v0.shape), k
        if lb is not None:
            a = fw.to_numpy(x[k])
            assert np.all(fw.to_numpy(lb[k]) <= a) and np.all(a <= fw.to_numpy(ub[k])), k


def _arbitrary(fw: Framework, check: Any) -> Any:
    """The original tests' objective: the sum of every entry, with gradient ``x + 1``."""

    def fun(d: Any, *args: Any) -> tuple[float, OrderedDict]:
        check(d)
        value = float(sum(np.sum(fw.to_numpy(v)) for v in d.values()))
        grad = OrderedDict(
            (k, fw.tensor(fw.to_numpy(v) + 1, fw.dtype_name(v))) for k, v in d.items()
        )
        return value, grad

    return fun


def _run(fw: Framework, x0: OrderedDict, method: str, tol: float, **bounds: Any) -> tuple:
    lb = bounds.get("lb_dict")
    keep = method in RESPECTS_BOUNDS and lb is not None
    checks = {"lb": lb, "ub": bounds.get("ub_dict")} if keep else {}
    seen = []

    def check(d: Any) -> None:
        _check_like(fw, x0, d, **checks)
        seen.append(1)

    args = (3, -1)
    fun = _arbitrary(fw, check)

    def with_args(d: Any, *got: Any) -> Any:
        assert got == args
        return fun(d)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = _api(fw).minimize(
            with_args,
            x0,
            args=args,
            method=method,
            tol=tol,
            callback=check,
            options={"maxiter": 10},
            **bounds,
        )
    _check_like(fw, x0, out, **checks)
    assert seen, "the objective never ran"
    return out, caught


def _messages(caught: list, category: type) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, category)]


@CONTRACT
@given(_dicts(bounded=False), st.sampled_from(METHODS), st.floats(0, 1))
def test_minimize_contract(fw: Framework, drawn: dict, method: str, tol: float) -> None:
    x0 = OrderedDict((k, fw.tensor(a, dt)) for k, (a, dt) in drawn.items())
    before = {k: fw.to_numpy(v).copy() for k, v in x0.items()}
    _, caught = _run(fw, x0, method, tol)
    for k, v in x0.items():  # x0 is only read
        np.testing.assert_array_equal(fw.to_numpy(v), before[k])
    has_inf = any(np.isinf(fw.to_numpy(v)).any() for v in x0.values())
    at_x0 = [m for m in _messages(caught, RuntimeWarning) if "not finite at x0" in m]
    assert bool(at_x0) == has_inf, at_x0
    if has_inf:
        assert "dict_minimize.minimize raises NonFiniteError" in at_x0[0]


@CONTRACT
@given(_dicts(bounded=True), st.sampled_from(METHODS), st.floats(0, 1))
def test_minimize_bounded_contract(fw: Framework, drawn: dict, method: str, tol: float) -> None:
    x0, lb, ub = OrderedDict(), OrderedDict(), OrderedDict()
    for k, (a, dt) in drawn.items():
        lo, mid, hi = np.sort(a, axis=0)
        lb[k], x0[k], ub[k] = fw.tensor(lo, dt), fw.tensor(mid, dt), fw.tensor(hi, dt)
    _, caught = _run(fw, x0, method, tol, lb_dict=lb, ub_dict=ub)
    ignored = [m for m in _messages(caught, scipy.optimize.OptimizeWarning) if "cannot handle" in m]
    if method in ("CG", "BFGS"):
        assert len(ignored) == 1 and f"method {method!r}" in ignored[0], ignored
        assert "l-bfgs-b" in ignored[0]  # names the methods that would respect them
    else:
        assert not ignored


def test_generic_api_stays_strict(fw: Framework) -> None:
    """Only the drop-in goes on at a non-finite x0; bounds a method ignores: both warn (the
    generic API in SciPy's words and category, the drop-in in the original package's)."""
    x_inf = OrderedDict(a=fw.tensor([np.inf, 1.0], "float64"))
    x_ok = OrderedDict(a=fw.tensor([0.5, 1.0], "float64"))
    fun = _arbitrary(fw, lambda d: None)
    with pytest.raises(dict_minimize.NonFiniteError, match="not finite at x0"):
        dict_minimize.minimize(fun, x_inf, method="L-BFGS-B")
    with pytest.warns(RuntimeWarning, match="Method CG cannot handle bounds"):
        dict_minimize.minimize(fun, x_ok, method="CG", lb_dict={"a": 0.0})
    with pytest.warns(scipy.optimize.OptimizeWarning, match="method 'CG' cannot handle bounds"):
        out = _api(fw).minimize(fun, x_ok, method="CG", lb_dict={"a": 0.0})
    assert np.all(fw.to_numpy(out["a"]) < 0)  # the bound was ignored, as the warning says
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = _api(fw).minimize(fun, x_inf, method="L-BFGS-B")
    said = _messages(caught, RuntimeWarning)
    assert any("not finite at x0" in m for m in said), said
    # and the run's own summary
    assert any("counted as worse than every finite" in m for m in said), said
    np.testing.assert_array_equal(fw.to_numpy(out["a"]), [np.inf, 1.0])


def test_original_helpers(fw: Framework) -> None:
    """``from_np``, ``get_dtype`` and ``to_np``: the original modules' helpers, kept."""
    api = _api(fw)
    for name in ("float32", "float64"):
        dtype = getattr(importlib.import_module(fw.name if fw.name != "jax" else "jax.numpy"), name)
        t = api.from_np(np.array([1.5, -2.0]), dtype)
        assert fw.type_check(t) and fw.dtype_name(t) == name
        assert api.get_dtype(t) == dtype
        back = api.to_np(t)
        assert isinstance(back, np.ndarray) and back.dtype == np.dtype(name)
        np.testing.assert_array_equal(back, [1.5, -2.0])
    if fw.name == "torch":  # the original's torch from_np made leaves that require grad
        assert api.from_np(np.ones(2), "float32").requires_grad
        with pytest.raises(TypeError, match="floating torch dtype"):
            api.from_np(np.ones(2), "int64")

"""The short path of repeated flat NumPy solves gives what the checking path gives.

A flat ``dict`` of NumPy arrays solved a second time gets generated code for its evaluations
(``backends/_numpy_pair.py``: the split of SciPy's vector, the match of the gradient dict) and
``minimize`` hands SciPy its own value/gradient memo instead of ``jac=True``'s MemoizeJac. Both
are shortcuts: every result, count, error message and non-finite decision must be what the
checking path and plain SciPy give.
"""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest
import scipy.optimize
from hypothesis import given
from hypothesis import strategies as st

from dict_minimize import minimize
from dict_minimize._problem import prepare as _prepare
from dict_minimize._problem.objective import Objective
from dict_minimize._structure.layout import make_layout
from dict_minimize.backends import get_backend

from .conftest import derandomized

NUMPY = get_backend("numpy")


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no layout laid out before (the cache is process-wide)."""
    monkeypatch.setattr(_prepare, "_LAYOUTS", {})
    monkeypatch.setattr(_prepare, "_PREPARED", {})


def compiled_codec(layout: Any) -> Any:
    """A codec of ``layout`` whose generated code is compiled (it compiles at the 2nd use)."""
    codec = NUMPY.make_codec(layout)
    assert codec.bind_pair is not None
    assert codec.bind_pair(lambda d: None, (), None) is None  # the first use: not compiled
    assert codec.bind_pair(lambda d: None, (), None) is not None
    return codec


def objective(fun: Any, layout: Any, codec: Any, args: tuple = ()) -> Objective:
    return Objective(fun, args, layout, codec, mode="pair", private_x=True)


# -- the split and the evaluation, against the checking path, over many layouts -----------------

DTYPES = [np.float64, np.float32, np.float16]
shapes = st.lists(st.integers(0, 3), min_size=0, max_size=3).map(tuple)
keys = st.one_of(st.text(max_size=3), st.integers(-5, 5), st.tuples(st.integers(0, 2)))


@st.composite
def layouts(draw: Any) -> dict:
    names = draw(st.lists(keys, min_size=1, max_size=6, unique=True))
    x0 = {k: np.zeros(draw(shapes), dtype=draw(st.sampled_from(DTYPES))) for k in names}
    if sum(v.size for v in x0.values()) == 0:
        x0[names[0]] = np.zeros(2)
    return x0


def grad_fun(d: dict) -> tuple[float, dict]:
    """A value and gradient in each entry's own dtype and shape (what users return)."""
    value = sum(float((v.astype(np.float64) ** 2).sum()) for v in d.values())
    return value, {k: (2 * v).astype(v.dtype) for k, v in reversed(list(d.items()))}


@derandomized("DICT_MINIMIZE_HYPOTHESIS_EXAMPLES", 60)
@given(x0=layouts(), seed=st.integers(0, 2**16))
def test_generated_code_matches_the_checking_path(x0: dict, seed: int) -> None:
    layout = make_layout(x0, NUMPY)
    fast_codec, slow_codec = compiled_codec(layout), NUMPY.make_codec(layout)
    vec = np.random.default_rng(seed).normal(size=layout.n)
    fast_parts, slow_parts = (
        fast_codec.unflatten(vec, for_objective=True),
        slow_codec.unflatten(vec, for_objective=True),
    )
    for a, b, shape, dtype in zip(
        fast_parts, slow_parts, layout.shapes, layout.dtypes, strict=True
    ):
        assert type(a) is np.ndarray and a.shape == b.shape == shape and a.dtype == b.dtype == dtype
        np.testing.assert_array_equal(a, b)
        assert not np.shares_memory(a, vec)  # a copy of SciPy's vector, never a view of it
    fast = objective(grad_fun, layout, fast_codec)
    slow = objective(grad_fun, layout, slow_codec)
    assert fast._fast is not None and slow._fast is None
    f1, g1 = fast.value_and_grad(vec.copy())
    f2, g2 = slow.value_and_grad(vec.copy())
    assert f1 == f2 and g1.dtype == g2.dtype == np.float64
    np.testing.assert_array_equal(g1, g2)


def test_entries_of_one_dtype_are_views_of_one_copy() -> None:
    layout = make_layout({"a": np.zeros(()), "w": np.zeros((2, 2)), "b": np.zeros(3)}, NUMPY)
    parts = compiled_codec(layout).unflatten(np.arange(8.0), for_objective=True)
    assert [p.shape for p in parts] == [(), (2, 2), (3,)]
    assert all(np.shares_memory(parts[0].base, p) for p in parts)  # one converted copy
    np.testing.assert_array_equal(parts[1], [[1, 2], [3, 4]])


# -- odd outputs: the checking path decides, with the output fun already returned ----------------

X0 = {"a": np.zeros(()), "w": np.zeros(2)}
GOOD = {"a": np.float64(1.0), "w": np.array([2.0, 3.0])}
OUTPUTS = {
    "a list pair": [1.5, GOOD],
    "an OrderedDict gradient": (1.5, OrderedDict(GOOD)),
    "a NumPy value": (np.float32(1.5), GOOD),
    "0-d array gradients": (1.5, {"a": np.array(1.0), "w": np.array([2.0, 3.0])}),
    "a missing key": (1.5, {"a": np.float64(1.0)}),
    "an extra key": (1.5, {**GOOD, "z": np.zeros(1)}),
    "a wrong key": (1.5, {"a": np.float64(1.0), "v": np.zeros(2)}),
    "a wrong shape": (1.5, {"a": np.float64(1.0), "w": np.zeros(3)}),
    "a list gradient": (1.5, {"a": np.float64(1.0), "w": [2.0, 3.0]}),
    "an integer gradient": (1.5, {"a": np.float64(1.0), "w": np.array([2, 3])}),
    "a vector value": (np.ones(2), GOOD),
    "a string value": ("1.5", GOOD),
    "no gradient": 1.5,
    "a triple": (1.5, GOOD, None),
    "a gradient that is a list": (1.5, [1.0, 2.0, 3.0]),
}


def outcome(run: Objective) -> Any:
    try:
        f, g = run.value_and_grad(np.array([0.5, 1.0, 2.0]))
    except Exception as exc:  # the error is the outcome
        return type(exc), str(exc)
    return f, g.tolist()


@pytest.mark.parametrize("name", OUTPUTS)
def test_odd_outputs_read_as_on_the_checking_path(name: str) -> None:
    calls: list[int] = []

    def fun(d: dict) -> Any:
        calls.append(1)
        return OUTPUTS[name]

    layout = make_layout(X0, NUMPY)
    fast = objective(fun, layout, compiled_codec(layout))
    slow = objective(fun, layout, NUMPY.make_codec(layout))
    assert fast._fast is not None
    assert outcome(fast) == outcome(slow)
    assert len(calls) == 2  # fun ran once on each path: the fallback reuses its output


def test_a_second_solve_compiles_and_every_solve_agrees() -> None:
    """The first solve runs the checking path, the later ones the generated code and the memo:
    the same iterates, value, counts and message, bit for bit."""

    def fun(d: dict, c: np.ndarray) -> tuple[float, dict]:
        r = d["w"] - c
        return float(r @ r + 0.1 * (r**4).sum() + (d["a"] - 1.0) ** 2), {
            "w": 2 * r + 0.4 * r**3,
            "a": 2 * (d["a"] - 1.0),
        }

    x0 = {"w": np.zeros(3), "a": np.float64(0.0)}
    c = np.array([1.0, -2.0, 0.5])
    runs = [minimize(fun, x0, args=(c,), method="L-BFGS-B", lb_dict={"a": 0.0}) for _ in range(3)]
    codec = _prepare.prepare(x0, None, {"a": 0.0}, None).codec
    assert codec.bind_pair(fun, (c,), None) is not None  # compiled by now
    first = runs[0]
    for res in runs[1:]:
        assert res.fun == first.fun and res.nfev == first.nfev and res.nit == first.nit
        assert res.message == first.message
        for k in x0:
            np.testing.assert_array_equal(res.x[k], first.x[k])
            np.testing.assert_array_equal(res.jac[k], first.jac[k])


def flat_quartic(x: np.ndarray) -> tuple[float, np.ndarray]:
    r = x - np.array([1.0, -2.0, 0.5])
    return float((r * r).sum() + 0.1 * (r**4).sum()), 2 * r + 0.4 * r**3


def dict_quartic(d: dict) -> tuple[float, dict]:
    f, g = flat_quartic(np.array([d["a"], d["b"], d["c"]]))
    return f, {"a": g[0], "b": g[1], "c": g[2]}


@pytest.mark.parametrize("method", ["L-BFGS-B", "BFGS", "CG", "TNC", "SLSQP", "trust-constr"])
def test_our_memo_runs_scipys_protocol(method: str) -> None:
    """SciPy turns ``jac=True`` into a value and a gradient function over a memo of the last
    point; ours is that protocol: the same iterates as plain SciPy, bit for bit."""
    x0 = {"a": np.float64(3.0), "b": np.float64(3.0), "c": np.float64(3.0)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # trust-constr's "delta_grad == 0.0" on some machines
        plain = scipy.optimize.minimize(flat_quartic, np.full(3, 3.0), jac=True, method=method)
        for _ in range(2):  # the checking path, then the generated one
            ours = minimize(dict_quartic, x0, method=method)
            assert ours.fun == plain.fun and ours.nit == plain.nit
            np.testing.assert_array_equal([ours.x[k] for k in "abc"], plain.x)


def test_memo_evaluates_each_new_point_once() -> None:
    calls: list[list[float]] = []

    def fun(d: dict) -> tuple[float, dict]:
        calls.append([float(d["a"]), float(d["b"])])
        return float(d["a"] ** 2 + d["b"] ** 2), {"a": 2 * d["a"], "b": 2 * d["b"]}

    layout = make_layout({"a": np.zeros(()), "b": np.zeros(())}, NUMPY)
    run = objective(fun, layout, compiled_codec(layout))
    x = np.array([1.0, 2.0])
    assert run.value_of_pair(x) == 5.0
    np.testing.assert_array_equal(run.grad_of_pair(x.copy()), [2.0, 4.0])  # equal values: memo
    assert len(calls) == 1 and run.nfev == 1
    np.testing.assert_array_equal(run.grad_of_pair(np.array([0.0, 1.0])), [0.0, 2.0])
    assert len(calls) == 2
    assert run.value_of_pair(np.array([-0.0, 1.0])) == 1.0  # equal to 0.0, as in SciPy's memo
    assert len(calls) == 2


# -- the non-finite policy and the best point on the short path ---------------------------------


def test_huge_finite_gradients_are_finite_and_nan_later_is_caught() -> None:
    """The short path checks the sum; a sum that overflows goes to the exact check."""
    seen: list[int] = []

    def fun(d: dict) -> tuple[float, dict]:
        seen.append(1)
        x = d["x"]
        value = float(((x - 2.0) ** 2).sum())
        g = 2 * (x - 2.0)
        if len(seen) == 3:
            g = np.full(2, 1e308)  # finite, but its sum is not
        if len(seen) == 5:
            value = math.nan
        return value, {"x": g}

    layout = make_layout({"x": np.zeros(2)}, NUMPY)
    run = objective(fun, layout, compiled_codec(layout))
    for i in range(6):
        f, g = run.value_and_grad(np.array([0.1 * i, 0.0]))
        if i == 2:
            np.testing.assert_array_equal(g, [1e308, 1e308])
        assert run.is_substitute(f) == (i == 4)  # the NaN became a stand-in value
    assert run.bad_evaluations == 1 and run.nfev == 6
    assert run.best_f == pytest.approx(((np.array([0.5, 0.0]) - 2.0) ** 2).sum())


def test_writing_into_the_inputs_changes_nothing_on_the_short_path() -> None:
    """NumPy entries are views of the codec's own copy: scribbling on them after computing
    the value cannot change SciPy's x, the memo or the best point."""

    def clean(d: dict) -> tuple[float, dict]:
        r = d["x"] - np.array([1.0, -2.0, 0.5])
        return float(r @ r), {"x": 2 * r}

    def scribbler(d: dict) -> tuple[float, dict]:
        out = clean(d)
        d["x"][:] = 1e9
        return out

    x0 = {"x": np.zeros(3)}
    expected = minimize(clean, x0, method="L-BFGS-B")
    for _ in range(2):
        got = minimize(scribbler, x0, method="L-BFGS-B")
        assert got.fun == expected.fun and got.nfev == expected.nfev
        np.testing.assert_array_equal(got.x["x"], expected.x["x"])
    np.testing.assert_array_equal(x0["x"], 0.0)  # x0 only read

"""The shared preparation's cache: repeated solves of one flat NumPy structure lay x0 out once.

The layout and codec depend only on the structure (mapping type, keys in order, each entry's
type, shape and dtype) and the flattened bounds only on the scalar bound values, so both are
reused; the values of x0 never are.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

from dict_minimize import minimize
from dict_minimize._problem.prepare import prepare


def quad(d: dict) -> tuple[float, dict]:
    r = d["a"] - 2.0
    return float(np.sum(r**2) + d["b"] ** 2), {"a": 2 * r, "b": 2 * d["b"]}


def test_same_structure_reuses_the_layout_not_the_values() -> None:
    one = prepare({"a": np.zeros(3), "b": 1.0}, None, {"a": 0.0}, None)
    two = prepare({"a": np.ones(3), "b": 5.0}, None, {"a": 0.0}, None)
    assert one.layout is two.layout and one.codec is two.codec and one.bounds is two.bounds
    np.testing.assert_array_equal(one.x0_flat, [0, 0, 0, 1])
    np.testing.assert_array_equal(two.x0_flat, [1, 1, 1, 5])
    assert not two.bounds.lb.flags.writeable  # shared: read-only


@pytest.mark.parametrize(
    "other",
    [
        {"a": np.zeros(3, dtype=np.float32), "b": 1.0},  # another dtype
        {"a": np.zeros(4), "b": 1.0},  # another shape
        {"b": 1.0, "a": np.zeros(3)},  # another key order
        OrderedDict(a=np.zeros(3), b=1.0),  # another mapping type
        {"a": np.zeros(3), "b": np.float64(1.0)},  # another entry type
    ],
)
def test_another_structure_gets_its_own_layout(other: dict) -> None:
    base = prepare({"a": np.zeros(3), "b": 1.0}, None, None, None)
    got = prepare(other, None, None, None)
    assert got.layout is not base.layout
    assert list(got.layout.keys) == list(other)


def test_bounds_are_cached_by_value() -> None:
    x0 = {"a": np.zeros(3), "b": 1.0}
    low = prepare(x0, None, {"a": 0.5}, None)
    high = prepare(x0, None, {"a": 1.5}, None)
    array = prepare(x0, None, {"a": np.full(3, 0.5)}, None)  # arrays: flattened each time
    assert low.bounds is not high.bounds and array.bounds is not low.bounds
    np.testing.assert_array_equal(low.bounds.lb[:3], 0.5)
    np.testing.assert_array_equal(high.bounds.lb[:3], 1.5)
    np.testing.assert_array_equal(array.bounds.lb, low.bounds.lb)


def test_repeated_solves_agree_with_fresh_ones() -> None:
    """Solves through the cache give what the uncached path gives, bound by bound."""
    for lb in (0.0, 2.5, 3.0):
        x0 = {"a": np.full(2, 1.0 + lb), "b": 0.5}
        res = minimize(quad, x0, lb_dict={"a": lb}, method="L-BFGS-B")
        expected = max(2.0, lb)
        np.testing.assert_allclose(res.x["a"], [expected, expected], atol=1e-6)
        assert x0["a"][0] == 1.0 + lb  # x0 is only read
    with pytest.raises(ValueError, match="contains NaN"):  # errors are never cached away
        minimize(quad, {"a": np.zeros(2), "b": 0.5}, lb_dict={"a": float("nan")})
    with pytest.raises(ValueError, match="contains NaN"):
        minimize(quad, {"a": np.zeros(2), "b": 0.5}, lb_dict={"a": float("nan")})


def test_other_frameworks_and_nests_are_not_cached() -> None:
    nested = {"a": {"c": np.zeros(2)}, "b": 1.0}
    assert prepare(nested, None, None, None).layout is not prepare(nested, None, None, None).layout
    torch = pytest.importorskip("torch")
    x0 = {"a": torch.zeros(2)}
    assert prepare(x0, None, None, None).layout is not prepare(x0, None, None, None).layout

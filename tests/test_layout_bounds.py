"""Property tests: flatten/unflatten round trips and every form of bounds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dict_minimize import minimize
from dict_minimize._problem.bounds import make_bounds
from dict_minimize._structure.layout import make_layout
from dict_minimize.backends import get_backend
from tests.conftest import DTYPES, Framework, flat_objective

shapes = st.lists(st.integers(0, 3), min_size=0, max_size=5).map(tuple)
entries = st.lists(
    st.tuples(st.text(max_size=6), shapes, st.sampled_from(DTYPES)),
    min_size=1,
    max_size=6,
    unique_by=lambda e: e[0],
).filter(lambda es: sum(math.prod(s) for _, s, _ in es) > 0)

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def exact_in(dtype: str, values: np.ndarray) -> np.ndarray:
    """Values exactly representable in ``dtype`` (small integers / 8), so round trips are exact."""
    return np.round(values * 8) / 8


@SETTINGS
@given(spec=entries, seed=st.integers(0, 2**16))
def test_roundtrip(fw: Framework, spec, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x0 = {k: fw.tensor(exact_in(dt, rng.uniform(-8, 8, size=s)), dt) for k, s, dt in spec}
    backend = get_backend(fw.name)
    layout = make_layout(x0, backend)
    codec = backend.make_codec(layout)
    assert layout.keys == tuple(x0)
    assert layout.n == sum(math.prod(s) for _, s, _ in spec)

    _, flat = codec.flatten(None, [x0[k] for k in layout.keys])
    assert flat.dtype == np.float64 and flat.shape == (layout.n,)
    expected = np.concatenate([fw.to_numpy(x0[k]).ravel() for k in layout.keys])
    np.testing.assert_array_equal(flat, expected)

    for for_objective in (True, False):
        back = layout.build(codec.unflatten(flat, for_objective=for_objective))
        assert list(back) == list(x0)
        for k, s, dt in spec:
            assert tuple(back[k].shape) == s
            assert fw.dtype_name(back[k]) == dt
            np.testing.assert_array_equal(fw.to_numpy(back[k]), fw.to_numpy(x0[k]))


def test_unflatten_does_not_alias_scipy_vector(fw: Framework) -> None:
    backend = get_backend(fw.name)
    layout = make_layout({"a": fw.tensor([1.0, 2.0])}, backend)
    vec = np.array([1.0, 2.0])
    out = backend.make_codec(layout).unflatten(vec, for_objective=False)
    vec[:] = 99.0
    np.testing.assert_array_equal(fw.to_numpy(out[0]), [1.0, 2.0])


bound_value = st.one_of(
    st.none(),
    st.floats(-5, 5),
    st.sampled_from([-np.inf, np.inf]),
    st.just("array"),
    st.just("tensor"),
)


@SETTINGS
@given(
    lb_spec=st.dictionaries(st.sampled_from(["m", "s", "v"]), bound_value, max_size=3),
    ub_spec=st.dictionaries(st.sampled_from(["m", "s", "v"]), bound_value, max_size=3),
    use_lb=st.booleans(),
    use_ub=st.booleans(),
)
def test_bounds_forms(fw: Framework, lb_spec, ub_spec, use_lb, use_ub) -> None:
    x0 = {"m": fw.tensor(np.zeros((2, 2))), "s": fw.tensor(0.0), "v": fw.tensor([0.0, 1.0, 2.0])}
    backend = get_backend(fw.name)
    layout = make_layout(x0, backend)
    shapes_ = dict(zip(layout.keys, layout.shapes, strict=True))

    def concrete(spec, offset):
        out = {}
        for k, v in spec.items():
            if v == "array":
                out[k] = np.full(shapes_[k], offset)
            elif v == "tensor":
                out[k] = fw.tensor(np.full(shapes_[k], offset))
            else:
                out[k] = v
        return out

    lb_dict = concrete(lb_spec, -1.0) if use_lb else None
    ub_dict = concrete(ub_spec, 1.0) if use_ub else None

    def expected(spec_dict, fill):
        parts = []
        for k in layout.keys:
            v = None if spec_dict is None else spec_dict.get(k)
            if v is None:
                v = fill
            elif not isinstance(v, (float, int)):
                v = fw.to_numpy(v) if not isinstance(v, np.ndarray) else v
            parts.append(np.broadcast_to(np.asarray(v, dtype=float), shapes_[k]).ravel())
        return np.concatenate(parts)

    lo, hi = expected(lb_dict, -np.inf), expected(ub_dict, np.inf)
    if np.any(lo > hi):
        with pytest.raises(ValueError, match=r"lb_dict\[.*\] > ub_dict"):
            make_bounds(lb_dict, ub_dict, layout, backend)
        return
    bounds = make_bounds(lb_dict, ub_dict, layout, backend)
    if lb_dict is None and ub_dict is None:
        assert bounds is None
        return
    assert bounds is not None
    assert bounds.lb.dtype == np.float64 and bounds.ub.dtype == np.float64
    np.testing.assert_array_equal(bounds.lb, lo)
    np.testing.assert_array_equal(bounds.ub, hi)


def test_bounds_respected_in_result(fw: Framework) -> None:
    def obj(x):
        return float(np.sum((x - 3.0) ** 2)), 2 * (x - 3.0)

    x0 = {"a": fw.tensor([0.0, 0.0]), "b": fw.tensor(0.0), "c": fw.tensor([[0.0]])}
    res = minimize(
        flat_objective(fw, obj),
        x0,
        lb_dict={"a": -1.0},
        ub_dict={"a": np.array([1.0, 2.0]), "b": None, "c": fw.tensor([[0.5]])},
    )
    np.testing.assert_allclose(fw.to_numpy(res.x["a"]), [1.0, 2.0])
    np.testing.assert_allclose(fw.to_numpy(res.x["b"]), 3.0, atol=1e-6)
    np.testing.assert_allclose(fw.to_numpy(res.x["c"]), [[0.5]])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_bounds_rounded_inward_for_low_precision(fw: Framework, dtype: str) -> None:
    """The objective never sees x outside the bounds after the cast to the entry's dtype."""
    lo, hi = 0.1, 0.3  # not representable in float16/bfloat16/float32
    seen = []

    def obj(x):
        return float(np.sum((x - 5.0) ** 2) + np.sum((x + 5.0) ** 2) * 0), 2 * (x - 5.0)

    base = flat_objective(fw, obj)

    def fun(d):
        seen.append(fw.to_numpy(d["x"]).copy())
        return base(d)

    res = minimize(fun, {"x": fw.tensor([0.2, 0.2], dtype)}, lb_dict={"x": lo}, ub_dict={"x": hi})
    allx = np.concatenate([*seen, fw.to_numpy(res.x["x"])])
    assert allx.min() >= lo and allx.max() <= hi

"""``dict_minimize.testfunctions``: the facts about each function, its analytic gradient, its
objectives in every installed framework, and L-BFGS-B runs from the usual start points.

Facts: the value at each known minimum is ``f_min`` and the gradient vanishes there; ``f_min`` is
a lower bound over a grid of the domain. Gradients: the analytic NumPy gradient against central
differences, and the frameworks' autodiff gradients against it, at random points (hypothesis).
The flower has no minimum: it is checked to be NaN at the origin, above its infimum elsewhere,
with a gradient of norm at least ``a``, and to tend to the infimum along its valleys.
"""

from __future__ import annotations

import importlib
import math
import pickle
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from dict_minimize import NonFiniteError, minimize
from dict_minimize.testfunctions import (
    ALL,
    DTYPES,
    TestFunction,
    beale,
    booth,
    flower,
    himmelblau,
    rastrigin,
    rosenbrock,
)
from tests.conftest import INSTALLED, Framework, derandomized

POINTS = derandomized("DICT_MINIMIZE_TESTFUNCTION_EXAMPLES", 20)
#: the functions with a minimum that L-BFGS-B reaches from the usual start
SOLVED = ("rosenbrock", "beale", "booth", "himmelblau")
ATTAINED = [name for name, fn in ALL.items() if fn.attained]


def points(fn: TestFunction, min_radius: float = 0.0) -> st.SearchStrategy[tuple[float, float]]:
    """Points of ``fn``'s domain, at least ``min_radius`` from the origin."""
    (x0, x1), (y0, y1) = fn.domain
    pairs = st.tuples(st.floats(x0, x1), st.floats(y0, y1))
    return pairs.filter(lambda p: math.hypot(*p) >= min_radius)


def autodiff(fw: Framework, fun: Callable) -> Callable[[dict], tuple[Any, dict]]:
    """``(value, grad dict)`` of a value-only objective, by ``fw``'s autodiff (the package's
    ``value_and_grad`` helper); NumPy objectives already return the pair."""
    if fw.name == "numpy":
        return fun
    return importlib.import_module(f"dict_minimize.{fw.name}_api").value_and_grad(fun)


def central_differences(fn: TestFunction, x: float, y: float) -> np.ndarray:
    grad = []
    for dx, dy in ((1.0, 0.0), (0.0, 1.0)):
        h = 1e-6 * (1.0 + abs(x if dx else y))
        up, down = float(fn(x + h * dx, y + h * dy)), float(fn(x - h * dx, y - h * dy))
        grad.append((up - down) / (2 * h))
    return np.array(grad)


def on(fw: Framework, x: float, y: float, dtype: str = "float64") -> dict[str, Any]:
    return {"x": fw.tensor(x, dtype), "y": fw.tensor(y, dtype)}


# --- the module and the record ------------------------------------------------------------


def test_import_loads_no_framework() -> None:
    code = (
        "import sys\n"
        "import dict_minimize.testfunctions as t\n"
        "for fn in t.ALL.values():\n"
        "    fn(0.5, 0.5), fn.grad(0.5, 0.5), fn.objective()(fn.x0())\n"
        "heavy = [m for m in ('torch', 'jax', 'jaxlib', 'tensorflow') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr


def test_catalogue() -> None:
    assert list(ALL) == ["rosenbrock", "beale", "booth", "himmelblau", "rastrigin", "flower"]
    factories = [rosenbrock, beale, booth, himmelblau, rastrigin, flower]
    for (name, fn), factory in zip(ALL.items(), factories, strict=True):
        assert fn.name == name == factory.__name__
        assert factory() == fn and hash(factory()) == hash(fn)
        assert fn.__doc__ and factory.__doc__
    assert TestFunction.__test__ is False
    assert len(himmelblau().minima) == 4
    assert rosenbrock(b=10.0) != rosenbrock()
    assert repr(rosenbrock()) == "TestFunction('rosenbrock', a=1.0, b=100.0)"
    assert repr(beale()) == "TestFunction('beale')"
    assert flower(c=3).params == {"a": 1.0, "b": 1.0, "c": 3.0}
    assert rastrigin(A=5).params == {"A": 5.0}


@pytest.mark.parametrize("name", ALL)
def test_domain_holds_the_start_and_the_minima(name: str) -> None:
    fn = ALL[name]
    (x0, x1), (y0, y1) = fn.domain
    assert x0 < x1 and y0 < y1
    assert bool(fn.minima) != bool(fn.infimum_at)  # one or the other
    for p in (fn.start, *fn.minima, *fn.infimum_at):
        assert set(p) == {"x", "y"} and all(type(v) is float for v in p.values())
        assert x0 <= p["x"] <= x1 and y0 <= p["y"] <= y1


def test_parameters_move_the_minimum() -> None:
    fn = rosenbrock(a=2.0, b=5.0)
    assert fn.minima == ({"x": 2.0, "y": 4.0},)
    (x0, x1), (y0, y1) = fn.domain
    assert x0 <= 2.0 <= x1 and y0 <= 4.0 <= y1
    assert float(fn(2.0, 4.0)) == 0.0
    assert flower(b=2.5).f_min == -2.5


@pytest.mark.parametrize(
    ("factory", "kwargs", "match"),
    [
        (rosenbrock, {"b": 0.0}, r"rosenbrock\(b=...\) must be positive; got b=0.0"),
        (rastrigin, {"A": -1.0}, r"rastrigin\(A=...\) must be non-negative; got A=-1.0"),
        (flower, {"a": 0.0}, r"flower\(a=...\) must be positive"),
        (flower, {"b": -1.0}, r"flower\(b=...\) must be positive"),
        (flower, {"c": 2.5}, r"flower\(c=...\) must be a positive integer; got c=2.5"),
        (flower, {"c": 0.0}, r"flower\(c=...\) must be a positive integer"),
    ],
)
def test_bad_parameters(factory: Callable, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        factory(**kwargs)


def test_bad_arguments() -> None:
    fn = booth()
    with pytest.raises(ValueError, match=r"framework must be one of .*'numpy'.*; got 'mxnet'"):
        fn.objective("mxnet")
    with pytest.raises(ValueError, match=r"framework must be one of"):
        fn.x0("NumPy")
    with pytest.raises(ValueError, match=r"dtype must be None or one of .*; got 'float128'"):
        fn.x0(dtype="float128")
    with pytest.raises(ValueError, match=r"dtype must be None or one of"):
        fn.objective(dtype="int32")
    fun = fn.objective()
    with pytest.raises(ValueError, match=r"exactly the keys 'x' and 'y'; got the keys 'x', 'z'$"):
        fun({"x": np.float64(1.0), "z": np.float64(2.0)})
    with pytest.raises(TypeError, match=r"takes a dict \{'x': ..., 'y': ...\}; got a list"):
        fun([1.0, 2.0])


def test_missing_framework(monkeypatch: pytest.MonkeyPatch) -> None:
    from dict_minimize import testfunctions

    testfunctions._ops.cache_clear()
    monkeypatch.setitem(sys.modules, "torch", None)
    try:
        with pytest.raises(ImportError, match=r"pip install 'dict_minimize\[torch\]'"):
            booth().objective("torch")
    finally:
        testfunctions._ops.cache_clear()


def test_numpy_grids() -> None:
    fn = himmelblau()
    xs, ys = np.meshgrid(np.linspace(-5, 5, 7), np.linspace(-5, 5, 5))
    values = fn(xs, ys)
    assert values.shape == (5, 7) and values.dtype == np.float64
    assert values[2, 3] == float(fn(0.0, 0.0)) == 170.0
    gx, gy = fn.grad(xs, ys)
    assert gx.shape == gy.shape == (5, 7)
    gx, gy = fn.grad(np.linspace(-1, 1, 4), 0.5)  # broadcast
    assert gx.shape == gy.shape == (4,)
    assert fn(3, 2).shape == ()  # integers are evaluated in float64 too


def test_objectives_and_start_points_pickle() -> None:
    fn = flower()
    fun = pickle.loads(pickle.dumps(fn.objective()))
    assert fun(fn.x0()) == fn.objective()(fn.x0())
    assert pickle.loads(pickle.dumps(fn)) == fn


# --- the facts ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ATTAINED)
def test_f_min_and_zero_gradient_at_the_minima(name: str) -> None:
    fn = ALL[name]
    for m in fn.minima:
        assert float(fn(m["x"], m["y"])) == pytest.approx(fn.f_min, abs=1e-12)
        assert np.linalg.norm(fn.grad(m["x"], m["y"])) < 1e-12
        value, grad = fn.objective()({k: np.float64(v) for k, v in m.items()})
        assert value == pytest.approx(fn.f_min, abs=1e-12)
        assert abs(float(grad["x"])) < 1e-12 and abs(float(grad["y"])) < 1e-12


@pytest.mark.parametrize("name", ALL)
def test_f_min_bounds_a_grid_of_the_domain(name: str) -> None:
    fn = ALL[name]
    (x0, x1), (y0, y1) = fn.domain
    xs, ys = np.meshgrid(np.linspace(x0, x1, 301), np.linspace(y0, y1, 301))
    values = fn(xs, ys)
    finite = values[np.isfinite(values)]
    assert finite.size >= values.size - 1  # the flower is NaN at the origin, a grid point
    assert finite.min() >= fn.f_min - 1e-12


@pytest.mark.parametrize("name", ALL)
@POINTS
@given(data=st.data())
def test_gradient_matches_central_differences(name: str, data: st.DataObject) -> None:
    fn = ALL[name]
    x, y = data.draw(points(fn, min_radius=0.1))  # away from the flower's origin
    grad = np.array(fn.grad(x, y))
    scale = 1.0 + abs(float(fn(x, y))) + float(np.abs(grad).max())
    np.testing.assert_allclose(central_differences(fn, x, y), grad, rtol=0, atol=1e-6 * scale)


# --- every framework ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
@POINTS
@given(data=st.data())
def test_frameworks_agree_with_numpy(fw: Framework, name: str, data: st.DataObject) -> None:
    """The objective of ``fw`` (float64; JAX under the fixture's x64): the NumPy value, and
    an autodiff gradient equal to the analytic one."""
    fn = ALL[name]
    x, y = data.draw(points(fn))
    if not fn.attained:  # the flower: its origin, or points well away from it
        assume(math.hypot(x, y) == 0 or math.hypot(x, y) >= 1e-3)
    expected = float(fn(x, y))
    value = fn.objective(fw.name)(on(fw, x, y))
    if fw.name == "numpy":
        value = value[0]
    else:
        assert fw.type_check(value) and fw.dtype_name(value) == "float64"
    np.testing.assert_allclose(float(fw.to_numpy(value)), expected, rtol=1e-12, equal_nan=True)

    value, grad = _vg(fw, fn)(on(fw, x, y))
    assert set(grad) == {"x", "y"}
    analytic = np.array(fn.grad(x, y))
    if math.isnan(expected):  # where the function is undefined
        assert not np.isfinite([fw.to_numpy(grad[k]) for k in "xy"]).any()
        return
    got = np.array([fw.to_numpy(grad["x"]), fw.to_numpy(grad["y"])])
    scale = 1.0 + abs(expected) + float(np.abs(analytic).max())
    np.testing.assert_allclose(got, analytic, rtol=0, atol=1e-10 * scale)


_VG: dict[tuple[str, str], Callable] = {}


def _vg(fw: Framework, fn: TestFunction) -> Callable:
    """One autodiff wrapper per framework and function (JAX compiles it once)."""
    key = (fw.name, fn.name)
    if key not in _VG:
        _VG[key] = autodiff(fw, fn.objective(fw.name))
    return _VG[key]


def test_start_points_in_every_framework(fw: Framework) -> None:
    for fn in ALL.values():
        x0 = fn.x0(fw.name)
        assert set(x0) == {"x", "y"}
        for k, v in x0.items():
            assert fw.type_check(v) and fw.dtype_name(v) == "float64" and np.shape(v) == ()
            assert float(fw.to_numpy(v)) == fn.start[k]
        for dtype in DTYPES:
            if fw.name == "numpy" and dtype == "bfloat16":
                pytest.importorskip("ml_dtypes")
            assert fw.dtype_name(fn.x0(fw.name, dtype)["x"]) == dtype


@pytest.mark.skipif("jax" not in INSTALLED, reason="JAX is not installed")
def test_jax_without_x64() -> None:
    import jax

    with jax.enable_x64(False):
        fn = rosenbrock()
        x0 = fn.x0("jax")
        assert x0["x"].dtype == np.float32  # JAX's default float
        with pytest.raises(ValueError, match=r"x64 enabled, and it is off: call jax.config"):
            fn.x0("jax", "float64")
        res = minimize(fn.objective("jax"), x0, jac="autodiff", method="L-BFGS-B")
        assert res.x["x"].dtype == np.float32 and fn.distance(res.x) < 1e-2


def test_dtype_of_evaluation(fw: Framework) -> None:
    """``dtype=`` evaluates in that dtype; gradients keep the entries' dtype."""
    fn = rosenbrock()
    x = on(fw, -1.2, 1.0, "float32")
    expected = float(fn(np.float32(-1.2), 1.0))  # the float32 point, evaluated in float64
    value, grad = autodiff(fw, fn.objective(fw.name, dtype="float64"))(x)
    assert [fw.dtype_name(grad[k]) for k in "xy"] == ["float32", "float32"]
    assert float(fw.to_numpy(value)) == pytest.approx(expected, rel=1e-12)
    value32, _ = autodiff(fw, fn.objective(fw.name))(x)
    if fw.name != "numpy":
        assert fw.dtype_name(value32) == "float32"
    assert float(fw.to_numpy(value32)) == pytest.approx(expected, rel=1e-5)


def test_entries_of_any_shape_are_copies(fw: Framework) -> None:
    fn = beale()
    xs, ys = np.array([0.5, 1.0, 3.0]), np.array([-1.0, 0.25, 0.5])
    d = {"x": fw.tensor(xs, "float64"), "y": fw.tensor(ys, "float64")}
    value, grad = autodiff(fw, fn.objective(fw.name))(d)
    assert float(fw.to_numpy(value)) == pytest.approx(float(fn(xs, ys).sum()), rel=1e-12)
    np.testing.assert_allclose(fw.to_numpy(grad["x"]), fn.grad(xs, ys)[0], rtol=1e-12)
    np.testing.assert_allclose(fw.to_numpy(grad["y"]), fn.grad(xs, ys)[1], rtol=1e-12)


# --- runs from the usual start --------------------------------------------------------------


def solve(fw: Framework, fn: TestFunction) -> Any:
    jac = True if fw.name == "numpy" else "autodiff"
    return minimize(fn.objective(fw.name), fn.x0(fw.name), jac=jac, method="L-BFGS-B")


@pytest.mark.parametrize("name", SOLVED)
def test_lbfgsb_reaches_a_minimum(fw: Framework, name: str) -> None:
    fn = ALL[name]
    res = solve(fw, fn)
    assert res.success, res.message
    assert all(fw.type_check(v) for v in res.x.values())
    assert fn.distance(res.x) < 1e-4
    assert res.fun == pytest.approx(fn.f_min, abs=1e-8)


def test_rastrigin_ends_in_a_local_minimum(fw: Framework) -> None:
    """Not necessarily the global one: from (-2, 3.5), the one near the lattice point (-2, 3)."""
    fn = rastrigin()
    res = solve(fw, fn)
    assert res.success, res.message
    x, y = float(res.x["x"]), float(res.x["y"])
    assert np.abs(fn.grad(x, y)).max() < 1e-4
    a = fn.params["A"]
    for t in (x, y):  # the Hessian is diagonal: both curvatures positive, a minimum
        assert 2 + 4 * math.pi**2 * a * math.cos(2 * math.pi * t) > 0
    assert (round(x), round(y)) == (-2, 3)
    assert res.fun > fn.f_min + 10  # a local minimum, well above the global one


def test_flower_run_approaches_the_infimum(fw: Framework) -> None:
    fn = flower()
    res = solve(fw, fn)
    assert fn.f_min < res.fun < fn.f_min + 1e-2
    assert fn.distance(res.x) < 1e-2  # the distance to the origin


# --- the flower: no minimum, undefined at the origin -----------------------------------------


def test_flower_at_the_origin(fw: Framework) -> None:
    fn = flower()
    assert math.isnan(float(fn(0.0, 0.0)))
    assert all(math.isnan(float(g)) for g in fn.grad(0.0, 0.0))
    origin = on(fw, 0.0, 0.0)
    value, grad = autodiff(fw, fn.objective(fw.name))(origin)
    assert math.isnan(float(fw.to_numpy(value)))
    assert not np.isfinite([fw.to_numpy(grad[k]) for k in "xy"]).any()
    with pytest.raises(NonFiniteError):
        minimize(fn.objective(fw.name), origin, jac=True if fw.name == "numpy" else "autodiff")


@POINTS
@given(p=points(flower(), min_radius=1e-6))
def test_flower_is_above_its_infimum_with_no_stationary_point(p: tuple[float, float]) -> None:
    fn = flower(a=0.5, b=2.0, c=3.0)
    x, y = p
    assert float(fn(x, y)) >= fn.f_min
    assert np.linalg.norm(fn.grad(x, y)) >= fn.params["a"] * (1 - 1e-12)


def test_flower_tends_to_its_infimum_along_the_valleys() -> None:
    fn = flower()
    for k in range(4):
        theta = -math.pi / 8 + k * math.pi / 2
        for r in (1e-2, 1e-5, 1e-8):
            value = float(fn(r * math.cos(theta), r * math.sin(theta)))
            assert value - fn.f_min == pytest.approx(r, rel=1e-6, abs=1e-14)
    assert fn.minima == () and not fn.attained
    assert fn.infimum_at == ({"x": 0.0, "y": 0.0},)

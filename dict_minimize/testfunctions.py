"""Classic two-variable test functions, over the dict ``{"x": ..., "y": ...}``, in any framework.

Each is a :class:`TestFunction`: its formula, a plotting domain, the usual start point, the
known global minimizers and the minimum value, NumPy evaluation on grids (``fn(x, y)``,
``fn.grad(x, y)``), and objectives for :func:`dict_minimize.minimize` in NumPy (value and
analytic gradient, for ``jac=True``) or PyTorch, JAX and TensorFlow (value only, written with
the framework's ops, for ``jac="autodiff"``).

- :func:`rosenbrock` ``(a, b)``: ``(a - x)² + b (y - x²)²``; minimum 0 at ``(a, a²)``.
- :func:`beale`: ``(1.5 - x + xy)² + (2.25 - x + xy²)² + (2.625 - x + xy³)²``; minimum 0 at
  ``(3, 0.5)``.
- :func:`booth`: ``(x + 2y - 7)² + (2x + y - 5)²``; minimum 0 at ``(1, 3)``.
- :func:`himmelblau`: ``(x² + y - 11)² + (x + y² - 7)²``; minimum 0 at four points.
- :func:`rastrigin` ``(A)``: ``2A + x² - A cos(2πx) + y² - A cos(2πy)``; minimum 0 at
  ``(0, 0)``, among a lattice of local minima.
- :func:`flower` ``(a, b, c)``: ``a √(x² + y²) + b sin(c atan2(y, x))``; undefined at the
  origin, no minimum: the infimum ``-b`` is approached only there.

:data:`ALL` maps each name to its default instance. Importing this module imports no framework:
PyTorch, JAX or TensorFlow is imported by :meth:`TestFunction.objective` or
:meth:`TestFunction.x0` when asked for.

Example:
    >>> from dict_minimize import minimize
    >>> from dict_minimize.testfunctions import ALL
    >>> for name, fn in ALL.items():  # L-BFGS-B from the usual start, NumPy, jac=True
    ...     res = minimize(fn.objective(), fn.x0(), method="L-BFGS-B")
    ...     gap, dist = res.fun - fn.f_min, fn.distance(res.x)
    ...     print(f"{name:10}  f - f_min = {gap:6.3f}  distance to a minimum = {dist:5.3f}")
    rosenbrock  f - f_min =  0.000  distance to a minimum = 0.000
    beale       f - f_min =  0.000  distance to a minimum = 0.000
    booth       f - f_min =  0.000  distance to a minimum = 0.000
    himmelblau  f - f_min =  0.000  distance to a minimum = 0.000
    rastrigin   f - f_min = 12.934  distance to a minimum = 3.587
    flower      f - f_min =  0.000  distance to a minimum = 0.000

    Rastrigin ends in a local minimum; the flower, which has no minimum, close to the origin
    (its ``infimum_at``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dict_minimize._compare.testfunction_ops import DTYPES, FRAMEWORKS, _numpy_dtype, _Ops, _ops
from dict_minimize._errors import fmt_keys, type_name

__all__ = [
    "ALL",
    "DTYPES",
    "FRAMEWORKS",
    "TestFunction",
    "beale",
    "booth",
    "flower",
    "himmelblau",
    "rastrigin",
    "rosenbrock",
]

Point = dict[str, float]
Domain = tuple[tuple[float, float], tuple[float, float]]


def _check_dtype(dtype: Any) -> None:
    if dtype is not None and dtype not in DTYPES:
        raise ValueError(f"dtype must be None or one of {DTYPES}; got {dtype!r}")


def _xy(x_dict: Any) -> tuple[Any, Any]:
    """The entries ``"x"`` and ``"y"`` of the point an objective is called on."""
    if not isinstance(x_dict, Mapping):
        raise TypeError(
            f"a test function's objective takes a dict {{'x': ..., 'y': ...}}; "
            f"got a {type_name(x_dict)}"
        )
    if set(x_dict) != {"x", "y"}:
        raise ValueError(
            "a test function's objective takes a dict with exactly the keys 'x' and 'y'; "
            f"got the keys {fmt_keys(x_dict)}"
        )
    return x_dict["x"], x_dict["y"]


def _as_float64(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _numpy_objective(fn: TestFunction, dtype: str | None, x_dict: Any) -> tuple[float, dict]:
    """``(value, gradient dict)`` of ``fn`` at ``x_dict``: the NumPy objective, for jac=True."""
    x, y = _xy(x_dict)
    x, y = np.asarray(x), np.asarray(y)
    out_dtypes = [a.dtype if np.issubdtype(a.dtype, np.floating) else np.float64 for a in (x, y)]
    work = [_numpy_dtype(dtype) if dtype is not None else dt for dt in out_dtypes]
    xw, yw = x.astype(work[0]), y.astype(work[1])
    value = float(np.sum(fn.value_fn(_ops("numpy"), xw, yw, fn.params)))
    gx, gy = fn.grad_fn(xw, yw, fn.params)
    return value, {"x": np.asarray(gx, out_dtypes[0]), "y": np.asarray(gy, out_dtypes[1])}


def _framework_objective(fn: TestFunction, framework: str, dtype: str | None, x_dict: Any) -> Any:
    """The value of ``fn`` at ``x_dict``, a 0-d tensor of ``framework``, for jac="autodiff"."""
    ops = _ops(framework)
    x, y = _xy(x_dict)
    if dtype is not None:
        work = ops.dtype(dtype)
        x, y = ops.cast(x, work), ops.cast(y, work)
    return ops.total(fn.value_fn(ops, x, y, fn.params))


@dataclass(frozen=True)
class TestFunction:
    """A two-variable test function over ``{"x": ..., "y": ...}``, with what plots and
    comparisons need to know about it.

    Build one with its factory (:func:`rosenbrock`, :func:`beale`, :func:`booth`,
    :func:`himmelblau`, :func:`rastrigin`, :func:`flower`) or take the defaults from
    :data:`ALL`. Instances are immutable, compare equal when their fields do, and hash by
    ``name``, ``formula``, ``domain`` and ``f_min``.

    Attributes:
        name: the factory's name, e.g. ``"rosenbrock"`` (the key in :data:`ALL`).
        formula: ``f(x, y)`` as text, for titles and tables (parameters by name).
        domain: ``((xmin, xmax), (ymin, ymax))``, the usual box to plot it over; it holds
            ``start``, ``minima`` and ``infimum_at``.
        start: the usual start point, ``{"x": float, "y": float}``.
        minima: the known global minimizers, a tuple of such dicts (Himmelblau has four);
            empty when the minimum is not attained (the flower).
        f_min: the global minimum value; where it is not attained, the infimum.
        value_fn: ``value_fn(ops, x, y, params)``, the formula, written once over a record of
            operations (``ops.sqrt``, ``ops.sin``, ...) that each framework provides.
        grad_fn: ``grad_fn(x, y, params) -> (df/dx, df/dy)``, the analytic gradient in NumPy.
        params: the parameters the formula uses, e.g. ``{"a": 1.0, "b": 100.0}``.
        infimum_at: points that minimizing sequences approach without reaching, where the
            function is undefined (the flower's origin); empty when ``minima`` is not.
    """

    __test__ = False  # a library class whose name starts with "Test": not a pytest test class

    name: str
    formula: str
    domain: Domain
    start: Point = field(hash=False)
    minima: tuple[Point, ...] = field(hash=False)
    f_min: float
    value_fn: Callable[[_Ops, Any, Any, Mapping[str, float]], Any] = field(hash=False, repr=False)
    grad_fn: Callable[[Any, Any, Mapping[str, float]], tuple[Any, Any]] = field(
        hash=False, repr=False
    )
    params: dict[str, float] = field(hash=False, default_factory=dict)
    infimum_at: tuple[Point, ...] = field(hash=False, default=())

    def __repr__(self) -> str:
        args = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({self.name!r}{args})"

    @property
    def attained(self) -> bool:
        """Whether the minimum is attained (``minima`` is not empty)."""
        return bool(self.minima)

    def __call__(self, x: Any, y: Any) -> np.ndarray:
        """The value at ``(x, y)``: NumPy arrays (broadcast against each other) or floats,
        evaluated in float64, e.g. over a ``np.meshgrid`` for a contour plot.

        Returns:
            np.ndarray: of the broadcast shape (0-d for two floats); NaN where the function is
                undefined (the flower's origin).
        """
        return np.asarray(self.value_fn(_ops("numpy"), _as_float64(x), _as_float64(y), self.params))

    def grad(self, x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        """The analytic gradient ``(df/dx, df/dy)`` at ``(x, y)`` (NumPy arrays or floats,
        broadcast, float64); NaN where the function is undefined."""
        gx, gy = self.grad_fn(_as_float64(x), _as_float64(y), self.params)
        shape = np.broadcast_shapes(np.shape(x), np.shape(y))
        return np.broadcast_to(gx, shape).copy(), np.broadcast_to(gy, shape).copy()

    def objective(self, framework: str = "numpy", dtype: str | None = None) -> Callable:
        """The objective for :func:`dict_minimize.minimize`, written in ``framework``.

        The function takes a dict with the keys ``"x"`` and ``"y"``. Its entries are usually
        0-d; entries of any (common) shape are independent copies of the problem, and the
        value is their sum.

        Args:
            framework: ``"numpy"``: ``fun(x_dict) -> (value, grad_dict)`` with a float value
                and the analytic gradient (NumPy arrays of the entries' dtypes), for
                ``jac=True``. ``"torch"``, ``"jax"``, ``"tensorflow"``: ``fun(x_dict) ->``
                a 0-d tensor, the same formula in that framework's ops, for
                ``jac="autodiff"`` (it is traceable by ``jax.jit`` and ``tf.function``). The
                framework is imported here.
            dtype: the dtype to evaluate in (one of :data:`DTYPES`); ``None``, the default,
                evaluates in the entries' dtype. Autodiff gradients keep the entries' dtype;
                the NumPy gradient is cast back to it.

        Returns:
            Callable: the objective; picklable.

        Raises:
            ValueError: for an unknown framework or dtype.
            ImportError: when the framework is not installed.

        Example:
            >>> import numpy as np
            >>> from dict_minimize.testfunctions import booth
            >>> fun = booth().objective()
            >>> value, grad = fun({"x": np.float64(0.0), "y": np.float64(0.0)})
            >>> value, float(grad["x"]), float(grad["y"])
            (74.0, -34.0, -38.0)
        """
        _check_dtype(dtype)
        _ops(framework)  # import now: a missing framework fails here, not in the optimizer
        if framework == "numpy":
            return functools.partial(_numpy_objective, self, dtype)
        return functools.partial(_framework_objective, self, framework, dtype)

    def x0(self, framework: str = "numpy", dtype: str | None = None) -> dict[str, Any]:
        """The start point as a dict of 0-d tensors of ``framework``: ``{"x": ..., "y": ...}``.

        Args:
            framework: ``"numpy"``, ``"torch"``, ``"jax"`` or ``"tensorflow"`` (imported here).
            dtype: one of :data:`DTYPES`. ``None``, the default, means float64, except in JAX
                with x64 off (JAX's default), where it means float32. JAX float64 needs x64,
                which the caller enables (``jax.config.update("jax_enable_x64", True)`` or
                ``with jax.enable_x64(True):``); asking for it with x64 off raises ValueError
                rather than silently giving float32.

        Example:
            >>> from dict_minimize.testfunctions import rosenbrock
            >>> rosenbrock().x0()
            {'x': array(-1.2), 'y': array(1.)}
        """
        _check_dtype(dtype)
        ops = _ops(framework)
        work = ops.dtype(dtype if dtype is not None else ops.default_dtype())
        return {k: ops.tensor(float(v), work) for k, v in self.start.items()}

    def distance(self, point: Mapping[str, Any]) -> float:
        """Euclidean distance from ``point`` (a dict of floats or 0-d tensors of any framework,
        e.g. ``res.x``) to the nearest of ``minima``, or of ``infimum_at`` when the minimum is
        not attained."""
        x, y = (float(v) for v in _xy(point))
        targets = self.minima or self.infimum_at
        return min(math.hypot(x - m["x"], y - m["y"]) for m in targets)


def _point(x: float, y: float) -> Point:
    return {"x": float(x), "y": float(y)}


def _covering(box: Domain, *points: Point) -> Domain:
    """``box`` grown to hold ``points`` with a margin of 1."""
    (x0, x1), (y0, y1) = box
    for p in points:
        x0, x1 = min(x0, p["x"] - 1.0), max(x1, p["x"] + 1.0)
        y0, y1 = min(y0, p["y"] - 1.0), max(y1, p["y"] + 1.0)
    return (x0, x1), (y0, y1)


# --- Rosenbrock ---------------------------------------------------------------------------


def _rosenbrock_value(ops: _Ops, x: Any, y: Any, p: Mapping[str, float]) -> Any:
    return (p["a"] - x) ** 2 + p["b"] * (y - x * x) ** 2


def _rosenbrock_grad(x: Any, y: Any, p: Mapping[str, float]) -> tuple[Any, Any]:
    a, b = p["a"], p["b"]
    inner = y - x * x
    return -2.0 * (a - x) - 4.0 * b * x * inner, 2.0 * b * inner


def rosenbrock(a: float = 1.0, b: float = 100.0) -> TestFunction:
    """Rosenbrock's banana valley: ``(a - x)² + b (y - x²)²``.

    The minimum 0 is at ``(a, a²)``, at the end of a long curved valley that gradient descent
    crawls along; the classic start is ``(-1.2, 1)`` (Rosenbrock, 1960) and the classic domain
    ``x in [-2, 2]``, ``y in [-1, 3]`` (grown to hold the minimum when ``a`` moves it).

    Args:
        a: where the minimum is (``x = a``).
        b: the steepness of the valley's walls; positive.

    Raises:
        ValueError: when ``b <= 0`` (the minimizer would not be unique).

    Example:
        >>> from dict_minimize import minimize
        >>> from dict_minimize.testfunctions import rosenbrock
        >>> fn = rosenbrock()
        >>> res = minimize(fn.objective(), fn.x0(), method="L-BFGS-B")
        >>> res.success, fn.distance(res.x) < 1e-4, fn.minima
        (True, True, ({'x': 1.0, 'y': 1.0},))
    """
    a, b = float(a), float(b)
    if not b > 0:
        raise ValueError(f"rosenbrock(b=...) must be positive; got b={b!r}")
    minimum = _point(a, a * a)
    return TestFunction(
        name="rosenbrock",
        formula="(a - x)² + b (y - x²)²",
        domain=_covering(((-2.0, 2.0), (-1.0, 3.0)), minimum),
        start=_point(-1.2, 1.0),
        minima=(minimum,),
        f_min=0.0,
        params={"a": a, "b": b},
        value_fn=_rosenbrock_value,
        grad_fn=_rosenbrock_grad,
    )


# --- Beale ----------------------------------------------------------------------------------


def _beale_terms(x: Any, y: Any) -> tuple[Any, Any, Any]:
    return 1.5 - x + x * y, 2.25 - x + x * y * y, 2.625 - x + x * y * y * y


def _beale_value(ops: _Ops, x: Any, y: Any, p: Mapping[str, float]) -> Any:
    t1, t2, t3 = _beale_terms(x, y)
    return t1 * t1 + t2 * t2 + t3 * t3


def _beale_grad(x: Any, y: Any, p: Mapping[str, float]) -> tuple[Any, Any]:
    t1, t2, t3 = _beale_terms(x, y)
    gx = 2.0 * (t1 * (y - 1.0) + t2 * (y * y - 1.0) + t3 * (y * y * y - 1.0))
    gy = 2.0 * x * (t1 + 2.0 * y * t2 + 3.0 * y * y * t3)
    return gx, gy


def beale() -> TestFunction:
    """Beale's function: ``(1.5 - x + xy)² + (2.25 - x + xy²)² + (2.625 - x + xy³)²``.

    The minimum 0 is at ``(3, 0.5)``, in a narrow flat-bottomed valley; the function grows
    like ``x² y⁶`` towards the corners of the usual domain ``[-4.5, 4.5]²``. Start ``(1, 1)``.

    Example:
        >>> from dict_minimize import minimize
        >>> from dict_minimize.testfunctions import beale
        >>> fn = beale()
        >>> res = minimize(fn.objective(), fn.x0(), method="L-BFGS-B")
        >>> res.success, fn.distance(res.x) < 1e-4, fn.minima
        (True, True, ({'x': 3.0, 'y': 0.5},))
    """
    return TestFunction(
        name="beale",
        formula="(1.5 - x + xy)² + (2.25 - x + xy²)² + (2.625 - x + xy³)²",
        domain=((-4.5, 4.5), (-4.5, 4.5)),
        start=_point(1.0, 1.0),
        minima=(_point(3.0, 0.5),),
        f_min=0.0,
        value_fn=_beale_value,
        grad_fn=_beale_grad,
    )


# --- Booth ----------------------------------------------------------------------------------


def _booth_value(ops: _Ops, x: Any, y: Any, p: Mapping[str, float]) -> Any:
    u, v = x + 2.0 * y - 7.0, 2.0 * x + y - 5.0
    return u * u + v * v


def _booth_grad(x: Any, y: Any, p: Mapping[str, float]) -> tuple[Any, Any]:
    u, v = x + 2.0 * y - 7.0, 2.0 * x + y - 5.0
    return 2.0 * u + 4.0 * v, 4.0 * u + 2.0 * v


def booth() -> TestFunction:
    """Booth's function: ``(x + 2y - 7)² + (2x + y - 5)²``, a convex quadratic.

    The minimum 0 is at ``(1, 3)``; the Hessian ``[[10, 8], [8, 10]]`` has condition number 9.
    Usual domain ``[-10, 10]²``. There is no standard start; ``(0, 0)`` here.

    Example:
        >>> from dict_minimize import minimize
        >>> from dict_minimize.testfunctions import booth
        >>> fn = booth()
        >>> res = minimize(fn.objective(), fn.x0(), method="BFGS")
        >>> res.success, fn.distance(res.x) < 1e-4, fn.minima
        (True, True, ({'x': 1.0, 'y': 3.0},))
    """
    return TestFunction(
        name="booth",
        formula="(x + 2y - 7)² + (2x + y - 5)²",
        domain=((-10.0, 10.0), (-10.0, 10.0)),
        start=_point(0.0, 0.0),
        minima=(_point(1.0, 3.0),),
        f_min=0.0,
        value_fn=_booth_value,
        grad_fn=_booth_grad,
    )


# --- Himmelblau -----------------------------------------------------------------------------

#: Himmelblau's four minimizers: (3, 2) exactly; the other three are the real roots of
#: x² + y = 11, x + y² = 7 (a quartic with no rational roots), solved once with
#: scipy.optimize.root at tol=1e-15 and written to full double precision (the residuals of
#: both equations are below 1e-14 there).
_HIMMELBLAU_MINIMA = (
    (3.0, 2.0),
    (-2.805118086952745, 3.131312518250573),
    (-3.779310253377747, -3.2831859912861696),
    (3.5844283403304917, -1.8481265269644036),
)


def _himmelblau_value(ops: _Ops, x: Any, y: Any, p: Mapping[str, float]) -> Any:
    u, v = x * x + y - 11.0, x + y * y - 7.0
    return u * u + v * v


def _himmelblau_grad(x: Any, y: Any, p: Mapping[str, float]) -> tuple[Any, Any]:
    u, v = x * x + y - 11.0, x + y * y - 7.0
    return 4.0 * x * u + 2.0 * v, 2.0 * u + 4.0 * y * v


def himmelblau() -> TestFunction:
    """Himmelblau's function: ``(x² + y - 11)² + (x + y² - 7)²``.

    Four global minima, all of value 0: ``(3, 2)``, ``(-2.805118, 3.131313)``,
    ``(-3.779310, -3.283186)`` and ``(3.584428, -1.848127)`` (``minima`` holds them to double
    precision), with a local maximum near ``(-0.270845, -0.923039)`` and four saddles between
    them. Which minimum a run reaches depends on the start; from the start used here,
    ``(0, 0)``, gradient methods go to ``(3, 2)``. Usual domain ``[-5, 5]²``.

    Example:
        >>> from dict_minimize import minimize
        >>> from dict_minimize.testfunctions import himmelblau
        >>> fn = himmelblau()
        >>> res = minimize(fn.objective(), fn.x0(), method="L-BFGS-B")
        >>> res.success, fn.distance(res.x) < 1e-4, len(fn.minima)
        (True, True, 4)
    """
    return TestFunction(
        name="himmelblau",
        formula="(x² + y - 11)² + (x + y² - 7)²",
        domain=((-5.0, 5.0), (-5.0, 5.0)),
        start=_point(0.0, 0.0),
        minima=tuple(_point(x, y) for x, y in _HIMMELBLAU_MINIMA),
        f_min=0.0,
        value_fn=_himmelblau_value,
        grad_fn=_himmelblau_grad,
    )


# --- Rastrigin ------------------------------------------------------------------------------


def _rastrigin_value(ops: _Ops, x: Any, y: Any, p: Mapping[str, float]) -> Any:
    a, two_pi = p["A"], 2.0 * math.pi
    return 2.0 * a + (x * x - a * ops.cos(two_pi * x)) + (y * y - a * ops.cos(two_pi * y))


def _rastrigin_grad(x: Any, y: Any, p: Mapping[str, float]) -> tuple[Any, Any]:
    a, two_pi = p["A"], 2.0 * math.pi
    return (
        2.0 * x + two_pi * a * np.sin(two_pi * x),
        2.0 * y + two_pi * a * np.sin(two_pi * y),
    )


def rastrigin(A: float = 10.0) -> TestFunction:
    """Rastrigin's function: ``2A + x² - A cos(2πx) + y² - A cos(2πy)``.

    The global minimum 0 is at ``(0, 0)``, among a lattice of local minima near every integer
    point (about 121 of them in the usual domain ``[-5.12, 5.12]²``): a local method ends in
    the one whose basin it starts in. The start ``(-2, 3.5)`` is the one of the visualizations
    of pytorch-optimizer; L-BFGS-B goes from there to the local minimum near ``(-1.99, 2.98)``
    (value about 12.93), not to the global one.

    Args:
        A: the depth of the ripples; non-negative (``A = 0`` is the paraboloid ``x² + y²``).

    Raises:
        ValueError: when ``A < 0``.

    Example:
        >>> import numpy as np
        >>> from dict_minimize import minimize
        >>> from dict_minimize.testfunctions import rastrigin
        >>> fn = rastrigin()
        >>> res = minimize(fn.objective(), fn.x0(), method="L-BFGS-B")
        >>> round(res.fun, 2), np.round([res.x["x"], res.x["y"]], 2).tolist()
        (12.93, [-1.99, 2.98])
        >>> near = {"x": np.float64(0.2), "y": np.float64(-0.3)}  # in the global basin
        >>> res = minimize(fn.objective(), near, method="L-BFGS-B")
        >>> fn.distance(res.x) < 1e-4
        True
    """
    A = float(A)
    if not A >= 0:
        raise ValueError(f"rastrigin(A=...) must be non-negative; got A={A!r}")
    return TestFunction(
        name="rastrigin",
        formula="2A + x² - A cos(2πx) + y² - A cos(2πy)",
        domain=((-5.12, 5.12), (-5.12, 5.12)),
        start=_point(-2.0, 3.5),
        minima=(_point(0.0, 0.0),),
        f_min=0.0,
        params={"A": A},
        value_fn=_rastrigin_value,
        grad_fn=_rastrigin_grad,
    )


# --- flower ---------------------------------------------------------------------------------


def _flower_value(ops: _Ops, x: Any, y: Any, p: Mapping[str, float]) -> Any:
    r = ops.sqrt(x * x + y * y)
    value = p["a"] * r + p["b"] * ops.sin(p["c"] * ops.atan2(y, x))
    return ops.nan_where_not(r > 0, value)


def _flower_grad(x: Any, y: Any, p: Mapping[str, float]) -> tuple[Any, Any]:
    a, b, c = p["a"], p["b"], p["c"]
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = x * x + y * y
        r = np.sqrt(r2)
        k = b * c * np.cos(c * np.arctan2(y, x)) / r2  # d(b sin(c θ))/dθ, over r²
        gx, gy = a * x / r - k * y, a * y / r + k * x
    return np.where(r > 0, gx, np.nan), np.where(r > 0, gy, np.nan)


def flower(a: float = 1.0, b: float = 1.0, c: float = 4.0) -> TestFunction:
    """The "flower": ``a √(x² + y²) + b sin(c atan2(y, x))``, a cone with ``c`` petals.

    In polar coordinates it is ``a r + b sin(c θ)``. It is **undefined at the origin**, where
    the angle ``atan2(0, 0)`` has no meaning and the cone ``r`` has no gradient: there, the
    NumPy value and gradient are NaN, and so are the PyTorch, JAX and TensorFlow values; their
    autodiff gradients are NaN too (``0 * inf`` through the square root).
    :func:`dict_minimize.minimize` started at the origin raises
    :class:`dict_minimize.NonFiniteError`; elsewhere it backs off from non-finite points.

    **It has no minimum, and ``minima`` is empty.** For ``r > 0``,
    ``f = a r + b sin(c θ) >= a r - b > -b``, so ``f > -b`` everywhere it is defined; and along
    each of the ``c`` valleys ``θ_k = (2πk - π/2) / c`` (where ``sin(c θ) = -1``),
    ``f = a r - b`` tends to ``-b`` as ``r -> 0``. So the infimum is ``f_min = -b`` (``-1``
    with the defaults ``a = b = 1, c = 4``: the value ``r + sin 4θ`` on the valleys
    ``θ = -π/8 + kπ/2``), approached only at the origin, where ``f`` is undefined (near it, it
    takes every value in ``(-b, b)``). ``infimum_at`` holds the origin. Nor is there any local
    minimum: the radial derivative is ``a > 0`` everywhere, so ``|∇f| >= a`` and a gradient
    method heads for the origin, to end close to it (by the line search's tolerance) with a
    value a little above ``-b``. The start ``(20, 20)`` is that of the torchopt post ("Fun
    with torchopt", RStudio AI blog, 2022); the domain ``[-25, 25]²`` holds it and the origin.

    Args:
        a: the slope of the cone; positive.
        b: the height of the petals; positive.
        c: the number of petals; a positive integer (any other value would make ``f`` jump
            across the negative x-axis, where ``atan2`` jumps from π to -π).

    Raises:
        ValueError: for parameters outside these ranges.

    Example:
        >>> import numpy as np
        >>> from dict_minimize import minimize
        >>> from dict_minimize.testfunctions import flower
        >>> fn = flower()
        >>> fn.minima, fn.f_min, fn.infimum_at
        ((), -1.0, ({'x': 0.0, 'y': 0.0},))
        >>> float(fn(0.0, 0.0)), float(fn(0.0, 1.0))
        (nan, 1.0)
        >>> res = minimize(fn.objective(), fn.x0(), method="L-BFGS-B")
        >>> bool(fn.f_min < res.fun < fn.f_min + 0.01), fn.distance(res.x) < 0.01
        (True, True)
    """
    a, b, c = float(a), float(b), float(c)
    if not a > 0:
        raise ValueError(f"flower(a=...) must be positive; got a={a!r}")
    if not b > 0:
        raise ValueError(f"flower(b=...) must be positive; got b={b!r}")
    if not (c > 0 and c.is_integer()):
        raise ValueError(f"flower(c=...) must be a positive integer; got c={c!r}")
    return TestFunction(
        name="flower",
        formula="a √(x² + y²) + b sin(c atan2(y, x))",
        domain=((-25.0, 25.0), (-25.0, 25.0)),
        start=_point(20.0, 20.0),
        minima=(),
        f_min=-b,
        params={"a": a, "b": b, "c": c},
        infimum_at=(_point(0.0, 0.0),),
        value_fn=_flower_value,
        grad_fn=_flower_grad,
    )


#: every test function, by name, with its default parameters
ALL: dict[str, TestFunction] = {
    fn.name: fn for fn in (rosenbrock(), beale(), booth(), himmelblau(), rastrigin(), flower())
}

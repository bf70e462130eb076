"""Fuzzing: random malformed input to the public API is a TypeError or ValueError, never a crash.

Hypothesis throws bad input of every kind at ``dict_minimize.minimize`` and at the drop-in
``dict_minimize.<framework>_api.minimize``, in every installed framework: an ``x0`` that is not a
dict of floating tensors, gradient dicts with wrong keys, shapes, dtypes or junk, objectives that
return the wrong thing, bounds of every wrong kind, and bad methods, options, callbacks, ``jac``,
``tol`` and ``backend``. Each input gets one thing wrong (or, by chance, nothing). Every call must
succeed or raise ``TypeError``/``ValueError`` with a message, warn only with SciPy's or our own
warnings, and leave what it was given (``x0``, the bounds, the options, ``args``) unchanged.

``DICT_MINIMIZE_FUZZ_EXAMPLES`` sets the number of inputs per framework (default 150; the seed is
fixed). ``pytest -s tests/test_fuzz.py`` prints how many were tried, by kind and outcome.
"""

from __future__ import annotations

import functools
import importlib
import math
import os
import warnings
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest
import scipy.optimize
from hypothesis import given
from hypothesis import strategies as st

import dict_minimize
from tests.conftest import DTYPES, INSTALLED, Framework, derandomized, get_framework
from tests.test_errors import View, native

FUZZ = derandomized("DICT_MINIMIZE_FUZZ_EXAMPLES", 150)
EXAMPLES = FUZZ.max_examples
#: (framework, kind of input, outcome) -> number of calls made
TRIED: Counter[tuple[str, str, str]] = Counter()
#: every run stops early: the fuzz is about input, not convergence
FEW = {"maxiter": 3}


# ------------------------------------------------------------------ tensors of any framework


@functools.cache
def frameworks() -> tuple[Framework, ...]:
    return tuple(get_framework(name) for name in INSTALLED)


def named(name: str) -> Framework:
    return next(fw for fw in frameworks() if fw.name == name)


def framework_of(value: Any) -> Framework | None:
    """The installed framework whose tensor ``value`` is (NumPy: arrays and scalars)."""
    return next((fw for fw in frameworks() if fw.type_check(value)), None)


def quad(d: Mapping, *args: Any) -> tuple[float, dict]:
    """Sum of squares of every entry; each gradient in its entry's own framework and dtype."""
    value, grad = 0.0, {}
    for k, v in d.items():
        fw = framework_of(v)
        assert fw is not None, f"the objective got a {type(v)}"
        a = fw.to_numpy(v)
        value += float(np.sum(a**2))
        grad[k] = fw.tensor(2 * a, fw.dtype_name(v))
    return value, grad


def value_only(d: Mapping, *args: Any) -> float:
    return quad(d)[0]


def tensor_record(value: Any, fw: Framework) -> tuple:
    """Type, dtype, shape and exact contents of a tensor, to compare before and after a call."""
    flags: tuple = ()
    if fw.name == "torch":
        import torch

        flags = (value.requires_grad,)
        t = value.detach().cpu()
        arr = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy()
    elif fw.name == "tensorflow":
        arr = np.asarray(value.numpy())
    else:
        arr = np.asarray(value)
    contents = repr(arr.tolist()) if arr.dtype == object else arr.tobytes()
    return (type(value), str(value.dtype), tuple(value.shape), contents, flags)


def snapshot(obj: Any) -> Any:
    """A deep, comparable record of ``obj``: containers keep the identity of their items too."""
    fw = framework_of(obj)
    if fw is not None:
        return tensor_record(obj, fw)
    if isinstance(obj, Mapping):
        return (type(obj), [(k, id(v), snapshot(v)) for k, v in obj.items()])
    if isinstance(obj, (list, tuple)):
        return (type(obj), [(id(v), snapshot(v)) for v in obj])
    if isinstance(obj, (set, frozenset)):
        return (type(obj), sorted(map(repr, obj)))
    return (type(obj), repr(obj))


def start(shape: tuple[int, ...]) -> np.ndarray:
    """Small values, exact in every dtype, never all zero."""
    size = math.prod(shape)
    return (np.arange(size, dtype=np.float64) / 4 - 0.5).reshape(shape) + 0.125


# ------------------------------------------------------------------------- one call, checked


@dataclass
class Call:
    """One call of the public API: which function, with what."""

    kind: str
    x0: Any
    fun: Callable = quad
    kwargs: dict = field(default_factory=lambda: {"options": dict(FEW)})
    dropin: bool = False  # dict_minimize.<framework>_api.minimize instead of minimize
    valid: bool = False  # known to be valid: the call must succeed

    def __repr__(self) -> str:
        api = "<fw>_api.minimize" if self.dropin else "minimize"
        fun = getattr(self.fun, "__name__", repr(self.fun))
        return f"Call[{self.kind}]: {api}({fun}, x0={self.x0!r}, **{self.kwargs!r})"


SCIPY_DIR = os.path.dirname(scipy.__file__)
TESTS_DIR = os.path.dirname(__file__)


def allowed_warning(w: warnings.WarningMessage) -> bool:
    """SciPy's complaints about its options (OptimizeWarning and other UserWarnings raised in
    SciPy's code), our own warnings, and the test objectives' own (float16 overflow); nothing
    from our code passing something on (ComplexWarning, PyTorch's requires_grad warning, ...)."""
    from_scipy = issubclass(w.category, UserWarning) and w.filename.startswith(SCIPY_DIR)
    # SciPy's own RuntimeWarning for an argument its method ignores ("Method BFGS cannot
    # handle bounds."), which names the driver's call into SciPy as its place
    ignored = issubclass(w.category, RuntimeWarning) and str(w.message).startswith("Method ")
    return (
        issubclass(w.category, scipy.optimize.OptimizeWarning)
        or from_scipy
        or ignored
        or w.category.__module__.startswith("dict_minimize")
        or w.filename.startswith(TESTS_DIR)
    )


def check(fw: Framework, call: Call) -> None:
    """Run ``call``: success or TypeError/ValueError with a message, and its input unchanged."""
    inputs = (call.x0, call.kwargs)
    before = snapshot(inputs)
    minimize = (
        importlib.import_module(f"dict_minimize.{fw.name}_api").minimize
        if call.dropin
        else dict_minimize.minimize
    )
    outcome = "ok"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = minimize(call.fun, call.x0, **call.kwargs)
        except (TypeError, ValueError) as exc:
            if call.valid:
                raise AssertionError(f"a valid call raised {exc!r}: {call!r}") from exc
            outcome = type(exc).__name__
            assert str(exc).strip(), f"{outcome} without a message for {call!r}"
        except Exception as exc:
            raise AssertionError(
                f"{type(exc).__module__}.{type(exc).__name__}: {exc}\nfor {call!r}"
            ) from exc
    TRIED[(fw.name, call.kind, outcome)] += 1
    if call.valid:  # the solution is shaped like x0
        x = out if call.dropin else out.x
        assert list(x) == list(call.x0), call
        for k, v in x.items():
            assert fw.type_check(v) and fw.dtype_name(v) == fw.dtype_name(call.x0[k]), call
    bad = [f"{w.category.__name__}: {w.message}" for w in caught if not allowed_warning(w)]
    assert not bad, f"unexpected warnings {bad} for {call!r}"
    assert snapshot(inputs) == before, f"the input changed during {call!r}"


# ------------------------------------------------------------------------------- strategies

KEYS = st.one_of(st.text(max_size=3), st.integers(-2, 2))
SHAPES = st.lists(st.integers(0, 3), max_size=2).map(tuple)
NON_REAL_DTYPES = ("int64", "int8", "uint8", "bool", "complex64", "complex128")
#: whether to call the drop-in ``<framework>_api.minimize`` instead of the generic one
DROPIN = st.booleans()


@st.composite
def good_x0(draw: Any, name: str) -> Mapping:
    """A valid x0: 1 to 3 entries of any floating dtype and shape (0-d and empty too), in a
    dict, an OrderedDict, a read-only MappingProxyType or a View sharing its storage."""
    fw = named(name)
    spec = draw(
        st.lists(
            st.tuples(KEYS, SHAPES, st.sampled_from(DTYPES)),
            min_size=1,
            max_size=3,
            unique_by=lambda e: e[0],
        ).filter(lambda es: sum(math.prod(s) for _, s, _ in es) > 0)
    )
    items = {k: fw.tensor(start(s), dt) for k, s, dt in spec}
    return draw(st.sampled_from([dict, OrderedDict, MappingProxyType, View]))(items)


def shape_of(value: Any) -> tuple[int, ...]:
    return tuple(int(s) for s in value.shape)


def other_tensors(name: str) -> st.SearchStrategy[Any]:
    """Float tensors of the other installed frameworks (float32: JAX without x64 too)."""
    others = [other for other in frameworks() if other.name != name]
    if not others:
        return st.nothing()

    def make(other: Framework, shape: tuple[int, ...], requires_grad: bool) -> Any:
        t = other.tensor(start(shape), "float32")
        return t.requires_grad_(requires_grad) if other.name == "torch" else t

    return st.builds(make, st.sampled_from(others), SHAPES, st.booleans())


def non_real_tensors(name: str) -> st.SearchStrategy[Any]:
    """Tensors of ``fw`` with an int, bool or complex dtype."""
    fw = named(name)
    return st.tuples(SHAPES, st.sampled_from(NON_REAL_DTYPES)).map(
        lambda s_dt: native(fw, np.ones(s_dt[0], dtype=s_dt[1]))
    )


def junk(name: str) -> st.SearchStrategy[Any]:
    """Everything that is not a floating tensor of ``fw``: None, numbers, strings, containers,
    nested dicts, tensors of the wrong dtype or of another framework, object arrays."""
    fw = named(name)
    floats = st.floats(-2, 2)
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-3, 3),
        st.floats(allow_nan=True, allow_infinity=True),
        st.complex_numbers(max_magnitude=2),
        st.text(max_size=3),
        st.binary(max_size=3),
        st.lists(floats, max_size=3),
        st.tuples(floats, floats),
        st.sets(st.integers(0, 3), max_size=2),
        st.dictionaries(st.text(max_size=2), floats, max_size=2),
        st.builds(object),
        non_real_tensors(name),
        other_tensors(name),
        SHAPES.map(lambda s: np.full(s, "a", dtype=object)),
        SHAPES.map(lambda s: {"inner": fw.tensor(start(s))}),
        SHAPES.map(lambda s: [fw.tensor(start(s))]),
    )


def _valid_nested(fw: Framework, value: Any) -> bool:
    """What the generic API takes as an entry besides a tensor: a Python float, or a non-empty
    container of such leaves (nested parameters)."""
    if type(value) is float:
        return True
    if isinstance(value, Mapping):
        return bool(value) and all(_valid_nested(fw, v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return bool(value) and all(_valid_nested(fw, v) for v in value)
    return fw.type_check(value)


@st.composite
def bad_x0(draw: Any, name: str) -> Call:
    fw = named(name)
    how = draw(st.sampled_from(["junk entry", "not a mapping", "empty", "all entries empty"]))
    dropin = draw(DROPIN)
    if how == "junk entry":
        x0 = dict(draw(good_x0(name)))
        entry = junk(name) if dropin else junk(name).filter(lambda j: not _valid_nested(fw, j))
        x0[draw(st.sampled_from(list(x0)))] = draw(entry)
    elif how == "not a mapping":
        x0 = draw(
            st.one_of(
                junk(name).filter(lambda j: not isinstance(j, Mapping)),
                good_x0(name).map(lambda d: list(d.values())),
                good_x0(name).map(lambda d: list(d.items())),
                good_x0(name).map(lambda d: tuple(d.values())),
                good_x0(name).map(lambda d: next(iter(d.values()))),
            )
        )
    elif how == "empty":
        x0 = {}
    else:
        shapes = st.lists(SHAPES.filter(lambda s: math.prod(s) == 0), min_size=1, max_size=2)
        x0 = {f"e{i}": fw.tensor(np.zeros(s)) for i, s in enumerate(draw(shapes))}
    return Call(f"x0: {how}", x0, dropin=dropin)


@st.composite
def bad_gradient(draw: Any, name: str) -> Call:
    """The gradient dict (from fun, or from a jac callable) with one thing wrong."""
    fw = named(name)
    x0 = draw(good_x0(name))
    key = draw(st.sampled_from(list(x0)))
    how = draw(
        st.sampled_from(
            ["missing key", "extra key", "junk", "wrong shape", "wrong dtype", "no dict"]
        )
    )
    if how == "missing key":

        def corrupt(g: dict) -> Any:
            return {k: v for k, v in g.items() if k != key}

    elif how == "extra key":
        extra = draw(KEYS.filter(lambda k: k not in x0))

        def corrupt(g: dict) -> Any:
            return {**g, extra: g[key]}

    elif how in ("junk", "wrong shape", "wrong dtype"):
        shape = shape_of(x0[key])
        if how == "junk":
            value = draw(junk(name))
        elif how == "wrong shape":
            value = fw.tensor(start(draw(SHAPES.filter(lambda s: s != shape))))
        else:
            value = native(fw, np.ones(shape, dtype=draw(st.sampled_from(NON_REAL_DTYPES))))

        def corrupt(g: dict) -> Any:
            return {**g, key: value}

    else:
        wrap = draw(
            st.sampled_from(
                [list, tuple, lambda vals: vals[0], lambda vals: None, lambda vals: "grad"]
            )
        )
        nest = draw(st.booleans())

        def corrupt(g: dict) -> Any:
            return {"grad": g} if nest else wrap(list(g.values()))

    if draw(st.booleans()):  # the same gradient from a separate jac callable (generic API)

        def jac(d: Mapping, *args: Any) -> Any:
            return corrupt(quad(d)[1])

        kwargs = {"jac": jac, "options": dict(FEW)}
        return Call(f"gradient: {how} (jac=)", x0, value_only, kwargs)

    def fun(d: Mapping, *args: Any) -> Any:
        value, grad = quad(d)
        return value, corrupt(grad)

    return Call(f"gradient: {how}", x0, fun, dropin=draw(DROPIN))


@st.composite
def bad_output(draw: Any, name: str) -> Call:
    """fun returns the wrong thing: a junk value, the wrong tuple, a dict, only the value, ..."""
    fw = named(name)
    x0 = draw(good_x0(name))
    how = draw(
        st.sampled_from(["junk value", "odd value", "only the value", "wrong tuple", "dict"])
    )
    if how == "junk value":
        junk_value = draw(junk(name))
    elif how == "odd value":
        junk_value = draw(
            st.sampled_from(
                [
                    native(fw, 1j),
                    native(fw, True),
                    native(fw, [1.0, 2.0]),
                    fw.tensor([[1.0]]),
                    np.array("1.5"),
                    np.array(1.5, dtype=object),
                    10**400,
                    np.complex128(1.0),
                ]
            )
        )
    length = draw(st.sampled_from([0, 1, 3]))
    as_list = draw(st.booleans())

    def fun(d: Mapping, *args: Any) -> Any:
        value, grad = quad(d)
        if how in ("junk value", "odd value"):
            return junk_value, grad
        if how == "only the value":
            return value
        if how == "wrong tuple":
            out = (value, grad, grad)[:length]
            return list(out) if as_list else out
        return {"value": value, "grad": grad}

    if draw(st.booleans()):  # the same value from a value-only objective (generic API)
        mode = draw(st.sampled_from([None, "2-point", "3-point"]))
        kwargs = {"jac": mode, "options": dict(FEW)}

        def fun_value(d: Mapping, *args: Any) -> Any:
            out = fun(d)
            return out[0] if how in ("junk value", "odd value") else out

        return Call(f"output: {how} (jac={mode})", x0, fun_value, kwargs)
    return Call(f"output: {how}", x0, fun, dropin=draw(DROPIN))


def good_bounds(name: str, shape: tuple[int, ...], fill: float) -> st.SearchStrategy[Any]:
    """Every valid form: None, a scalar, +-inf, an array, a list or a tensor of the shape."""
    full = np.full(shape, fill)
    forms = [None, fill, int(fill), math.copysign(math.inf, fill), full, named(name).tensor(full)]
    if np.shape(full.tolist()) == shape:  # not for shape (0, 2): [] reads as shape (0,)
        forms.append(full.tolist())
    return st.sampled_from(forms)


def bad_bound(name: str, shape: tuple[int, ...], fill: float) -> st.SearchStrategy[Any]:
    """A wrong bound: wrong shape, NaN, not real, not a number, another framework's tensor."""
    fw = named(name)
    wrong_shape = SHAPES.filter(lambda s: s not in ((), shape))
    return st.one_of(
        wrong_shape.map(lambda s: np.full(s, fill)),
        wrong_shape.map(lambda s: fw.tensor(np.full(s, fill))),
        st.sampled_from([math.nan, np.full(shape, math.nan)]),
        non_real_tensors(name),
        st.sampled_from([np.bool_(True), np.complex128(1j), np.datetime64(1, "D"), [fill, None]]),
        junk(name),
    )


@st.composite
def bad_bounds(draw: Any, name: str) -> Call:
    """Valid lb_dict/ub_dict with one fault: not a dict, an unknown key, a bad value, lb > ub."""
    x0 = draw(good_x0(name))
    keys = list(x0)
    fills = {"lb_dict": -1.0, "ub_dict": 1.0}
    bounds: dict[str, Any] = {}
    for side, fill in fills.items():
        named_keys = draw(st.lists(st.sampled_from(keys), unique=True))
        given = {k: draw(good_bounds(name, shape_of(x0[k]), fill)) for k in named_keys}
        bounds[side] = given if given or draw(st.booleans()) else None
    fault = draw(st.sampled_from(["none", "not a dict", "unknown key", "bad value", "lb > ub"]))
    side = draw(st.sampled_from(list(fills)))
    key = draw(st.sampled_from(keys))
    if fault == "not a dict":
        bounds[side] = draw(junk(name).filter(lambda j: not isinstance(j, Mapping)))
    elif fault == "unknown key":
        extra = draw(KEYS.filter(lambda k: k not in x0))
        bounds[side] = {**(bounds[side] or {}), extra: fills[side]}
    elif fault == "bad value":
        value = draw(bad_bound(name, shape_of(x0[key]), fills[side]))
        bounds[side] = {**(bounds[side] or {}), key: value}
    elif fault == "lb > ub":  # an error unless x0[key] is empty
        bounds["lb_dict"] = {**(bounds["lb_dict"] or {}), key: 0.5}
        bounds["ub_dict"] = {**(bounds["ub_dict"] or {}), key: np.full(shape_of(x0[key]), -0.5)}
    method = draw(
        st.sampled_from(
            [None, "L-BFGS-B", "TNC", "SLSQP", "Powell", "Nelder-Mead", "trust-constr", "BFGS"]
        )
    )
    kwargs = {**bounds, "method": method, "options": dict(FEW)}
    valid = fault == "none"  # (BFGS with bounds: SciPy's warning, and the run goes on)
    return Call(f"bounds: {fault}", x0, kwargs=kwargs, dropin=draw(DROPIN), valid=valid)


METHODS = st.one_of(
    st.tuples(st.sampled_from(dict_minimize.METHODS), st.booleans()).map(
        lambda m_up: m_up[0].upper() if m_up[1] else m_up[0]
    ),
    st.sampled_from(["lbfgs", "L-BFGS", " bfgs", "BFGS ", "adam", "", "newton"]),
    st.text(max_size=6),
    st.integers(),
    st.floats(allow_nan=True),
    st.binary(max_size=4),
    st.lists(st.sampled_from(dict_minimize.METHODS), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
    # not generated: a custom method callable that returns no OptimizeResult (see
    # test_known_driver_bugs: "custom method result")
)
OPTIONS = st.one_of(
    st.lists(st.tuples(st.just("maxiter"), st.just(3)), max_size=1),
    st.text(max_size=3),
    st.integers(),
    st.sets(st.integers(0, 2), max_size=2),
    st.fixed_dictionaries(
        {
            "maxiter": st.one_of(
                st.sampled_from(["3", None, -1, 0, 2.5, math.nan, b"3"]),
                st.lists(st.integers(0, 3), max_size=2),
                st.just({}),
            )
        }
    ),
    st.dictionaries(st.text(max_size=3), st.integers(0, 3), max_size=2).map(
        lambda d: {**d, **FEW}  # unknown options: SciPy's OptimizeWarning
    ),
    st.sampled_from([1, ()]).map(lambda key: {key: None, **FEW}),  # a key that is no string
)


def _stop(x: Any) -> None:
    raise StopIteration


def _fails(x: Any) -> None:
    raise ValueError("from the callback")


def _takes_result(intermediate_result: Any) -> None:
    assert isinstance(intermediate_result.x, Mapping)


CALLBACKS = st.one_of(
    st.text(max_size=3),
    st.integers(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
    st.binary(max_size=2),
    st.sampled_from(
        [lambda: None, lambda x, y: None, lambda x: 1, _stop, _fails, _takes_result, len]
    ),
)
JACS = st.one_of(
    st.sampled_from(
        [
            *(0, 1, 2.5, "", "autodiff", "2-point ", "5-point", "cs", "CS", "2-POINT", b"2-"),
            *(np.True_, np.array([1, 2]), np.array([]), np.array(1), None, False, "2-point"),
        ]
    ),
    st.text(max_size=6),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
TOLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-2, 2),
    st.text(max_size=2),
    st.lists(st.floats(0, 1), max_size=2),
)
ARGS = st.one_of(
    st.tuples(st.integers()), st.lists(st.integers(), max_size=2), st.none(), st.text(max_size=2)
)
BACKENDS = st.one_of(
    st.sampled_from(["mxnet", "", "NumPy", "TORCH", 1, None, *INSTALLED]),
    st.text(max_size=5),
    st.lists(st.sampled_from(INSTALLED), max_size=1),  # TypeError "unhashable type: 'list'"
)


@st.composite
def bad_argument(draw: Any, name: str) -> Call:
    """One of method, options, callback, jac, tol, args or backend is wrong (or, by chance,
    happens to be valid)."""
    x0 = draw(good_x0(name))
    arg = draw(st.sampled_from(["method", "options", "callback", "jac", "tol", "args", "backend"]))
    value = draw(
        {
            "method": METHODS,
            "options": OPTIONS,
            "callback": CALLBACKS,
            "jac": JACS,
            "tol": TOLS,
            "args": ARGS,
            "backend": BACKENDS,
        }[arg]
    )
    kwargs = {"options": dict(FEW), arg: value}
    generic_only = arg in ("jac", "backend")
    fun = draw(st.sampled_from([quad, value_only])) if arg == "jac" else quad
    dropin = not generic_only and draw(DROPIN)
    return Call(arg, x0, fun, kwargs, dropin=dropin, valid=arg == "args")


#: every method that runs without a Hessian
RUNNABLE = [
    m
    for m in dict_minimize.METHODS
    if m not in ("dogleg", "trust-exact", "trust-ncg", "trust-krylov")
]
BOUNDED = ("nelder-mead", "powell", "l-bfgs-b", "tnc", "cobyla", "cobyqa", "slsqp", "trust-constr")


#: frameworks whose bfloat16 tensors np.asarray() refuses (see _bfloat16_newton_cg)
BF16_BUG = ("torch", "tensorflow")


@st.composite
def good_call(draw: Any, name: str) -> Call:
    """A valid call: any method, bounds where the method takes them, callbacks, args, tol."""
    x0 = draw(good_x0(name))
    method = draw(st.sampled_from([None, *RUNNABLE]))
    n = sum(math.prod(shape_of(v)) for v in x0.values())
    # TNC counts evaluations; COBYLA and COBYQA need n + 2 of them to start
    options = {"tnc": {"maxfun": 10}, "cobyla": {"maxiter": n + 3}, "cobyqa": {"maxiter": n + 3}}
    kwargs: dict[str, Any] = {"method": method, "options": options.get(method, dict(FEW))}
    if method is None or method in BOUNDED:
        for side, fill in (("lb_dict", -1.0), ("ub_dict", 1.0)):
            if draw(st.booleans()):
                keys = draw(st.lists(st.sampled_from(list(x0)), unique=True))
                kwargs[side] = {k: draw(good_bounds(name, shape_of(x0[k]), fill)) for k in keys}
    kwargs["callback"] = draw(st.sampled_from([None, _stop, _takes_result, len]))
    kwargs["args"] = draw(ARGS)
    kwargs["tol"] = draw(st.sampled_from([None, 1e-3]))
    return Call("valid", x0, kwargs=kwargs, dropin=draw(DROPIN), valid=True)


def calls(name: str) -> st.SearchStrategy[Call]:
    """One kind of input (bad, or valid), drawn afresh for each call."""
    kinds = [bad_x0, bad_gradient, bad_output, bad_bounds, bad_argument, good_call]
    # the seed is fixed per test function, so every framework would get the same sequence of
    # kinds: start the list at a different kind for each framework
    turn = INSTALLED.index(name) if name in INSTALLED else 0
    return st.one_of([kind(name) for kind in kinds[turn:] + kinds[:turn]])


# ------------------------------------------------------------------------------------ tests


@pytest.mark.timeout(600)
@FUZZ
@given(data=st.data())
def test_fuzz_public_api(fw: Framework, data: st.DataObject) -> None:
    """Random malformed input: TypeError/ValueError with a message (or success), input intact."""
    frameworks()  # import them all before drawing: imports may use `random`
    check(fw, data.draw(calls(fw.name), label="call"))


def test_valid_calls_succeed(fw: Framework) -> None:
    """The fuzzer's baseline: its objective and x0 work with both APIs."""
    x0 = {"a": fw.tensor(start((2, 3))), "b": fw.tensor(0.5, "float32")}
    res = dict_minimize.minimize(quad, x0, lb_dict={"b": 0.25})
    assert res.success and res.fun == pytest.approx(0.0625, abs=1e-6)
    api = importlib.import_module(f"dict_minimize.{fw.name}_api")
    out = api.minimize(quad, x0, options=FEW)
    assert list(out) == ["a", "b"]


def test_complex_step_is_refused_or_right(fw: Framework) -> None:
    """jac='cs' used to lose the step: the codec cast SciPy's complex x to float (a
    ComplexWarning), the 'gradient' was zero and the run stopped at x0 reporting success."""
    x0 = {"w": fw.tensor([1.0, 2.0])}
    try:
        res = dict_minimize.minimize(value_only, x0, jac="cs")
    except (TypeError, ValueError) as exc:
        assert "cs" in str(exc)
    else:
        np.testing.assert_allclose(fw.to_numpy(res.x["w"]), [0.0, 0.0], atol=1e-6)


# ------------------------------------------------------------- bugs found by the fuzzer, fixed
# Each function states the behaviour wanted, now a regular test.


def _custom_method_without_result(fw: Framework) -> None:
    """A custom method returning no OptimizeResult: AttributeError 'x' from _result()."""
    with pytest.raises((TypeError, ValueError), match="method"):
        dict_minimize.minimize(quad, {"w": fw.tensor([1.0, 2.0])}, method=lambda *a, **k: {})


def _sparse_gradient(fw: Framework) -> None:
    """A sparse PyTorch gradient (nn.Embedding(sparse=True)): RuntimeError from reshape."""
    if fw.name != "torch":
        pytest.skip("PyTorch only")

    def fun(d: Mapping) -> tuple:
        return value_only(d), {"w": (2 * d["w"]).detach().to_sparse()}

    try:  # densified or refused, either is fine
        dict_minimize.minimize(fun, {"w": fw.tensor([1.0, 2.0])})
    except (TypeError, ValueError) as exc:
        assert "sparse" in str(exc)


def _meta_device(fw: Framework) -> None:
    """x0 on PyTorch's 'meta' device (no data): NotImplementedError from the codec."""
    if fw.name != "torch":
        pytest.skip("PyTorch only")
    import torch

    with pytest.raises((TypeError, ValueError), match="meta"):
        dict_minimize.minimize(quad, {"w": torch.ones(2, device="meta")})


def _bfloat16_newton_cg(fw: Framework) -> None:
    """A valid call: _precision_checks runs np.asarray() on the result's bfloat16 gradients,
    which PyTorch refuses (TypeError 'Got unsupported ScalarType BFloat16') and so does
    TensorFlow (ValueError 'object __array__ method not producing an array')."""
    if fw.name not in BF16_BUG:
        pytest.skip("NumPy and JAX convert bfloat16 with np.asarray")
    x0 = {"w": fw.tensor(-0.375, "bfloat16")}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Newton-CG")  # x0 unchanged: low precision
        dict_minimize.minimize(quad, x0, method="Newton-CG", options=dict(FEW))


FIXED_BUGS = [
    pytest.param(_custom_method_without_result, id="custom method result"),
    pytest.param(_sparse_gradient, id="torch sparse gradient"),
    pytest.param(_meta_device, id="torch meta x0"),
    pytest.param(_bfloat16_newton_cg, id="bfloat16 newton-cg"),
]


@pytest.mark.parametrize("bug", FIXED_BUGS)
def test_driver_bugs_found_by_the_fuzzer(fw: Framework, bug: Callable[[Framework], None]) -> None:
    bug(fw)


def test_report_fuzz_counts() -> None:
    """How many inputs the fuzzer tried, per framework, kind and outcome (pytest -s)."""
    if not TRIED:
        pytest.skip("test_fuzz_public_api did not run")
    per_fw: Counter[str] = Counter()
    per_kind: dict[str, Counter[str]] = {}
    for (fw_name, kind, outcome), n in TRIED.items():
        per_fw[fw_name] += n
        per_kind.setdefault(kind, Counter())[outcome] += n
    print(f"\nfuzz inputs tried: {sum(per_fw.values())} in all; {dict(per_fw)}")
    for kind in sorted(per_kind):
        print(f"  {kind:32s} {dict(per_kind[kind])}")
    assert all(n >= EXAMPLES for n in per_fw.values())

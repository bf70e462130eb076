"""TensorFlow autodiff for ``jac='autodiff'``: gradients, Hessian products and Jacobians by tapes.

Every derivative is taken with respect to SciPy's whole float64 vector, held as one tensor from
which the entries are sliced, cast and reshaped (so derivatives come back flat, in the layout's
order and in float64, whatever the entries' dtypes).

Eager mode (``jit=None`` or ``False``): with ``second_order=True`` the gradient is computed under
a persistent outer tape, kept until SciPy moves to another point, so ``hvp`` and ``hess`` at the
point of the last gradient do not call the user's function again. A constraint's tape from
``value`` is reused by ``jacobian`` at the same point.

``jit=True``: the value-and-gradient, the Hessian-vector product, the Hessian, and the
constraint's value, Jacobian and product are each one ``tf.function`` with a fixed input
signature, traced once per builder call: ``fun_calls`` counts traces (at most one per kind of
derivative asked for), and the graphs recompute the forward pass at every call (no tape survives
a ``tf.function`` call).
"""

from __future__ import annotations

import contextlib
import functools
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from dict_minimize._errors import (
    grad_shape,
    grad_type,
    not_floating,
    pair_error,
)
from dict_minimize._structure.layout import Layout, _mapping_factory, values_by_key
from dict_minimize._structure.types import Codec
from dict_minimize.backends._ad import (
    VALUE_AND_GRAD_DOC,
    PointCache,
    as_jit,
    as_vector,
    cached_per_fun,
    dict_entries,
    dtype_error,
    scalar_kind_error,
    scalar_shape_error,
    vector_kind_error,
)

_WHERE = "with jac='autodiff'"
_PAIR_WHERE = "with jac=True"
#: attribute marking a function of this package as traceable by tf.function
_TRACEABLE = "_dict_minimize_traceable"
_POLYMORPHIC = tf.types.experimental.PolymorphicFunction
_TENSOR = "tf.Tensor"
_ZERO = tf.UnconnectedGradients.ZERO


def _is_tensor(value: Any) -> bool:
    return isinstance(value, (tf.Tensor, tf.Variable))


def _check_scalar(value: Any, where: str) -> Any:
    """The objective's value, or a TypeError/ValueError saying what is wrong with it."""
    if not _is_tensor(value):
        raise scalar_kind_error(value, _TENSOR, where)
    rank = value.shape.rank
    if rank is not None and rank != 0:
        raise scalar_shape_error(tuple(value.shape), where)
    if not value.dtype.is_floating:
        raise dtype_error(value.dtype.name, where)
    return value


def _check_vector(value: Any, where: str) -> Any:
    if not _is_tensor(value):
        raise vector_kind_error(value, _TENSOR, where)
    if not value.dtype.is_floating:
        raise dtype_error(value.dtype.name, where, what="the constraint function", kind="tensor")
    return value


def _flat64(value: Any) -> Any:
    return tf.reshape(tf.cast(value, tf.float64), [-1])


def _dense(g: Any) -> Any:
    return tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g


def _host(t: Any) -> np.ndarray:
    """A float64 NumPy copy (never a view of the tensor's buffer: ``.numpy()`` copies)."""
    out = t.numpy()
    return out if out.dtype == np.float64 else out.astype(np.float64)


class _Tapes(NamedTuple):
    """What a run under nested tapes leaves for second-order products at its point."""

    outer: tf.GradientTape
    xflat: Any
    grad: Any  # first derivatives (n,), recorded by ``outer``


class _ConstraintTape(NamedTuple):
    tape: tf.GradientTape
    xflat: Any
    out: Any  # the constraint's values, flattened to float64, recorded by ``tape``


class _Core:
    """What the traced bodies need, shared by every ``minimize`` call that compiles the same
    ``fun`` over the same layout: the layout, the user's function (held weakly when cached),
    the trace counter, the compiled functions, and the user's error of the current trace."""

    def __init__(self, layout: Layout, fun: Callable, *, weak: bool) -> None:
        self.layout = layout
        self._ref: Callable[[], Any] = weakref.ref(fun) if weak else (lambda: fun)
        self.calls = 0  # Python calls of fun: traces under jit
        # entries of one dtype other than float64 on one device: the whole vector is cast once
        dtypes, devices = layout.dtypes, layout.devices
        same = all(d == dtypes[0] for d in dtypes) and all(d == devices[0] for d in devices)
        self._cast_to = dtypes[0] if same and dtypes[0] != tf.float64 else None
        self.functions: dict[str, Callable] = {}
        self._local = threading.local()  # the user's error of a failed trace, per thread
        self._lock = threading.Lock()

    def entries(self, xflat: Any) -> list[Any]:
        """The entries of ``x_dict``: slices of the flat vector, cast and reshaped."""
        lay = self.layout
        if self._cast_to is not None:
            xflat = tf.cast(xflat, self._cast_to)  # one cast, not one per entry
        # one split: its gradient is one concatenation, where per-key slices would each
        # scatter into a full-size gradient (quadratic in the number of keys)
        pieces = tf.split(xflat, list(lay.sizes)) if len(lay.sizes) > 1 else [xflat]
        out = []
        for piece, shape, dtype, device in zip(
            pieces, lay.shapes, lay.dtypes, lay.devices, strict=True
        ):
            with tf.device(device) if device else contextlib.nullcontext():
                if piece.dtype != dtype:
                    piece = tf.cast(piece, dtype)
                out.append(piece if len(shape) == 1 else tf.reshape(piece, shape))
        return out

    def run(self, xflat: Any, args: tuple, check: Callable[[Any], Any]) -> Any:
        """``check(fun(x_dict, *args))``; a TypeError/ValueError of ``check`` is kept so that it
        can be raised as is, not as rewritten by ``tf.function``'s tracing."""
        self.calls += 1
        fun = self._ref()
        assert fun is not None  # whoever uses a cached core holds fun
        out = fun(self.layout.build(self.entries(xflat)), *args)
        try:
            return check(out)
        except (TypeError, ValueError) as exc:
            self._local.error = exc
            raise

    def tapes(
        self, xflat: Any, args: tuple, check: Callable, weights: Any = None
    ) -> tuple[Any, _Tapes]:
        """Value and first derivatives under a persistent outer tape (for second order)."""
        with tf.GradientTape(persistent=True) as outer:
            outer.watch(xflat)
            with tf.GradientTape() as inner:
                inner.watch(xflat)
                value = self.run(xflat, args, check)
                target = value if weights is None else tf.reduce_sum(_flat64(value) * weights)
            grad = inner.gradient(target, xflat, unconnected_gradients=_ZERO)
        return value, _Tapes(outer, xflat, _dense(grad))

    def traced(self, body: Callable[..., Any]) -> Callable[..., Any]:
        """``body(core, *vectors, args)`` as one ``tf.function``, made once per core.

        ``args`` is an input of the function, so TensorFlow's own rules decide when it traces
        again: tensors and NumPy arrays by shape and dtype, Python numbers by value, other
        objects by identity.
        """
        with self._lock:
            fn = self.functions.get(body.__name__)
            if fn is None:
                fn = self.functions[body.__name__] = tf.function(functools.partial(body, self))

        def call(*inputs: Any) -> Any:
            self._local.error = None
            try:
                return fn(*inputs)
            except Exception:  # tracing rewrites errors of types it does not know (StagingError)
                error, self._local.error = self._local.error, None
                if error is not None:
                    raise error from None
                raise

        return call


# fun -> OrderedDict((kind, layout, mapping factory) -> _Core); weak on fun, LRU per fun
_CACHE: weakref.WeakKeyDictionary[Any, OrderedDict[Hashable, _Core]] = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()
#: how many layouts are kept compiled for one ``fun``
CACHE_PER_FUN = 8


def _cached_core(kind: str, layout: Layout, fun: Callable) -> _Core:
    """The shared core for compiling ``fun`` over ``layout``: repeated ``minimize`` calls with
    the same ``fun`` reuse its traces."""
    key: Hashable = (kind, layout, layout.factory)
    return cached_per_fun(
        _CACHE, _CACHE_LOCK, fun, key, lambda weak: _Core(layout, fun, weak=weak), CACHE_PER_FUN
    )


def _check_pair(out: Any, layout: Layout) -> tuple[Any, list[Any]]:
    """``fun -> (value, grad_dict)``: the value and the gradients in layout order, checked."""
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise pair_error(out)
    value = _check_scalar(out[0], _PAIR_WHERE)
    grads = values_by_key(out[1], layout)
    for key, g, shape in zip(layout.keys, grads, layout.shapes, strict=True):
        if not isinstance(g, (tf.Tensor, tf.IndexedSlices)):
            raise grad_type(key, g, "a tf.Tensor")
        if tuple(g.shape) != shape:
            raise grad_shape(key, tuple(g.shape), shape)
        if not g.dtype.is_floating:
            raise not_floating("gradient", key, g.dtype.name)
    return value, grads


def _scalar(value: Any) -> Any:
    return _check_scalar(value, _WHERE)


def _vector(value: Any) -> Any:
    return _check_vector(value, _WHERE)


# --- the bodies: functions of (core, *float64 vectors, args), eager or traced ---------------


def _vg_body(core: _Core, xflat: Any, args: tuple) -> Any:
    """The gradient with the value appended (one vector: one transfer back)."""
    with tf.GradientTape() as tape:
        tape.watch(xflat)
        value = core.run(xflat, args, _scalar)
    grad = _dense(tape.gradient(value, xflat, unconnected_gradients=_ZERO))
    return tf.concat([grad, tf.reshape(tf.cast(value, tf.float64), [1])], 0)


def _hvp_body(core: _Core, xflat: Any, p: Any, args: tuple) -> Any:
    _, tapes = core.tapes(xflat, args, _scalar)
    return _hvp(tapes, p)


def _hess_body(core: _Core, xflat: Any, args: tuple) -> Any:
    _, tapes = core.tapes(xflat, args, _scalar)
    return _hess(tapes)


def _pair_body(core: _Core, xflat: Any, args: tuple) -> Any:
    value, grads = core.run(xflat, args, lambda out: _check_pair(out, core.layout))
    parts = [tf.reshape(_dense(g), [-1]) for g in grads]
    if len({p.dtype for p in parts}) == 1:  # one join, then one cast (not one per entry)
        joined = tf.cast(tf.concat(parts, 0) if len(parts) > 1 else parts[0], tf.float64)
    else:
        joined = tf.concat([tf.cast(p, tf.float64) for p in parts], 0)
    return tf.concat([joined, tf.reshape(tf.cast(value, tf.float64), [1])], 0)


def _record(core: _Core, xflat: Any, args: tuple) -> _ConstraintTape:
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(xflat)
        out = _flat64(core.run(xflat, args, _vector))
    return _ConstraintTape(tape, xflat, out)


def _cvalue_body(core: _Core, xflat: Any, args: tuple) -> Any:
    return _flat64(core.run(xflat, args, _vector))


def _cjac_body(core: _Core, xflat: Any, args: tuple) -> Any:
    return _jacobian(_record(core, xflat, args))


def _cvhp_body(core: _Core, xflat: Any, v: Any, p: Any, args: tuple) -> Any:
    _, tapes = core.tapes(xflat, args, _vector, weights=v)
    return _hvp(tapes, p)


class _Base:
    _kind = "scalar"

    def __init__(self, layout: Layout, codec: Codec, fun: Callable, args: tuple, jit: Any):
        self.layout, self.codec, self.fun, self.args = layout, codec, fun, tuple(args)
        self.jit = as_jit(jit)
        self.n = layout.n
        self._core = (
            _cached_core(self._kind, layout, fun) if self.jit else _Core(layout, fun, weak=False)
        )
        self._calls_base = self._core.calls
        devices = layout.devices
        self._device = devices[0] if all(d == devices[0] for d in devices) else None

    @property
    def fun_calls(self) -> int:
        """Python calls of the user's function (under jit: traces since this object was made)."""
        return self._core.calls - self._calls_base

    def _xflat(self, x: np.ndarray) -> Any:
        """SciPy's vector as a float64 tensor that owns a copy of it (``tf.constant`` copies)."""
        x = as_vector(x, self.n, "x")
        with tf.device(self._device) if self._device else contextlib.nullcontext():
            return tf.constant(x)

    def _function(self, body: Callable[..., Any]) -> Callable[..., Any]:
        """``body`` of float64 vectors, eager or as one cached ``tf.function`` (jit); the
        extra arguments are passed at each call."""
        core, args = self._core, self.args
        if not self.jit:
            return lambda *vectors: body(core, *vectors, args)
        traced = core.traced(body)
        return lambda *vectors: traced(*vectors, args)


class TensorFlowScalarAD(_Base):
    """:class:`~dict_minimize._structure.types.ScalarAD` for TensorFlow; see :func:`scalar_ad`."""

    def __init__(
        self,
        layout: Layout,
        codec: Codec,
        fun: Callable,
        args: tuple,
        *,
        jit: Any,
        second_order: bool,
    ) -> None:
        super().__init__(layout, codec, fun, args, jit)
        self.second_order = bool(second_order)
        self._cache: PointCache[_Tapes] = PointCache()
        self._vg = self._function(_vg_body)
        self._hvp_fn = self._function(_hvp_body)
        self._hess_fn = self._function(_hess_body)

    def value_and_grad(self, x: np.ndarray, owned: bool = False) -> tuple[float, np.ndarray]:
        xflat = self._xflat(x)
        if self.jit or not self.second_order:
            self._cache.clear()
            out = _host(self._vg(xflat))
            return float(out[self.n]), out[: self.n]
        value, tapes = self._core.tapes(xflat, self.args, _scalar)
        self._cache.put(x, tapes)
        return float(tf.cast(value, tf.float64).numpy()), _host(tapes.grad)

    def _cached(self, x: np.ndarray) -> _Tapes:
        tapes = self._cache.get(x)
        if tapes is None:
            _, tapes = self._core.tapes(self._xflat(x), self.args, _scalar)
            self._cache.put(x, tapes)
        return tapes

    def hvp(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        p_t = tf.constant(as_vector(p, self.n, "p"))
        if self.jit:
            return _host(self._hvp_fn(self._xflat(x), p_t))
        return _host(_hvp(self._cached(as_vector(x, self.n, "x")), p_t))

    def hess(self, x: np.ndarray) -> np.ndarray:
        if self.jit:
            h = _host(self._hess_fn(self._xflat(x)))
        else:
            h = _host(_hess(self._cached(as_vector(x, self.n, "x"))))
        return (h + h.T) / 2


class TensorFlowPair(_Base):
    """:class:`~dict_minimize._structure.types.CompiledPair` for TensorFlow (compile_pair)."""

    _kind = "pair"

    def __init__(self, layout: Layout, codec: Codec, fun: Callable, args: tuple) -> None:
        super().__init__(layout, codec, fun, args, True)
        self._packed = self._function(_pair_body)

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """``fun``'s value and gradient at ``x``: a float and a float64 vector (one transfer)."""
        out = _host(self._packed(self._xflat(x)))
        return float(out[self.n]), out[: self.n]


def _hvp(tapes: _Tapes, p: Any) -> Any:
    hv = tapes.outer.gradient(
        tapes.grad, tapes.xflat, output_gradients=p, unconnected_gradients=_ZERO
    )
    return _dense(hv)


def _hess(tapes: _Tapes) -> Any:
    return _jacobian_rows(tapes.outer, tapes.grad, tapes.xflat)


#: eagerly, Jacobians with up to this many rows are taken one backward pass per row: setting up
#: ``tape.jacobian``'s vectorization (pfor) costs about as much as 30 to 80 backward passes
_EAGER_LOOP_ROWS = 32


def _jacobian_rows(tape: tf.GradientTape, target: Any, source: Any) -> Any:
    """``d target / d source`` for 1-D float64 ``target`` and ``source`` (a persistent tape)."""
    rows = target.shape[0]
    if tf.executing_eagerly() and rows <= _EAGER_LOOP_ROWS:
        if rows == 0:
            return tf.zeros((0, source.shape[0]), tf.float64)
        eye = tf.eye(rows, dtype=tf.float64)
        return tf.stack(
            [
                _dense(
                    tape.gradient(
                        target, source, output_gradients=eye[i], unconnected_gradients=_ZERO
                    )
                )
                for i in range(rows)
            ]
        )
    return tape.jacobian(target, source, unconnected_gradients=_ZERO)


class TensorFlowVectorAD(_Base):
    """:class:`~dict_minimize._structure.types.VectorAD` for TensorFlow; see :func:`vector_ad`."""

    _kind = "vector"

    def __init__(self, layout: Layout, codec: Codec, cfun: Callable, args: tuple, *, jit: Any):
        super().__init__(layout, codec, cfun, args, jit)
        self._cache: PointCache[_ConstraintTape] = PointCache()
        self._vhp_cache: PointCache[_Tapes] = PointCache()  # keyed by (x, v)
        self._value_fn = self._function(_cvalue_body)
        self._jac_fn = self._function(_cjac_body)
        self._vhp_fn = self._function(_cvhp_body)

    def _recorded(self, x: np.ndarray) -> _ConstraintTape:
        x = as_vector(x, self.n, "x")
        rec = self._cache.get(x)
        if rec is None:
            rec = _record(self._core, self._xflat(x), self.args)
            self._cache.put(x, rec)
        return rec

    def value(self, x: np.ndarray) -> np.ndarray:
        if self.jit:
            return _host(self._value_fn(self._xflat(x)))
        return _host(self._recorded(x).out)

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        if self.jit:
            return _host(self._jac_fn(self._xflat(x)))
        return _host(_jacobian(self._recorded(x)))

    def vhp(self, x: np.ndarray, v: np.ndarray, p: np.ndarray) -> np.ndarray:
        x = as_vector(x, self.n, "x")
        v = np.ascontiguousarray(v, dtype=np.float64).reshape(-1)
        p_t = tf.constant(as_vector(p, self.n, "p"))
        if self.jit:
            return _host(self._vhp_fn(self._xflat(x), tf.constant(v), p_t))
        key = np.concatenate([x, v])
        tapes = self._vhp_cache.get(key)
        if tapes is None:
            _, tapes = self._core.tapes(self._xflat(x), self.args, _vector, weights=tf.constant(v))
            self._vhp_cache.put(key, tapes)
        return _host(_hvp(tapes, p_t))


def _jacobian(rec: _ConstraintTape) -> Any:
    return _jacobian_rows(rec.tape, rec.out, rec.xflat)


def is_compiled(fun: Any) -> bool:
    """True for a ``tf.function`` (or this package's ``value_and_grad`` of one): a function that
    is traced anyway, so tracing it inside a larger ``tf.function`` changes nothing."""
    return isinstance(fun, _POLYMORPHIC) or getattr(fun, _TRACEABLE, False) is True


def _resolve_jit(jit: Any, fun: Any) -> bool:
    """None (the default) means: compile when ``fun`` is already a ``tf.function``."""
    return is_compiled(fun) if jit is None else as_jit(jit)


def compile_pair(
    layout: Layout, codec: Codec, fun: Callable, args: tuple, *, jit: bool | None = None
) -> TensorFlowPair | None:
    """``fun(x_dict, *args) -> (value, grad_dict)`` as one ``tf.function`` of the flat vector.

    Calling a ``tf.function`` costs per argument (about 20 us per entry of the dict); inside one
    ``tf.function`` of SciPy's flat vector, with the split before it and the concatenation
    after it, the user's function is inlined and that cost is gone.

    Args:
        layout: the structure of ``x0``.
        codec: the TensorFlow codec for ``layout``.
        fun: returns ``(value, grad_dict)`` of tensors computed from ``x_dict``.
        args: extra positional arguments for ``fun`` (constants of the traced graph).
        jit: True compiles any traceable ``fun``; None (the default) only a ``tf.function``;
            False never.

    Returns:
        TensorFlowPair | None: ``value_and_grad`` and ``fun_calls`` (traces); None when not
        compiling.

    Example:
        >>> import numpy as np, tensorflow as tf
        >>> from dict_minimize._structure.layout import make_layout
        >>> from dict_minimize.backends import get_backend
        >>> be = get_backend("tensorflow")
        >>> lay = make_layout({"a": tf.zeros(2, tf.float64)}, be)
        >>> @tf.function
        ... def fun(d):
        ...     return tf.reduce_sum(d["a"] ** 2), {"a": 2 * d["a"]}
        >>> compile_pair(lay, be.make_codec(lay), fun, ()).value_and_grad(np.array([1.0, 2.0]))
        (5.0, array([2., 4.]))
    """
    if not _resolve_jit(jit, fun):
        return None
    return TensorFlowPair(layout, codec, fun, args)


def scalar_ad(
    layout: Layout,
    codec: Codec,
    fun: Callable,
    args: tuple,
    *,
    jit: bool | None = None,
    second_order: bool = False,
) -> TensorFlowScalarAD:
    """:class:`~dict_minimize._structure.types.ScalarAD` by ``tf.GradientTape`` (the arguments:
    :class:`~dict_minimize._structure.types.Backend`). ``jit=None`` runs each derivative as a
    ``tf.function`` traced once when ``fun`` is already a ``tf.function``, eagerly otherwise;
    ``second_order`` keeps the persistent tape of the last eager gradient."""
    jit_on = _resolve_jit(jit, fun)
    return TensorFlowScalarAD(layout, codec, fun, args, jit=jit_on, second_order=second_order)


def vector_ad(
    layout: Layout, codec: Codec, cfun: Callable, args: tuple, *, jit: bool | None = None
) -> TensorFlowVectorAD:
    """:class:`~dict_minimize._structure.types.VectorAD` by ``tf.GradientTape``; ``jit`` as
    for :func:`scalar_ad`. Eagerly, ``jacobian`` reuses the tape of ``value`` at the same point,
    and ``vhp`` runs ``cfun`` once per new ``(x, v)``."""
    return TensorFlowVectorAD(layout, codec, cfun, args, jit=_resolve_jit(jit, cfun))


def value_and_grad(fun: Callable) -> Callable[..., tuple[Any, Mapping]]:
    where = "in value_and_grad(fun)"

    @functools.wraps(fun)
    def value_and_grad_fun(x_dict: Mapping, *args: Any) -> tuple[Any, Mapping]:
        keys, values = dict_entries(
            x_dict,
            where,
            "tf.Tensor",
            _is_tensor,
            lambda t: None if t.dtype.is_floating else t.dtype.name,
        )
        with tf.GradientTape() as tape:
            tape.watch(values)
            value = _check_scalar(fun(x_dict, *args), where)
        grads = tape.gradient(value, values, unconnected_gradients=_ZERO)
        return value, _mapping_factory(x_dict)(zip(keys, [_dense(g) for g in grads], strict=True))

    setattr(value_and_grad_fun, _TRACEABLE, is_compiled(fun))
    return value_and_grad_fun


value_and_grad.__doc__ = VALUE_AND_GRAD_DOC.format(
    name="TensorFlow",
    module="tensorflow",
    tensor="tf.Tensor",
    detached="",
    example="""
    >>> import tensorflow as tf
    >>> from dict_minimize.tensorflow_api import minimize, value_and_grad
    >>> f = value_and_grad(lambda d, c: tf.reduce_sum((d["x"] - c) ** 2))
    >>> value, grad = f({"x": tf.zeros(2)}, 2.0)
    >>> float(value), grad["x"].numpy()
    (8.0, array([-4., -4.], dtype=float32))
    >>> minimize(f, {"x": tf.zeros(2)}, args=(2.0,), method="L-BFGS-B")["x"].numpy()
    array([2., 2.], dtype=float32)
""",
)

__all__ = [
    "TensorFlowPair",
    "TensorFlowScalarAD",
    "TensorFlowVectorAD",
    "compile_pair",
    "is_compiled",
    "scalar_ad",
    "value_and_grad",
    "vector_ad",
]

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
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf

from dict_minimize._errors import fmt_key, not_floating, type_name
from dict_minimize._layout import Layout, _mapping_factory
from dict_minimize._types import Codec
from dict_minimize.backends._ad import (
    VALUE_AND_GRAD_DOC,
    PointCache,
    as_jit,
    as_vector,
    dtype_error,
    scalar_kind_error,
    scalar_shape_error,
    vector_kind_error,
)

_WHERE = "with jac='autodiff'"
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
    """A float64 NumPy copy (never a view of the tensor's buffer)."""
    return np.array(t.numpy(), dtype=np.float64, copy=True)


class _Tapes(NamedTuple):
    """What a run under nested tapes leaves for second-order products at its point."""

    outer: tf.GradientTape
    xflat: Any
    grad: Any  # first derivatives (n,), recorded by ``outer``


class _Base:
    def __init__(self, layout: Layout, codec: Codec, fun: Callable, args: tuple, jit: Any):
        self.layout, self.codec, self.fun, self.args = layout, codec, fun, tuple(args)
        self.jit = as_jit(jit)
        self.n = layout.n
        self.fun_calls = 0
        self._error: Exception | None = None  # a user error raised while tracing
        devices = layout.devices
        self._device = devices[0] if all(d == devices[0] for d in devices) else None

    def _xflat(self, x: np.ndarray) -> Any:
        """SciPy's vector as a float64 tensor that owns a copy of it."""
        x = np.array(as_vector(x, self.n, "x"), copy=True)
        with tf.device(self._device) if self._device else contextlib.nullcontext():
            return tf.constant(x)

    def _entries(self, xflat: Any) -> list[Any]:
        """The entries of ``x_dict``: slices of the flat vector, cast and reshaped."""
        lay = self.layout
        # one split: its gradient is one concatenation, where per-key slices would each
        # scatter into a full-size gradient (quadratic in the number of keys)
        pieces = tf.split(xflat, list(lay.sizes)) if len(lay.sizes) > 1 else [xflat]
        out = []
        for piece, shape, dtype, device in zip(
            pieces, lay.shapes, lay.dtypes, lay.devices, strict=True
        ):
            with tf.device(device) if device else contextlib.nullcontext():
                if dtype != tf.float64:
                    piece = tf.cast(piece, dtype)
                out.append(piece if len(shape) == 1 else tf.reshape(piece, shape))
        return out

    def _call(self, xflat: Any, check: Callable[[Any, str], Any]) -> Any:
        self.fun_calls += 1
        value = self.fun(self.layout.build(self._entries(xflat)), *self.args)
        try:
            return check(value, _WHERE)
        except (TypeError, ValueError) as exc:
            if self.jit:  # raised again as is, not as rewritten by tf.function's tracing
                self._error = exc
            raise

    def _function(self, body: Callable, *sizes: int | None) -> Callable:
        """``body`` as is (eager) or as one ``tf.function`` of float64 vectors (jit)."""
        if not self.jit:
            return body
        traced = tf.function(body, input_signature=[tf.TensorSpec([s], tf.float64) for s in sizes])

        @functools.wraps(body)
        def call(*inputs: Any) -> Any:
            self._error = None
            try:
                return traced(*inputs)
            except (TypeError, ValueError):
                error, self._error = self._error, None
                if error is not None:
                    raise error from None
                raise

        return call

    def _tapes(self, xflat: Any, check: Callable, weights: Any = None) -> tuple[Any, _Tapes]:
        """Value and first derivatives under a persistent outer tape (for second order)."""
        with tf.GradientTape(persistent=True) as outer:
            outer.watch(xflat)
            with tf.GradientTape() as inner:
                inner.watch(xflat)
                value = self._call(xflat, check)
                target = value if weights is None else tf.reduce_sum(_flat64(value) * weights)
            grad = inner.gradient(target, xflat, unconnected_gradients=_ZERO)
        return value, _Tapes(outer, xflat, _dense(grad))


class TensorFlowScalarAD(_Base):
    """:class:`~dict_minimize._types.ScalarAD` for TensorFlow; see :func:`scalar_ad`."""

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
        self._vg = self._function(self._vg_body, self.n)
        self._hvp_fn = self._function(self._hvp_body, self.n, self.n)
        self._hess_fn = self._function(self._hess_body, self.n)

    def _vg_body(self, xflat: Any) -> tuple[Any, Any]:
        with tf.GradientTape() as tape:
            tape.watch(xflat)
            value = self._call(xflat, _check_scalar)
        grad = tape.gradient(value, xflat, unconnected_gradients=_ZERO)
        return tf.cast(value, tf.float64), _dense(grad)

    def _hvp_body(self, xflat: Any, p: Any) -> Any:
        _, tapes = self._tapes(xflat, _check_scalar)
        return _hvp(tapes, p)

    def _hess_body(self, xflat: Any) -> Any:
        _, tapes = self._tapes(xflat, _check_scalar)
        return _hess(tapes)

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        xflat = self._xflat(x)
        if self.jit or not self.second_order:
            self._cache.clear()
            value, grad = self._vg(xflat)
        else:
            value, tapes = self._tapes(xflat, _check_scalar)
            self._cache.put(x, tapes)
            grad = tapes.grad
        return float(tf.cast(value, tf.float64).numpy()), _host(grad)

    def _cached(self, x: np.ndarray) -> _Tapes:
        tapes = self._cache.get(x)
        if tapes is None:
            _, tapes = self._tapes(self._xflat(x), _check_scalar)
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


class _ConstraintTape(NamedTuple):
    tape: tf.GradientTape
    xflat: Any
    out: Any  # the constraint's values, flattened to float64, recorded by ``tape``


class TensorFlowVectorAD(_Base):
    """:class:`~dict_minimize._types.VectorAD` for TensorFlow; see :func:`vector_ad`."""

    def __init__(self, layout: Layout, codec: Codec, cfun: Callable, args: tuple, *, jit: Any):
        super().__init__(layout, codec, cfun, args, jit)
        self._cache: PointCache[_ConstraintTape] = PointCache()
        self._vhp_cache: PointCache[_Tapes] = PointCache()  # keyed by (x, v)
        self._value_fn = self._function(self._value_body, self.n)
        self._jac_fn = self._function(self._jac_body, self.n)
        # the multipliers' size m is known only once cfun has run
        self._vhp_fn = self._function(self._vhp_body, self.n, None, self.n)

    def _record(self, xflat: Any) -> _ConstraintTape:
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(xflat)
            out = _flat64(self._call(xflat, _check_vector))
        return _ConstraintTape(tape, xflat, out)

    def _value_body(self, xflat: Any) -> Any:
        return _flat64(self._call(xflat, _check_vector))

    def _jac_body(self, xflat: Any) -> Any:
        return _jacobian(self._record(xflat))

    def _vhp_body(self, xflat: Any, v: Any, p: Any) -> Any:
        _, tapes = self._tapes(xflat, _check_vector, weights=v)
        return _hvp(tapes, p)

    def _recorded(self, x: np.ndarray) -> _ConstraintTape:
        x = as_vector(x, self.n, "x")
        rec = self._cache.get(x)
        if rec is None:
            rec = self._record(self._xflat(x))
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
            _, tapes = self._tapes(self._xflat(x), _check_vector, weights=tf.constant(v))
            self._vhp_cache.put(key, tapes)
        return _host(_hvp(tapes, p_t))


def _jacobian(rec: _ConstraintTape) -> Any:
    return _jacobian_rows(rec.tape, rec.out, rec.xflat)


def scalar_ad(
    layout: Layout,
    codec: Codec,
    fun: Callable,
    args: tuple,
    *,
    jit: bool | None = None,
    second_order: bool = False,
) -> TensorFlowScalarAD:
    """Tape derivatives of ``fun(x_dict, *args) -> scalar tensor`` on SciPy's flat vector.

    Args:
        layout: the structure of ``x0``.
        codec: the TensorFlow codec for ``layout``.
        fun: returns a 0-d real floating ``tf.Tensor`` computed from the tensors of ``x_dict``.
        args: extra positional arguments for ``fun`` (constants of the traced graphs under jit).
        jit: True runs each derivative as a ``tf.function`` traced once (``fun`` must then be
            traceable); None (the default) or False runs eagerly.
        second_order: eager mode keeps the persistent tape of the last gradient so that ``hvp``
            and ``hess`` at that point do not call ``fun`` again.

    Returns:
        A :class:`~dict_minimize._types.ScalarAD`.
    """
    return TensorFlowScalarAD(layout, codec, fun, args, jit=jit, second_order=second_order)


def vector_ad(
    layout: Layout, codec: Codec, cfun: Callable, args: tuple, *, jit: bool | None = None
) -> TensorFlowVectorAD:
    """Tape derivatives of ``cfun(x_dict, *args) -> tensor`` (any shape) on the flat vector.

    Args:
        layout: the structure of ``x0``.
        codec: the TensorFlow codec for ``layout``.
        cfun: returns a real floating ``tf.Tensor`` of any shape computed from ``x_dict``.
        args: extra positional arguments for ``cfun``.
        jit: as for :func:`scalar_ad`.

    Returns:
        A :class:`~dict_minimize._types.VectorAD`. Eagerly, ``jacobian`` reuses the tape of
        ``value`` at the same point, and ``vhp`` runs ``cfun`` once per new ``(x, v)``.
    """
    return TensorFlowVectorAD(layout, codec, cfun, args, jit=jit)


def value_and_grad(fun: Callable) -> Callable[..., tuple[Any, Mapping]]:
    where = "in value_and_grad(fun)"

    @functools.wraps(fun)
    def value_and_grad_fun(x_dict: Mapping, *args: Any) -> tuple[Any, Mapping]:
        if not isinstance(x_dict, Mapping):
            raise TypeError(
                f"{where}: x_dict must be a dict of tf.Tensor; got a {type_name(x_dict)}"
            )
        keys = list(x_dict.keys())
        values = []
        for k in keys:
            t = x_dict[k]
            if not _is_tensor(t):
                raise TypeError(
                    f"{where}: x_dict[{fmt_key(k)}] is a {type_name(t)}; expected a tf.Tensor"
                )
            if not t.dtype.is_floating:
                raise not_floating("x_dict", k, t.dtype.name)
            values.append(t)
        with tf.GradientTape() as tape:
            tape.watch(values)
            value = _check_scalar(fun(x_dict, *args), where)
        grads = tape.gradient(value, values, unconnected_gradients=_ZERO)
        return value, _mapping_factory(x_dict)(zip(keys, [_dense(g) for g in grads], strict=True))

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
    "TensorFlowScalarAD",
    "TensorFlowVectorAD",
    "scalar_ad",
    "value_and_grad",
    "vector_ad",
]

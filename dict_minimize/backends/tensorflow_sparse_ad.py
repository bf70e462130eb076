"""TensorFlow's compressed products for sparse derivatives (``jac_sparsity``/``hess_sparsity``).

Forward products ``J @ S`` use ``tf.autodiff.ForwardAccumulator``; reverse products ``J.T @ W``
and Hessian products ``H(w · c) @ S`` use tapes. With ``jit=True`` each is one ``tf.function``
(as for the other TensorFlow derivatives, :mod:`dict_minimize.backends.tensorflow_ad`) that
batches the seeds: ``tf.vectorized_map`` of the accumulator (a loop where an operation has no
vectorization rule), and ``GradientTape.jacobian`` of ``W.T @ c`` and of ``S.T @ grad(w · c)``.
Eagerly (the default unless ``fun`` is a ``tf.function``) the seeds go through a loop of
products on one recorded tape (one accumulator per seed for ``J @ S``): batching would trace the
function at every call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from dict_minimize._structure.layout import Layout
from dict_minimize._structure.types import Codec
from dict_minimize.backends._ad import as_vector
from dict_minimize.backends.tensorflow_ad import (
    _ZERO,
    _Base,
    _Core,
    _flat64,
    _host,
    _resolve_jit,
    _vector,
)


def _value_body(core: _Core, xflat: Any, args: tuple) -> Any:
    return _flat64(core.run(xflat, args, _vector))


def _jvp(core: _Core, xflat: Any, s: Any, args: tuple) -> Any:
    with tf.autodiff.ForwardAccumulator(xflat, s) as acc:
        y = _flat64(core.run(xflat, args, _vector))
    return acc.jvp(y, unconnected_gradients=_ZERO)


def _jvps_body(core: _Core, xflat: Any, seeds: Any, args: tuple) -> Any:
    """Compiled: the seeds through ``tf.vectorized_map`` (a loop where it cannot)."""
    try:
        return tf.transpose(
            tf.vectorized_map(lambda s: _jvp(core, xflat, s, args), tf.transpose(seeds))
        )
    except (ValueError, NotImplementedError, tf.errors.InvalidArgumentError):
        return _jvps_loop(core, xflat, seeds, args)


def _jvps_loop(core: _Core, xflat: Any, seeds: Any, args: tuple) -> Any:
    cols = [_jvp(core, xflat, seeds[:, k], args) for k in range(int(seeds.shape[1]))]
    return tf.stack(cols, axis=1)


def _vjps_body(core: _Core, xflat: Any, seeds: Any, args: tuple) -> Any:
    with tf.GradientTape() as tape:
        tape.watch(xflat)
        y = _flat64(core.run(xflat, args, _vector))
        target = tf.linalg.matvec(seeds, y, transpose_a=True)
    return tf.transpose(tape.jacobian(target, xflat, unconnected_gradients=_ZERO))


def _vjps_loop(core: _Core, xflat: Any, seeds: Any, args: tuple) -> Any:
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(xflat)
        y = _flat64(core.run(xflat, args, _vector))
    cols = [
        tape.gradient(y, xflat, output_gradients=seeds[:, k], unconnected_gradients=_ZERO)
        for k in range(int(seeds.shape[1]))
    ]
    return tf.stack(cols, axis=1)


def _hvps_body(core: _Core, xflat: Any, w: Any, seeds: Any, args: tuple) -> Any:
    with tf.GradientTape() as outer:
        outer.watch(xflat)
        with tf.GradientTape() as inner:
            inner.watch(xflat)
            y = tf.reduce_sum(_flat64(core.run(xflat, args, _vector)) * w)
        grad = inner.gradient(y, xflat, unconnected_gradients=_ZERO)
        target = tf.linalg.matvec(seeds, tf.convert_to_tensor(grad), transpose_a=True)
    # H is symmetric: the rows of the Jacobian of S.T g are the columns of H S
    return tf.transpose(outer.jacobian(target, xflat, unconnected_gradients=_ZERO))


def _hvps_loop(core: _Core, xflat: Any, w: Any, seeds: Any, args: tuple) -> Any:
    with tf.GradientTape(persistent=True) as outer:
        outer.watch(xflat)
        with tf.GradientTape() as inner:
            inner.watch(xflat)
            y = tf.reduce_sum(_flat64(core.run(xflat, args, _vector)) * w)
        grad = tf.convert_to_tensor(inner.gradient(y, xflat, unconnected_gradients=_ZERO))
    cols = [
        outer.gradient(grad, xflat, output_gradients=seeds[:, k], unconnected_gradients=_ZERO)
        for k in range(int(seeds.shape[1]))
    ]
    return tf.stack(cols, axis=1)


class TensorFlowSparseProducts(_Base):
    """:class:`~dict_minimize._structure.types.SparseProducts` for TensorFlow."""

    _kind = "sparse"

    def __init__(self, layout: Layout, codec: Codec, fun: Callable, args: tuple, *, jit: Any):
        super().__init__(layout, codec, fun, args, jit)
        # eagerly, vectorized_map and tape.jacobian would trace the function at every call:
        # a loop of products on the recorded tapes instead
        jit = self.jit
        self._fns = {
            "value": self._function(_value_body),
            "jvps": self._function(_jvps_body if jit else _jvps_loop),
            "vjps": self._function(_vjps_body if jit else _vjps_loop),
            "hvps": self._function(_hvps_body if jit else _hvps_loop),
        }

    def _const(self, a: np.ndarray) -> Any:
        return tf.constant(np.array(a, dtype=np.float64))

    def value(self, x: np.ndarray) -> np.ndarray:
        return _host(self._fns["value"](self._xflat(x)))

    def jvps(self, x: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        return _host(self._fns["jvps"](self._xflat(x), self._const(seeds)))

    def vjps(self, x: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        return _host(self._fns["vjps"](self._xflat(x), self._const(seeds)))

    def hvps(self, x: np.ndarray, w: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        w = np.ascontiguousarray(w, dtype=np.float64).reshape(-1)
        xflat = self._xflat(as_vector(x, self.n, "x"))
        return _host(self._fns["hvps"](xflat, self._const(w), self._const(seeds)))


def sparse_products(
    layout: Layout, codec: Codec, fun: Callable, args: tuple, *, jit: bool | None = None
) -> TensorFlowSparseProducts:
    """:class:`~dict_minimize._structure.types.SparseProducts` by TensorFlow's forward
    accumulator and tapes; ``jit`` as for :func:`~dict_minimize.backends.tensorflow_ad.vector_ad`
    (None: compile when ``fun`` is a ``tf.function``)."""
    return TensorFlowSparseProducts(layout, codec, fun, args, jit=_resolve_jit(jit, fun))


__all__ = ["TensorFlowSparseProducts", "sparse_products"]

"""TensorFlow's batched evaluations (``minimize_batched``): ``tf.vectorized_map`` of one
problem's value and ``GradientTape`` gradient (or of ``fun`` itself with ``jac=True``), or the
user's own batched function (``vectorized=True``).

The (k, n) matrix crosses in one conversion and is cut, cast and reshaped inside a
``tf.function`` traced once for any row count (``jit=False``: eagerly); the values and joined
gradients come back as one (k,) and one (k, n) array.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from dict_minimize._structure.layout import Layout
from dict_minimize.backends._batch import check_values, split_pair, stacked_grads


def _shape(g: Any) -> Any:
    shape = getattr(g, "shape", None)
    return None if shape is None else tuple(shape)


class TensorflowBatch:
    """:class:`~dict_minimize._structure.types.BatchEval` for TensorFlow."""

    def __init__(
        self,
        layout: Layout,
        fun: Callable,
        args: tuple,
        batch_args: tuple,
        *,
        mode: str,
        vectorized: bool,
        jit: bool,
    ) -> None:
        self.layout = layout
        spans = list(zip(layout.offsets[:-1], layout.offsets[1:], strict=True))
        build, shapes, dtypes = layout.build, layout.shapes, layout.dtypes
        data = tf.nest.map_structure(tf.convert_to_tensor, batch_args)
        zero = tf.UnconnectedGradients.ZERO

        def split(X: Any) -> tuple:
            return tuple(
                tf.cast(tf.reshape(X[:, a:b], (-1, *s)), dt)
                for (a, b), s, dt in zip(spans, shapes, dtypes, strict=True)
            )

        def join(grads: Any, k: Any) -> Any:
            if not grads:
                return tf.zeros((k, 0), tf.float64)
            return tf.concat([tf.reshape(tf.cast(g, tf.float64), (k, -1)) for g in grads], 1)

        def one(elems: tuple) -> Any:
            leaves, rows = elems
            if mode == "pair":
                value, grad = split_pair(fun(build(list(leaves)), *rows, *args))
                return value, tuple(stacked_grads(grad, layout, 1, lambda g: (1, *g.shape)))
            with tf.GradientTape() as tape:
                tape.watch(leaves)
                value = fun(build(list(leaves)), *rows, *args)
            return value, tuple(tape.gradient(value, leaves, unconnected_gradients=zero))

        def vg(X: Any, idx: Any) -> Any:
            k = tf.shape(X)[0]
            leaves = split(X)
            rows = tf.nest.map_structure(lambda a: tf.gather(a, idx), data)
            if vectorized:
                if mode == "pair":
                    values, grad = split_pair(fun(build(list(leaves)), idx, *rows, *args))
                    grads = stacked_grads(grad, layout, X.shape[0], _shape)
                else:
                    with tf.GradientTape() as tape:
                        tape.watch(leaves)
                        values = fun(build(list(leaves)), idx, *rows, *args)
                        total = tf.reduce_sum(values)
                    grads = tape.gradient(total, leaves, unconnected_gradients=zero)
            else:
                values, grads = tf.vectorized_map(one, (leaves, tuple(rows)))
            return tf.reshape(tf.cast(values, tf.float64), (-1,)), join(list(grads), k)

        def hvp_one(elems: tuple) -> Any:
            leaves, ps, rows = elems
            with tf.GradientTape() as outer:
                outer.watch(leaves)
                with tf.GradientTape() as inner:
                    inner.watch(leaves)
                    value = fun(build(list(leaves)), *rows, *args)
                g = inner.gradient(value, leaves, unconnected_gradients=zero)
                dot = tf.add_n([tf.reduce_sum(gi * pi) for gi, pi in zip(g, ps, strict=True)])
            return tuple(outer.gradient(dot, leaves, unconnected_gradients=zero))

        def hvp(X: Any, P: Any, idx: Any) -> Any:
            leaves, ps = split(X), split(P)
            rows = tf.nest.map_structure(lambda a: tf.gather(a, idx), data)
            if vectorized:
                with tf.GradientTape() as outer:
                    outer.watch(leaves)
                    with tf.GradientTape() as inner:
                        inner.watch(leaves)
                        total = tf.reduce_sum(fun(build(list(leaves)), idx, *rows, *args))
                    g = inner.gradient(total, leaves, unconnected_gradients=zero)
                    dot = tf.add_n([tf.reduce_sum(gi * pi) for gi, pi in zip(g, ps, strict=True)])
                out = outer.gradient(dot, leaves, unconnected_gradients=zero)
            else:
                out = tf.vectorized_map(hvp_one, (leaves, ps, tuple(rows)))
            return join(list(out), tf.shape(X)[0])

        if jit:
            n = layout.n
            mat = tf.TensorSpec([None, n], tf.float64)
            ids = tf.TensorSpec([None], tf.int64)
            self._vg = tf.function(vg, input_signature=[mat, ids])
            self._hvp = tf.function(hvp, input_signature=[mat, mat, ids])
        else:
            self._vg, self._hvp = vg, hvp

    def value_and_grad(self, idx: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values, G = self._vg(tf.constant(X, tf.float64), tf.constant(idx, tf.int64))
        f = np.asarray(values.numpy(), dtype=np.float64)
        check_values(f.shape, len(idx))
        return f, np.asarray(G.numpy(), dtype=np.float64)

    def hvp(self, idx: np.ndarray, X: np.ndarray, P: np.ndarray) -> np.ndarray:
        out = self._hvp(
            tf.constant(X, tf.float64), tf.constant(P, tf.float64), tf.constant(idx, tf.int64)
        )
        return np.asarray(out.numpy(), dtype=np.float64)

    def stack(self, X: np.ndarray) -> list[Any]:
        lay, k = self.layout, X.shape[0]
        out = []
        for a, b, s, dt, dev in zip(
            lay.offsets[:-1], lay.offsets[1:], lay.shapes, lay.dtypes, lay.devices, strict=True
        ):
            with tf.device(dev) if dev else contextlib.nullcontext():
                out.append(tf.cast(tf.constant(X[:, a:b].reshape((k, *s))), dt))
        return out


def batch(
    layout: Layout,
    fun: Callable,
    args: tuple,
    batch_args: tuple,
    *,
    mode: str,
    vectorized: bool,
    jit: bool | None = None,
) -> TensorflowBatch:
    """TensorFlow's batched evaluator: one ``tf.function`` unless ``jit=False``."""
    return TensorflowBatch(
        layout, fun, args, batch_args, mode=mode, vectorized=vectorized, jit=jit is not False
    )

"""TensorFlow backend: eager tensors and ``tf.Variable`` entries of any floating dtype.

Variables in ``x0`` are read, never assigned; the objective and the result get eager tensors of
the same dtype on the same device.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from dict_minimize._errors import grad_shape, grad_type, not_floating, type_name
from dict_minimize._layout import Layout
from dict_minimize._types import Backend, Codec, EntryInfo
from dict_minimize.backends._common import np_concat64


def owns(value: Any) -> bool:
    return isinstance(value, (tf.Tensor, tf.Variable))


def describe(key: Hashable, value: Any) -> EntryInfo:
    if not isinstance(value, (tf.Tensor, tf.Variable)):
        raise TypeError(f"x0[{key!r}] is a {type_name(value)}; expected a tf.Tensor")
    if isinstance(value, tf.Tensor) and not hasattr(value, "numpy"):
        raise TypeError(f"x0[{key!r}] is a symbolic tensor: call minimize eagerly")
    dtype = value.dtype
    if not dtype.is_floating:
        raise not_floating("x0", key, dtype.name)
    shape = tuple(int(s) for s in value.shape)
    return EntryInfo(shape, dtype, np.dtype(dtype.as_numpy_dtype), value.device)


def to_numpy(value: Any) -> np.ndarray:
    return np.asarray(tf.cast(value, tf.float64).numpy())


def make_codec(layout: Layout) -> Codec:
    keys, shapes, np_dtypes, devices = layout.keys, layout.shapes, layout.np_dtypes, layout.devices
    offsets = layout.offsets
    n = layout.n
    device = devices[0] if all(d == devices[0] for d in devices) else None

    def unflatten(vec: np.ndarray, *, for_objective: bool) -> list[tf.Tensor]:
        out = []
        for i, (dt, s, dev) in enumerate(zip(np_dtypes, shapes, devices, strict=True)):
            with tf.device(device if device is not None else dev):
                out.append(tf.constant(vec[offsets[i] : offsets[i + 1]].astype(dt).reshape(s)))
        return out

    def flatten(value: Any, grads: Sequence[Any]) -> tuple[Any, np.ndarray]:
        parts = []
        for key, g, shape in zip(keys, grads, shapes, strict=True):
            if isinstance(g, tf.IndexedSlices):
                g = tf.convert_to_tensor(g)
            elif isinstance(g, tf.Variable):
                g = g.read_value()
            if not isinstance(g, (tf.Tensor, np.ndarray, np.generic)):
                raise grad_type(key, g, "a tf.Tensor")
            if tuple(g.shape) != shape:
                raise grad_shape(key, tuple(g.shape), shape)
            dtype = tf.as_dtype(g.dtype)
            if not dtype.is_floating:
                raise not_floating("gradient", key, dtype.name)
            if dtype == tf.bfloat16:  # no NumPy bfloat16 without ml_dtypes: widen on the device
                g = tf.cast(g, tf.float32)
            parts.append(np.asarray(g).reshape(-1))
        return value, np_concat64(parts, n)

    return Codec(unflatten=unflatten, flatten=flatten)


BACKEND = Backend(
    name="tensorflow", owns=owns, describe=describe, make_codec=make_codec, to_numpy=to_numpy
)

"""TensorFlow backend: eager tensors and ``tf.Variable`` entries of any floating dtype.

Variables in ``x0`` are read, never assigned; the objective and the result get eager tensors of
the same dtype on the same device.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from dict_minimize._errors import at, grad_shape, grad_type, not_floating, type_name
from dict_minimize._structure.layout import Layout
from dict_minimize._structure.types import Backend, Codec, EntryInfo
from dict_minimize.backends import tensorflow_ad, tensorflow_sparse_ad
from dict_minimize.backends._common import np_concat64
from dict_minimize.backends._runs import shape_runs


def owns(value: Any) -> bool:
    return isinstance(value, (tf.Tensor, tf.Variable))


def describe(key: Hashable, value: Any) -> EntryInfo:
    if not isinstance(value, (tf.Tensor, tf.Variable)):
        raise TypeError(f"{at('x0', key)} is a {type_name(value)}; expected a tf.Tensor")
    if isinstance(value, tf.Tensor) and not hasattr(value, "numpy"):
        raise TypeError(f"{at('x0', key)} is a symbolic tensor: call minimize eagerly")
    dtype = value.dtype
    if not dtype.is_floating:
        raise not_floating("x0", key, dtype.name)
    return EntryInfo(tuple(value.shape.as_list()), dtype, _np_dtype(dtype), value.device)


@functools.cache
def _np_dtype(dtype: tf.DType) -> np.dtype:
    return np.dtype(dtype.as_numpy_dtype)


def to_numpy(value: Any) -> np.ndarray:
    return np.asarray(tf.cast(value, tf.float64).numpy())


def from_np(x: Any, dtype: Any) -> tf.Tensor:
    """The original package's ``from_np``: a constant tensor of ``dtype``.

    Example:
        >>> import numpy as np, tensorflow as tf
        >>> from dict_minimize.tensorflow_api import from_np, to_np
        >>> to_np(from_np(np.ones(2), tf.float64))
        array([1., 1.])
    """
    return tf.constant(np.asarray(x), dtype=dtype)


def to_np(x: Any) -> np.ndarray:
    """The original package's ``to_np``: ``x`` as a NumPy array of its own dtype."""
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x)


def _to_device(host: np.ndarray, device: str) -> tf.Tensor:
    """The one host->device transfer of an evaluation: a host vector as one new tensor on
    ``device`` (``tf.constant`` copies, so the objective never aliases SciPy's ``x``)."""
    with tf.device(device):
        return tf.constant(host)


def _to_host(pieces: list[Any], on_cpu: bool) -> np.ndarray:
    """The one device->host transfer of an evaluation: tensors on one device joined into a new
    1-D float64 vector. On the CPU, NumPy joins zero-copy views of them in one pass; on another
    device they are joined there and cross in one copy."""
    if on_cpu:
        # np.asarray shares the tensor's memory (.numpy() copies); a 0-d tensor gives a scalar
        views = [
            np.asarray(p).reshape(-1) if p.shape.rank else p.numpy().reshape(1) for p in pieces
        ]
        return np.concatenate(views, dtype=np.float64, casting="unsafe")
    flat = tf.concat([tf.reshape(tf.cast(p, tf.float64), [-1]) for p in pieces], 0)
    return np.asarray(flat)


def _normalize_grad(key: Hashable, g: Any, shape: tuple[int, ...]) -> Any:
    """One gradient as a tensor or array, validated with a message naming the key."""
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
    return g


def make_codec(layout: Layout) -> Codec:
    """One transfer each way per evaluation, and a few eager ops per run of equal shapes.

    ``unflatten`` converts SciPy's vector on the host (to the entries' dtype when they share
    one), makes it one tensor on the entries' device, and cuts it with one ``split`` and one
    ``unstack`` per run of equal shapes (eager per-key ``reshape`` costs ~0.1 ms a key);
    ``flatten`` stacks each run of gradients (which also checks their shapes and dtypes), and
    joins the runs and the value in one transfer. Gradients that are not plain eager tensors
    (``IndexedSlices``, Variables, NumPy arrays) or that fail the checks go key by key.
    """
    keys, shapes, np_dtypes, devices = layout.keys, layout.shapes, layout.np_dtypes, layout.devices
    offsets, n = layout.offsets, layout.n
    device = devices[0] if all(d == devices[0] for d in devices) else None
    common = np_dtypes[0] if all(d == np_dtypes[0] for d in np_dtypes) else None
    runs = shape_runs(layout)
    run_sizes = [r.stop - r.start for r in runs]
    place = device if device is not None else devices[0]
    on_cpu = not place or tf.DeviceSpec.from_string(place).device_type in (None, "CPU")

    def unflatten(vec: np.ndarray, *, for_objective: bool, owned: bool = False) -> list[tf.Tensor]:
        if device is None:  # several devices: one transfer per key
            return [
                _to_device(vec[a:b].astype(dt).reshape(s), dev)
                for a, b, dt, s, dev in zip(
                    offsets[:-1], offsets[1:], np_dtypes, shapes, devices, strict=True
                )
            ]
        # tf.constant copies: float64 goes as it is, a common other dtype is converted first
        host = vec if common is None or common == np.float64 else vec.astype(common)
        flat = _to_device(host, device)
        with tf.device(device):
            blocks = [flat] if len(runs) == 1 else tf.split(flat, run_sizes)
            out = []
            for r, block in zip(runs, blocks, strict=True):
                if common is None:
                    block = tf.cast(block, r.dtype)
                if r.length > 1:
                    out.extend(tf.unstack(tf.reshape(block, r.block_shape)))
                elif len(r.shape) == 1:
                    out.append(block)
                else:
                    out.append(tf.reshape(block, r.shape))
        return out

    def slow_flatten(value: Any, grads: Sequence[Any]) -> tuple[Any, np.ndarray]:
        parts = []
        for key, g, shape in zip(keys, grads, shapes, strict=True):
            g = _normalize_grad(key, g, shape)
            if tf.as_dtype(g.dtype) == tf.bfloat16:  # widen on the device
                g = tf.cast(g, tf.float32)
            parts.append(np.asarray(g).reshape(-1))
        return value, np_concat64(parts, n)

    def flatten(value: Any, grads: Sequence[Any]) -> tuple[Any, np.ndarray]:
        if device is None or not all(issubclass(t, tf.Tensor) for t in {type(g) for g in grads}):
            return slow_flatten(value, grads)
        pieces = []
        try:
            with tf.device(device):
                for r in runs:
                    if r.length == 1:
                        g = grads[r.first]
                        if tuple(g.shape) != r.shape:
                            return slow_flatten(value, grads)
                    else:  # stack checks that the run's shapes and dtypes agree
                        g = tf.stack(list(grads[r.first : r.first + r.length]))
                        if tuple(g.shape)[1:] != r.shape:
                            return slow_flatten(value, grads)
                    if not g.dtype.is_floating:
                        return slow_flatten(value, grads)
                    pieces.append(g)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError):
            return slow_flatten(value, grads)
        with_value = (
            isinstance(value, tf.Tensor)
            and hasattr(value, "numpy")
            and value.shape.rank == 0
            and value.dtype.is_floating
        )
        if with_value:
            pieces.insert(0, value)
        host = _to_host(pieces, on_cpu)
        if with_value:
            return float(host[0]), host[1:]
        return value, host

    return Codec(unflatten=unflatten, flatten=flatten)


BACKEND = Backend(
    name="tensorflow",
    owns=owns,
    describe=describe,
    make_codec=make_codec,
    to_numpy=to_numpy,
    scalar_ad=tensorflow_ad.scalar_ad,
    vector_ad=tensorflow_ad.vector_ad,
    compile_pair=tensorflow_ad.compile_pair,
    sparse_products=tensorflow_sparse_ad.sparse_products,
)

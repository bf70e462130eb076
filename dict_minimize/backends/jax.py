"""JAX backend: ``jax.Array`` entries of any floating dtype, kept on their devices/shardings.

JAX returns gradient dicts with sorted keys, so gradients are always matched by key (the core
does that before the codec sees them).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import jax
import numpy as np

from dict_minimize._errors import grad_shape, grad_type, not_floating, type_name
from dict_minimize._layout import Layout
from dict_minimize._types import Backend, Codec, EntryInfo
from dict_minimize.backends._common import is_floating_np, np_concat64


def owns(value: Any) -> bool:
    return isinstance(value, jax.Array)


def describe(key: Hashable, value: Any) -> EntryInfo:
    if not isinstance(value, jax.Array):
        raise TypeError(f"x0[{key!r}] is a {type_name(value)}; expected a jax.Array")
    if isinstance(value, jax.core.Tracer):
        raise TypeError(
            f"x0[{key!r}] is a JAX tracer: call minimize outside jax.jit/grad/vmap transforms"
        )
    dtype = np.dtype(value.dtype)
    if not is_floating_np(dtype):
        raise not_floating("x0", key, dtype)
    return EntryInfo(tuple(value.shape), dtype, dtype, value.sharding)


def to_numpy(value: Any) -> np.ndarray:
    return np.asarray(value).astype(np.float64)


def make_codec(layout: Layout) -> Codec:
    keys, shapes, dtypes, shardings = layout.keys, layout.shapes, layout.dtypes, layout.devices
    offsets = layout.offsets
    n = layout.n
    shardings_list = list(shardings)

    def unflatten(vec: np.ndarray, *, for_objective: bool) -> list[jax.Array]:
        host = [
            vec[a:b].astype(dt).reshape(s)
            for a, b, dt, s in zip(offsets[:-1], offsets[1:], dtypes, shapes, strict=True)
        ]
        return list(jax.device_put(host, shardings_list))

    def flatten(value: Any, grads: Sequence[Any]) -> tuple[Any, np.ndarray]:
        parts = []
        for key, g, shape in zip(keys, grads, shapes, strict=True):
            if not isinstance(g, (jax.Array, np.ndarray, np.generic)):
                raise grad_type(key, g, "a jax.Array")
            if g.shape != shape:
                raise grad_shape(key, g.shape, shape)
            if not is_floating_np(np.dtype(g.dtype)):
                raise not_floating("gradient", key, g.dtype)
            parts.append(np.asarray(g).reshape(-1))
        return value, np_concat64(parts, n)

    return Codec(unflatten=unflatten, flatten=flatten)


BACKEND = Backend(
    name="jax", owns=owns, describe=describe, make_codec=make_codec, to_numpy=to_numpy
)

"""NumPy backend: entries are ``np.ndarray`` (or NumPy scalars) of any real floating dtype."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from dict_minimize._errors import grad_shape, grad_type, not_floating
from dict_minimize._layout import Layout
from dict_minimize._types import Backend, Codec, EntryInfo
from dict_minimize.backends._common import is_floating_np, np_concat64


def owns(value: Any) -> bool:
    return isinstance(value, (np.ndarray, np.generic))


def describe(key: Hashable, value: Any) -> EntryInfo:
    arr = np.asarray(value)
    if not is_floating_np(arr.dtype):
        raise not_floating("x0", key, arr.dtype)
    return EntryInfo(tuple(arr.shape), arr.dtype, arr.dtype, None)


def to_numpy(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


def make_codec(layout: Layout) -> Codec:
    dtypes = layout.dtypes
    shapes = layout.shapes
    keys = layout.keys
    offsets = layout.offsets
    n = layout.n
    common = dtypes[0] if all(d == dtypes[0] for d in dtypes) else None

    def unflatten(vec: np.ndarray, *, for_objective: bool) -> list[np.ndarray]:
        if common is not None:
            # one conversion (and copy: the objective may not alias SciPy's x), views per key
            return layout.split_numpy(vec.astype(common, copy=True))
        return [
            vec[a:b].astype(dt).reshape(s)
            for a, b, dt, s in zip(offsets[:-1], offsets[1:], dtypes, shapes, strict=True)
        ]

    def flatten(value: Any, grads: Sequence[Any]) -> tuple[Any, np.ndarray]:
        parts = []
        for key, g, shape in zip(keys, grads, shapes, strict=True):
            if not isinstance(g, (np.ndarray, np.generic)):
                raise grad_type(key, g, "a NumPy array")
            if g.shape != shape:
                raise grad_shape(key, g.shape, shape)
            if not is_floating_np(g.dtype):
                raise not_floating("gradient", key, g.dtype)
            parts.append(g.reshape(-1))
        return value, np_concat64(parts, n)

    return Codec(unflatten=unflatten, flatten=flatten)


BACKEND = Backend(
    name="numpy", owns=owns, describe=describe, make_codec=make_codec, to_numpy=to_numpy
)

"""NumPy backend: entries are ``np.ndarray`` (or NumPy scalars) of any real floating dtype."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from dict_minimize._errors import grad_shape, grad_type, not_floating
from dict_minimize._structure.layout import Layout
from dict_minimize._structure.types import Backend, Codec, EntryInfo
from dict_minimize.backends._batch import lazy_batch
from dict_minimize.backends._common import FLOAT_SCALARS, is_floating_np, np_concat64
from dict_minimize.backends._numpy_pair import Compiled, supported
from dict_minimize.backends._runs import shape_runs


def owns(value: Any) -> bool:
    return isinstance(value, (np.ndarray, np.generic))


def describe(key: Hashable, value: Any) -> EntryInfo:
    arr = np.asarray(value)
    if not is_floating_np(arr.dtype):
        raise not_floating("x0", key, arr.dtype)
    return EntryInfo(tuple(arr.shape), arr.dtype, arr.dtype, None)


def to_numpy(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


def from_np(x: Any, dtype: Any) -> np.ndarray:
    """The original package's ``from_np``: a NumPy array of ``dtype`` (any NumPy dtype spec).

    Example:
        >>> import numpy as np
        >>> from dict_minimize.numpy_api import from_np, to_np
        >>> to_np(from_np([1.0, 2.0], np.float16))
        array([1., 2.], dtype=float16)
    """
    return np.asarray(x, dtype=dtype)


def to_np(x: Any) -> np.ndarray:
    """The original package's ``to_np``: ``x`` as a NumPy array of its own dtype."""
    return np.asarray(x)


def _to_device(vec: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The one "host->device" step of an evaluation: SciPy's vector converted to ``dtype``.

    Always a copy: the objective never aliases SciPy's ``x``. (For NumPy there is no device; the
    function exists so that every backend moves data through one identifiable call each way.)
    """
    return vec.astype(dtype, copy=True)


def _to_host(parts: list[np.ndarray], n: int) -> np.ndarray:
    """The one "device->host" step: 1-D pieces joined into a new float64 vector of size ``n``."""
    return np_concat64(parts, n)


def _as_numbers(g: Any) -> Any:
    """A gradient entry of plain numbers (list, tuple, int or float, integer array) as float64;
    anything else unchanged, for the checks to name."""
    if isinstance(g, (list, tuple, int, float)) and not isinstance(g, bool):
        try:
            arr = np.asarray(g, dtype=np.float64)
        except (TypeError, ValueError):
            return g
        return arr
    if isinstance(g, (np.ndarray, np.generic)) and g.dtype.kind in "iu":
        return g.astype(np.float64)
    return g


def _check_grads(keys: Sequence[Any], grads: Sequence[Any], shapes: Sequence[tuple]) -> None:
    """Per-key validation with messages naming the key (the slow path, for odd gradients)."""
    for key, g, shape in zip(keys, grads, shapes, strict=True):
        if not isinstance(g, (np.ndarray, np.generic)):
            raise grad_type(key, g, "a NumPy array")
        if g.shape != shape and not (g.shape == () and shape == (1,)):  # SciPy's atleast_1d
            raise grad_shape(key, g.shape, shape)
        if not is_floating_np(g.dtype):
            raise not_floating("gradient", key, g.dtype)


def make_codec(layout: Layout) -> Codec:
    """Views per run of equal shapes over one converted copy; one concatenation back.

    ``unflatten`` converts SciPy's vector once (a copy in the entries' dtype) and hands out views
    of it: a run of entries of one shape is one ``reshape`` of its block, iterated in C.
    ``flatten`` checks every gradient with a few list-wide comparisons and joins them with one
    ``np.concatenate``; only gradients that fail those checks go through the per-key messages.
    """
    keys, shapes, dtypes, n = layout.keys, list(layout.shapes), layout.dtypes, layout.n
    common = dtypes[0] if all(d == dtypes[0] for d in dtypes) else None
    transfer = common if common is not None else np.dtype(np.float64)
    runs = shape_runs(layout)
    not_1d = [i for i, s in enumerate(shapes) if len(s) != 1]
    all_scalars = all(s == () for s in shapes)

    def unflatten(vec: np.ndarray, *, for_objective: bool, owned: bool = False) -> list[np.ndarray]:
        # always a copy, even of an owned vec: NumPy arrays can be written by the objective,
        # and the driver may keep vec as the best point
        split = None if compiled is None else compiled.split
        if split is not None:  # the same views, as generated code (a layout solved again)
            return split(vec)
        host = _to_device(vec, transfer)
        out: list[np.ndarray] = []
        for r in runs:
            if not r.shape and common is not None:  # 0-d entries: one index each, ``[j, ...]``
                out.extend(host[j, ...] for j in range(r.start, r.stop))  # (a 0-d view)
                continue
            block = host[r.start : r.stop]
            if common is None:
                block = block.astype(r.dtype, copy=False)
            if r.length == 1:
                out.append(block.reshape(r.shape))
            elif r.shape:  # iterating the (count, *shape) block gives one view per entry
                out.extend(block.reshape(r.block_shape))
            else:  # 0-d entries: iteration would give NumPy scalars, not 0-d arrays
                out.extend(block[j : j + 1].reshape(()) for j in range(r.length))
        return out

    def flatten(value: Any, grads: Sequence[Any]) -> tuple[Any, np.ndarray]:
        parts = list(grads)
        types = {type(g) for g in parts}
        if all_scalars and types <= FLOAT_SCALARS:  # 0-d entries given as NumPy floats
            return value, np.array(parts, dtype=np.float64)
        fast = (
            types == {np.ndarray}
            and [g.shape for g in parts] == shapes
            and all(is_floating_np(d) for d in {g.dtype for g in parts})
        )
        if not fast:
            # numbers as SciPy takes them (a list, a Python float, integers): as float64
            parts = [_as_numbers(g) for g in parts]
            _check_grads(keys, parts, shapes)
            parts = [np.asarray(g).reshape(-1) for g in parts]
        else:
            for i in not_1d:
                parts[i] = parts[i].reshape(-1)
        return value, _to_host(parts, n)

    compiled = Compiled(layout, flatten) if supported(layout) else None
    bind_pair = None if compiled is None else compiled.bind_pair
    return Codec(unflatten=unflatten, flatten=flatten, bind_pair=bind_pair)


BACKEND = Backend(
    name="numpy",
    owns=owns,
    describe=describe,
    make_codec=make_codec,
    to_numpy=to_numpy,
    batch=lazy_batch("numpy"),
)

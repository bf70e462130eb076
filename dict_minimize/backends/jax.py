"""JAX backend: ``jax.Array`` entries of any floating dtype, kept on their devices/shardings.

JAX returns gradient dicts with sorted keys, so gradients are always matched by key (the core
does that before the codec sees them).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Hashable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from dict_minimize._errors import at, grad_shape, grad_type, not_floating, type_name
from dict_minimize._structure.layout import Layout
from dict_minimize._structure.types import Backend, Codec, EntryInfo
from dict_minimize.backends._common import is_floating_np, np_concat64
from dict_minimize.backends._runs import shape_runs
from dict_minimize.backends.jax_ad import compile_pair, scalar_ad, vector_ad
from dict_minimize.backends.jax_sparse_ad import sparse_products


def owns(value: Any) -> bool:
    return isinstance(value, jax.Array)


def describe(key: Hashable, value: Any) -> EntryInfo:
    if not isinstance(value, jax.Array):
        raise TypeError(f"{at('x0', key)} is a {type_name(value)}; expected a jax.Array")
    if isinstance(value, jax.core.Tracer):
        raise TypeError(
            f"{at('x0', key)} is a JAX tracer: call minimize outside jax.jit/grad/vmap transforms"
        )
    dtype = np.dtype(value.dtype)
    if not is_floating_np(dtype):
        raise not_floating("x0", key, dtype)
    return EntryInfo(tuple(value.shape), dtype, dtype, value.sharding)


def to_numpy(value: Any) -> np.ndarray:
    return np.asarray(value).astype(np.float64)


def from_np(x: Any, dtype: Any) -> jax.Array:
    """The original package's ``from_np``: a JAX array of ``dtype`` (float64 needs x64).

    Example:
        >>> import numpy as np
        >>> from dict_minimize.jax_api import from_np, to_np
        >>> x = from_np(np.ones(2), np.float32)
        >>> x.dtype, to_np(x)
        (dtype('float32'), array([1., 1.], dtype=float32))
    """
    return jnp.asarray(x, dtype=dtype)


def to_np(x: Any) -> np.ndarray:
    """The original package's ``to_np``: ``x`` as a NumPy array of its own dtype."""
    return np.asarray(x)


#: entries per compiled split or concatenation call. A program with k outputs takes roughly
#: k x 20 ms to compile on a CPU, so layouts of thousands of keys are cut into chunks whose small
#: programs compile once (JAX caches them by shape and dtype, for every later layout too).
CHUNK = 64


@functools.partial(jax.jit, static_argnames=("count", "shape", "dtype"))
def _split_block(
    flat: jax.Array, start: jax.Array, *, count: int, shape: tuple[int, ...], dtype: np.dtype
) -> tuple[jax.Array, ...]:
    """``count`` entries of ``shape`` and ``dtype`` from ``flat[start:]``, in one program."""
    block = lax.dynamic_slice_in_dim(flat, start, count * math.prod(shape))
    block = block.astype(dtype).reshape((count, *shape))
    return tuple(block[i] for i in range(count))


@jax.jit
def _concat(*parts: jax.Array) -> jax.Array:
    """The arrays raveled and joined into one 1-D array (promoted to their common dtype)."""
    return jnp.concatenate([jnp.ravel(p) for p in parts])


def _to_device(host: np.ndarray, sharding: Any) -> jax.Array:
    """The one host->device transfer of an evaluation (``host`` is a fresh array: JAX may alias
    host memory on the CPU, and SciPy's ``x`` must not be aliased)."""
    return jax.device_put(host, sharding)


def _to_host(pieces: list[jax.Array], on_cpu: bool) -> np.ndarray:
    """The one device->host transfer of an evaluation: arrays on one device joined into a new
    1-D float64 vector. On the CPU, NumPy joins zero-copy views of them in one pass; on another
    device they are joined there and cross in one copy."""
    if on_cpu:
        views = [np.reshape(v, -1) for v in jax.device_get(pieces)]
        return np.concatenate(views, dtype=np.float64, casting="unsafe")
    flat = pieces[0] if len(pieces) == 1 else _concat(*pieces)
    return np.array(jax.device_get(flat), dtype=np.float64, copy=True).reshape(-1)


def _check_grads(keys: Sequence[Any], grads: Sequence[Any], shapes: Sequence[tuple]) -> None:
    """Per-key validation with messages naming the key (the slow path, for odd gradients)."""
    for key, g, shape in zip(keys, grads, shapes, strict=True):
        if not isinstance(g, (jax.Array, np.ndarray, np.generic)):
            raise grad_type(key, g, "a jax.Array")
        if g.shape != shape:
            raise grad_shape(key, g.shape, shape)
        if not is_floating_np(np.dtype(g.dtype)):
            raise not_floating("gradient", key, g.dtype)


def _single_device(shardings: Sequence[Any]) -> Any:
    """The sharding shared by every entry when it places arrays on one device, else None."""
    first = shardings[0]
    if all(s == first for s in shardings) and len(first.device_set) == 1:
        return first
    return None


def make_codec(layout: Layout) -> Codec:
    """One transfer each way per evaluation, and one compiled call per chunk of equal shapes.

    With every entry on one device: ``unflatten`` converts SciPy's vector on the host (to the
    entries' dtype when they share one), moves it in one ``device_put`` and cuts it into the
    entries with one small compiled program per chunk of :data:`CHUNK` entries of equal shape;
    ``flatten`` checks the gradients with list-wide comparisons, joins them (and the value) on
    the device with one compiled concatenation per chunk, and moves the result in one
    ``device_get``. Entries sharded over several devices, or on different devices, are moved one
    key at a time.
    """
    keys, shapes, dtypes, shardings = layout.keys, layout.shapes, layout.dtypes, layout.devices
    offsets = layout.offsets
    n = layout.n
    shardings_list = list(shardings)
    shapes_list = list(shapes)
    sharding = _single_device(shardings_list)
    common = dtypes[0] if all(d == dtypes[0] for d in dtypes) else None
    if common is not None:
        transfer = common
    else:  # mixed dtypes cross as float64 (float32 without x64) and are cast on the device
        transfer = np.dtype(np.float64 if np.dtype(np.float64) in dtypes else np.float32)
    runs = shape_runs(layout, max_length=CHUNK)
    starts = []
    if sharding is not None:  # run offsets live on the device, so no evaluation sends them
        starts = [jax.device_put(np.int32(r.start), sharding) for r in runs]
    cuts = [*range(0, len(keys), CHUNK), len(keys)]
    on_cpu = sharding is not None and next(iter(sharding.device_set)).platform == "cpu"

    def unflatten(vec: np.ndarray, *, for_objective: bool, owned: bool = False) -> list[jax.Array]:
        if sharding is None:  # several devices: one transfer per key
            host = [
                vec[a:b].astype(dt).reshape(s)
                for a, b, dt, s in zip(offsets[:-1], offsets[1:], dtypes, shapes, strict=True)
            ]
            return list(jax.device_put(host, shardings_list))
        # JAX may alias aligned host memory on the CPU: copy unless vec is ours (owned), as JAX
        # arrays are immutable and nobody writes an owned vec
        flat = _to_device(vec.astype(transfer, copy=not owned), sharding)
        out: list[jax.Array] = []
        for r, start in zip(runs, starts, strict=True):
            if r.length == 1 and r.stop - r.start == n and transfer == r.dtype:
                out.append(flat.reshape(r.shape))
            else:
                out.extend(_split_block(flat, start, count=r.length, shape=r.shape, dtype=r.dtype))
        return out

    def host_flatten(grads: Sequence[Any]) -> np.ndarray:
        return np_concat64([np.asarray(g).reshape(-1) for g in grads], n)

    def flatten(value: Any, grads: Sequence[Any]) -> tuple[Any, np.ndarray]:
        fast = (
            all(issubclass(t, jax.Array) for t in {type(g) for g in grads})
            and [g.shape for g in grads] == shapes_list
            and all(is_floating_np(np.dtype(d)) for d in {g.dtype for g in grads})
        )
        if not fast:
            _check_grads(keys, grads, shapes)
            if sharding is None or not all(isinstance(g, jax.Array) for g in grads):
                return value, host_flatten(grads)
        elif sharding is None:
            return value, host_flatten(grads)
        with_value = (
            isinstance(value, jax.Array)
            and not isinstance(value, jax.core.Tracer)
            and value.shape == ()
            and is_floating_np(np.dtype(value.dtype))
        )
        try:
            chunks = [
                _concat(*grads[a:b]) if b - a > 1 else grads[a] for a, b in itertools.pairwise(cuts)
            ]
            flat = chunks[0] if len(chunks) == 1 else _concat(*chunks)
            host = _to_host([value, flat] if with_value else [flat], on_cpu)
        except ValueError:  # gradients on other devices than x0's: gather on the host
            return value, host_flatten(grads)
        if with_value:
            return float(host[0]), host[1:]
        return value, host

    return Codec(unflatten=unflatten, flatten=flatten)


BACKEND = Backend(
    name="jax",
    owns=owns,
    describe=describe,
    make_codec=make_codec,
    to_numpy=to_numpy,
    scalar_ad=scalar_ad,
    vector_ad=vector_ad,
    compile_pair=compile_pair,
    sparse_products=sparse_products,
)

"""How the JAX backend traces a function of the dict: ONE flat vector in, split inside the
compiled function, and the compile cache.

Inside the compiled function SciPy's flat vector is split at static offsets, each piece is
reshaped and cast to its entry's dtype, the mapping is rebuilt with
:meth:`~dict_minimize._structure.layout.Layout.build` and ``fun`` is called on it; the gradients
are cast to one dtype and concatenated, with the value appended, still inside the compiled
function. Extra arguments are split into dynamic (array) and static leaves
(:func:`_split_args`). The compiled functions are cached per ``fun`` (weakly) and per layout
and ``args`` signature, :data:`CACHE_PER_FUN` at most per ``fun``. The objects SciPy's driver
calls are built on these in :mod:`dict_minimize.backends.jax_ad`.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dict_minimize._errors import grad_shape, grad_type, not_floating, pair_error
from dict_minimize._structure.layout import Layout, values_by_key
from dict_minimize.backends._ad import (
    cached_per_fun,
    dtype_error,
    scalar_kind_error,
    scalar_shape_error,
    vector_kind_error,
)
from dict_minimize.backends._common import is_floating_np

#: how many layout/argument signatures are kept compiled for one ``fun``
CACHE_PER_FUN = 8

#: errors that mean ``fun`` cannot be traced by ``jax.jit`` (TracerBoolConversionError is a
#: ConcretizationTypeError)
_TRACE_ERRORS = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerArrayConversionError,
    jax.errors.TracerIntegerConversionError,
)
_JIT_HINT = "dict_minimize: {what} was compiled with jax.jit; pass jit=False to run it eagerly"
_WHERE = "with jac='autodiff'"
_PAIR_WHERE = "with jac=True"
_TENSOR = "JAX array"
#: attribute marking a function of this package as traceable by jax.jit
# fun -> OrderedDict(signature -> compiled functions); weak on fun, LRU per fun
_CACHE: weakref.WeakKeyDictionary[Any, OrderedDict[Hashable, Any]] = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


# --- checking what the user's function returns ----------------------------------------------


def _check_scalar(value: Any, where: str) -> jax.Array:
    """The objective's value, or a TypeError/ValueError saying what is wrong with it."""
    if not isinstance(value, jax.Array):
        raise scalar_kind_error(value, _TENSOR, where)
    if value.ndim != 0:
        raise scalar_shape_error(value.shape, where)
    if not is_floating_np(np.dtype(value.dtype)):
        raise dtype_error(value.dtype, where)
    return value


def _check_vector(value: Any, where: str) -> jax.Array:
    if not isinstance(value, jax.Array):
        raise vector_kind_error(value, _TENSOR, where)
    if not is_floating_np(np.dtype(value.dtype)):
        raise dtype_error(value.dtype, where, what="the constraint function", kind="array")
    return value


def _add_jit_hint(exc: BaseException, what: str) -> None:
    if hasattr(exc, "add_note"):  # Python >= 3.11
        exc.add_note(_JIT_HINT.format(what=what))


# --- where the flat vector lives --------------------------------------------------------------


class _Placement(NamedTuple):
    """Where the flat vector goes and how pieces are kept on their entries' devices."""

    flat: Any  # sharding of the flat vector (jit in_shardings / device_put), None: default
    constrain: tuple[Any, ...] | None  # inside jit: a sharding per entry, None: none needed
    per_part: tuple[Any, ...] | None  # eager: device_put each piece here, None: not needed


def single_device_sharding(device: Any, memory_kind: str | None = None) -> Any:
    """The sharding that places a whole array on ``device``.

    ``jax.sharding.make_single_device_sharding`` where JAX has it (JAX 0.12
    deprecates the class ``jax.sharding.SingleDeviceSharding``), else that class.

    Example:
        >>> s = single_device_sharding(jax.devices("cpu")[0])
        >>> s == jnp.zeros(2, device=jax.devices("cpu")[0]).sharding, len(s.device_set)
        (True, 1)
    """
    make = getattr(jax.sharding, "make_single_device_sharding", None)
    if make is None:  # older JAX: the class, not yet deprecated there
        make = jax.sharding.SingleDeviceSharding
    return make(device, memory_kind=memory_kind)


def _placement(layout: Layout) -> _Placement:
    shardings = layout.devices
    first = shardings[0]
    same = all(s == first for s in shardings[1:]) if first is not None else False
    if same and len(first.device_set) == 1:
        # one device: the flat vector goes there whole, whatever sharding type the entries have
        first = single_device_sharding(next(iter(first.device_set)), first.memory_kind)
        return _Placement(first, None, None)
    device_sets = {frozenset(s.device_set) for s in shardings if s is not None}
    if (
        len(device_sets) == 1
        and isinstance(first, jax.sharding.NamedSharding)
        and all(isinstance(s, jax.sharding.NamedSharding) for s in shardings)
    ):
        replicated = jax.sharding.NamedSharding(first.mesh, jax.sharding.PartitionSpec())
        return _Placement(replicated, tuple(shardings), tuple(shardings))
    return _Placement(None, None, tuple(shardings))


def _input_dtype(layout: Layout) -> np.dtype:
    """The dtype SciPy's vector is converted to on the host: the layout's common dtype, at least
    float32, as JAX can hold it (float32 when x64 is off)."""
    common = functools.reduce(jnp.promote_types, set(layout.dtypes), np.dtype(np.float32))
    return np.dtype(jax.dtypes.canonicalize_dtype(common))


# --- extra arguments ----------------------------------------------------------------------------


def _is_dynamic(leaf: Any) -> bool:
    """Array data and floats are inputs of the compiled function; the rest is static."""
    if isinstance(leaf, (jax.Array, float, complex)):
        return True
    if isinstance(leaf, np.ndarray):
        return leaf.dtype.kind in "biufcV"
    return isinstance(leaf, np.generic) and leaf.dtype.kind in "fcV"


class _ArgSpec(NamedTuple):
    """``args`` split into dynamic array leaves and a hashable description of the rest."""

    treedef: Any
    dynamic: tuple[bool, ...]
    statics: tuple[tuple[type, Any], ...]  # (type, value) of each static leaf, in order

    def rebuild(self, dyn: Sequence[Any]) -> tuple:
        dyn_it, stat_it = iter(dyn), iter(v for _, v in self.statics)
        leaves = [next(dyn_it) if d else next(stat_it) for d in self.dynamic]
        return tuple(jax.tree_util.tree_unflatten(self.treedef, leaves))

    def key(self) -> Hashable:
        """A cache key: static leaves by value, unhashable ones by identity (the cached entry
        holds this spec, so such an object stays alive, and its id unique, while it is cached)."""
        try:
            hash(self)
            return self
        except TypeError:
            statics = tuple(
                (t, v) if _hashable(v) else (t, "<object at>", id(v)) for t, v in self.statics
            )
            key = (self.treedef, self.dynamic, statics)
            return key if _hashable(key) else ("<unhashable structure>", id(self))


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _split_args(args: Sequence[Any]) -> tuple[_ArgSpec, list[Any]]:
    leaves, treedef = jax.tree_util.tree_flatten(tuple(args))
    dynamic = tuple(_is_dynamic(v) for v in leaves)
    statics = tuple((type(v), v) for v, d in zip(leaves, dynamic, strict=True) if not d)
    dyn = [v for v, d in zip(leaves, dynamic, strict=True) if d]
    return _ArgSpec(treedef, dynamic, statics), dyn


def _place_args(dyn: list[Any], placement: _Placement) -> tuple[Any, ...]:
    """Host leaves moved to the device once; the user's JAX arrays are left where they are."""
    target = placement.flat if placement.constrain is None else None
    out = []
    for v in dyn:
        if isinstance(v, jax.Array):
            out.append(v)
        elif target is not None:
            out.append(jax.device_put(v, target))
        else:
            out.append(jnp.asarray(v))
    return tuple(out)


# --- the flat function -----------------------------------------------------------------------


def _make_pieces(layout: Layout, placement: _Placement, *, traced: bool) -> Callable:
    """``x_flat -> [entry pieces]``: one split, reshape and cast per entry, on their devices."""
    sizes = list(layout.sizes)
    shapes, dtypes = layout.shapes, layout.dtypes
    keep = placement.constrain if traced else placement.per_part

    def pieces(x: jax.Array) -> list[jax.Array]:
        parts = jax.lax.split(x, sizes) if len(sizes) > 1 else [x]
        out = [p.reshape(s).astype(dt) for p, s, dt in zip(parts, shapes, dtypes, strict=True)]
        if keep is not None:
            move = jax.lax.with_sharding_constraint if traced else jax.device_put
            out = [move(p, sh) for p, sh in zip(out, keep, strict=True)]
        return out

    return pieces


def _concat(parts: Sequence[jax.Array], dtype: Any) -> jax.Array:
    flat = [p.reshape(-1).astype(dtype) for p in parts]
    return flat[0] if len(flat) == 1 else jnp.concatenate(flat)


def _host64(arr: Any) -> np.ndarray:
    """A device array as a writable float64 NumPy array (one transfer, one conversion)."""
    out = np.asarray(arr, dtype=np.float64)
    return out if out.flags.writeable else out.copy()


class _Scalar(NamedTuple):
    """The pure functions of ``(x_flat, dyn_args)`` for a scalar objective."""

    value_and_grad: Callable  # -> (value, grad in x's dtype)
    packed: Callable  # -> grad with the value appended, one array
    hvp: Callable  # (x, p, dyn) -> H p
    hess: Callable  # -> H


def _scalar_functions(
    call: Callable, layout: Layout, placement: _Placement, spec: _ArgSpec | None, *, traced: bool
) -> _Scalar:
    """``call(mapping, *args)`` is the user's function (counted); ``spec`` rebuilds ``args`` from
    the dynamic leaves (None: the dynamic argument is ``args`` itself, eager)."""
    pieces = _make_pieces(layout, placement, traced=traced)
    build = layout.build

    def rebuild(dyn: Any) -> tuple:
        return spec.rebuild(dyn) if spec is not None else tuple(dyn)

    def of_pieces(parts: list[jax.Array], dyn: Any) -> jax.Array:
        return _check_scalar(call(build(parts), *rebuild(dyn)), _WHERE)

    def value_and_grad(x: jax.Array, dyn: Any) -> tuple[jax.Array, jax.Array]:
        v, grads = jax.value_and_grad(of_pieces)(pieces(x), dyn)
        return v, _concat(grads, x.dtype)

    def packed(x: jax.Array, dyn: Any) -> jax.Array:
        v, g = value_and_grad(x, dyn)
        dtype = jnp.promote_types(v.dtype, g.dtype)
        return jnp.concatenate([g.astype(dtype), v.reshape(1).astype(dtype)])

    def grad(x: jax.Array, dyn: Any) -> jax.Array:
        return value_and_grad(x, dyn)[1]

    def hvp(x: jax.Array, p: jax.Array, dyn: Any) -> jax.Array:
        return jax.jvp(lambda y: grad(y, dyn), (x,), (p,))[1]

    def hess(x: jax.Array, dyn: Any) -> jax.Array:
        return jax.jacfwd(grad)(x, dyn)

    return _Scalar(value_and_grad, packed, hvp, hess)


def _pair_packed(call: Callable, layout: Layout, placement: _Placement, spec: _ArgSpec) -> Callable:
    """``(x_flat, dyn) -> grad with the value appended`` for ``fun -> (value, grad_dict)``,
    traced: what ``fun`` returns is checked once per trace (shapes are static)."""
    pieces = _make_pieces(layout, placement, traced=True)
    keys, shapes = layout.keys, layout.shapes

    def packed(x: jax.Array, dyn: Any) -> jax.Array:
        out = call(layout.build(pieces(x)), *spec.rebuild(dyn))
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise pair_error(out)
        value = _check_scalar(out[0], _PAIR_WHERE)
        grads = values_by_key(out[1], layout)
        for key, g, shape in zip(keys, grads, shapes, strict=True):
            if not isinstance(g, jax.Array):
                raise grad_type(key, g, "a JAX array")
            if g.shape != shape:
                raise grad_shape(key, g.shape, shape)
            if not is_floating_np(np.dtype(g.dtype)):
                raise not_floating("gradient", key, g.dtype)
        g = _concat(grads, x.dtype)
        dtype = jnp.promote_types(value.dtype, g.dtype)
        return jnp.concatenate([g.astype(dtype), value.reshape(1).astype(dtype)])

    return packed


def _jacobian_of(y: jax.Array, lin: Callable, x: jax.Array) -> jax.Array:
    """The ``(m, n)`` Jacobian from a linearisation ``y, lin = jax.linearize(c, x)``: reverse
    mode (m transposed products) when the output is smaller than the input, else forward mode."""
    m, n = y.shape[0], x.shape[0]
    if m < n:
        transposed = jax.linear_transpose(lin, x)
        return jax.vmap(lambda ct: transposed(ct)[0])(jnp.eye(m, dtype=y.dtype))
    return jax.vmap(lin, out_axes=1)(jnp.eye(n, dtype=x.dtype))


class _Vector(NamedTuple):
    value: Callable  # (x, dyn) -> (m,)
    jacobian: Callable  # (x, dyn) -> (m, n)
    vhp: Callable  # (x, v, p, dyn) -> (n,)


def _vector_functions(
    call: Callable, layout: Layout, placement: _Placement, spec: _ArgSpec | None, *, traced: bool
) -> _Vector:
    pieces = _make_pieces(layout, placement, traced=traced)
    build = layout.build

    def rebuild(dyn: Any) -> tuple:
        return spec.rebuild(dyn) if spec is not None else tuple(dyn)

    def value(x: jax.Array, dyn: Any) -> jax.Array:
        return _check_vector(call(build(pieces(x)), *rebuild(dyn)), _WHERE).reshape(-1)

    def jacobian(x: jax.Array, dyn: Any) -> jax.Array:
        y, lin = jax.linearize(lambda z: value(z, dyn), x)
        return _jacobian_of(y, lin, x)

    def vhp(x: jax.Array, v: jax.Array, p: jax.Array, dyn: Any) -> jax.Array:
        def weighted(z: jax.Array) -> jax.Array:
            c = value(z, dyn)
            dtype = jnp.promote_types(c.dtype, v.dtype)
            return jnp.dot(v.astype(dtype), c.astype(dtype))

        return jax.jvp(jax.grad(weighted), (x,), (p,))[1]

    return _Vector(value, jacobian, vhp)


# --- compiling and caching ---------------------------------------------------------------------


class _Counted:
    """The user's function, counting its calls (held weakly in cached entries: ``fun`` is the
    cache's weak key). No reference cycles, so everything is freed as soon as it is unused."""

    def __init__(self, fun: Callable, *, weak: bool) -> None:
        self.calls = 0
        self._ref: Callable[[], Any] = weakref.ref(fun) if weak else (lambda: fun)

    def __call__(self, mapping: Mapping, *args: Any) -> Any:
        self.calls += 1
        fun = self._ref()
        assert fun is not None  # whoever uses a cached entry holds fun
        return fun(mapping, *args)


class _Compiled:
    """Jitted functions for one (fun, layout, args structure); ``counter.calls`` counts traces."""

    def __init__(
        self,
        kind: str,
        fun: Callable,
        layout: Layout,
        placement: _Placement,
        spec: _ArgSpec,
        *,
        weak: bool,
    ) -> None:
        self.counter = call = _Counted(fun, weak=weak)
        flat = placement.flat

        def jit(f: Callable, vectors: int) -> Any:
            if flat is None:
                return jax.jit(f)
            return jax.jit(f, in_shardings=(flat,) * vectors + (None,))

        if kind == "pair":
            self.packed = jit(_pair_packed(call, layout, placement, spec), 1)
        elif kind == "scalar":
            s = _scalar_functions(call, layout, placement, spec, traced=True)
            self.packed = jit(s.packed, 1)
            self.hvp = jit(s.hvp, 2)
            self.hess = jit(s.hess, 1)
        else:
            v = _vector_functions(call, layout, placement, spec, traced=True)
            self.value = jit(v.value, 1)
            self.jacobian = jit(v.jacobian, 1)
            self.vhp = jit(v.vhp, 3)


def _compiled(
    kind: str, fun: Callable, layout: Layout, placement: _Placement, spec: _ArgSpec
) -> _Compiled:
    """The cached compiled functions for this signature, made on a miss."""
    signature: Hashable = (kind, layout, layout.factory, spec.key())
    return cached_per_fun(
        _CACHE,
        _CACHE_LOCK,
        fun,
        signature,
        lambda weak: _Compiled(kind, fun, layout, placement, spec, weak=weak),
        CACHE_PER_FUN,
    )


def cache_size() -> int:
    """How many functions have compiled entries in the cache (for tests and diagnostics)."""
    with _CACHE_LOCK:
        return len(_CACHE)


def clear_cache() -> None:
    """Drop every cached compiled function."""
    with _CACHE_LOCK:
        _CACHE.clear()

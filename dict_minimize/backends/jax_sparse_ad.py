"""JAX's compressed products for sparse derivatives (``jac_sparsity``/``hess_sparsity``).

``jax.vmap`` of ``jax.jvp`` (forward products ``J @ S``), of the pullback of ``jax.vjp``
(reverse products ``J.T @ W``) and of ``jax.jvp`` of ``jax.grad`` (Hessian products
``H(w · c) @ S``, forward-over-reverse): one batched call per evaluation, compiled with
``jax.jit`` unless ``jit=False``. The function of the flat vector is the one the other JAX
derivatives use (:mod:`dict_minimize.backends.jax_trace`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dict_minimize._structure.layout import Layout
from dict_minimize._structure.types import Codec
from dict_minimize.backends._ad import cached_per_fun
from dict_minimize.backends.jax_ad import _Base, _resolve_jit
from dict_minimize.backends.jax_trace import (
    _CACHE,
    _CACHE_LOCK,
    _TRACE_ERRORS,
    CACHE_PER_FUN,
    _add_jit_hint,
    _ArgSpec,
    _Counted,
    _host64,
    _place_args,
    _split_args,
    _vector_functions,
)


def _sparse_functions(
    call: Callable, layout: Layout, placement: Any, spec: Any, *, traced: bool
) -> dict[str, Callable]:
    """The pure functions of ``(x_flat, ..., dyn_args)``: value and the batched products."""
    value = _vector_functions(call, layout, placement, spec, traced=traced).value

    def plain(x: jax.Array, dyn: Any) -> jax.Array:
        return value(x, dyn)

    def jvps(x: jax.Array, seeds: jax.Array, dyn: Any) -> jax.Array:
        def one(s: jax.Array) -> jax.Array:
            return jax.jvp(lambda z: value(z, dyn), (x,), (s,))[1]

        return jax.vmap(one, in_axes=1, out_axes=1)(seeds)

    def vjps(x: jax.Array, seeds: jax.Array, dyn: Any) -> jax.Array:
        y, pull = jax.vjp(lambda z: value(z, dyn), x)
        return jax.vmap(lambda w: pull(w.astype(y.dtype))[0], in_axes=1, out_axes=1)(seeds)

    def hvps(x: jax.Array, w: jax.Array, seeds: jax.Array, dyn: Any) -> jax.Array:
        def weighted(z: jax.Array) -> jax.Array:
            c = value(z, dyn)
            dtype = jnp.promote_types(c.dtype, w.dtype)
            return jnp.dot(w.astype(dtype), c.astype(dtype))

        grad = jax.grad(weighted)

        def one(s: jax.Array) -> jax.Array:
            return jax.jvp(grad, (x,), (s,))[1]

        return jax.vmap(one, in_axes=1, out_axes=1)(seeds)

    return {"value": plain, "jvps": jvps, "vjps": vjps, "hvps": hvps}


class _Compiled:
    """The jitted products for one (fun, layout, args structure); ``counter.calls`` counts
    traces. Cached per ``fun`` with the other compiled JAX functions, so repeated solves with
    the same ``fun`` do not trace again (a new number of colours traces once more)."""

    def __init__(
        self, fun: Callable, layout: Layout, placement: Any, spec: _ArgSpec, *, weak: bool
    ) -> None:
        self.counter = _Counted(fun, weak=weak)
        fns = _sparse_functions(self.counter, layout, placement, spec, traced=True)
        self.fns: dict[str, Callable[..., Any]] = {n: jax.jit(f) for n, f in fns.items()}


class JaxSparseProducts(_Base):
    """:class:`~dict_minimize._structure.types.SparseProducts` for JAX: ``jax.vmap`` of
    ``jax.jvp`` (forward), of ``jax.vjp``'s pullback (reverse) and of ``jax.jvp`` of
    ``jax.grad`` (Hessian products), compiled with ``jax.jit`` unless ``jit=False``."""

    _what = "the function"
    _kind = "vector"

    def __init__(self, layout: Layout, fun: Callable, args: Sequence[Any], *, jit: bool) -> None:
        super().__init__(layout, fun, args, False)  # no dense compiled set: the products'
        self.jit = jit
        self._sparse: _Compiled | None = None
        self._sparse_base = 0
        self._fns: dict[str, Callable[..., Any]]
        if jit:
            spec, dyn = _split_args(self.args)
            self._dyn = _place_args(dyn, self._placement)
            placement = self._placement
            self._sparse = cached_per_fun(
                _CACHE,
                _CACHE_LOCK,
                fun,
                ("sparse", layout, layout.factory, spec.key()),
                lambda weak: _Compiled(fun, layout, placement, spec, weak=weak),
                CACHE_PER_FUN,
            )
            self._sparse_base = self._sparse.counter.calls
            self._fns = self._sparse.fns
        else:
            self._fns = _sparse_functions(
                self._eager_fun, layout, self._placement, None, traced=False
            )
        self._m: int | None = None

    @property
    def fun_calls(self) -> int:
        """Python calls of the user's function (under jit: traces since this object was made)."""
        traced = 0 if self._sparse is None else self._sparse.counter.calls - self._sparse_base
        return self._eager_fun.calls + traced

    @fun_calls.setter
    def fun_calls(self, value: int) -> None:
        self._eager_fun.calls = value
        self._sparse_base = 0 if self._sparse is None else self._sparse.counter.calls

    def _call(self, name: str, *arrays: np.ndarray) -> np.ndarray:
        vecs = [self._device_any(a) for a in arrays]
        dyn = self._dyn if self.jit else self.args
        try:
            return _host64(self._fns[name](*vecs, dyn))
        except _TRACE_ERRORS as exc:
            if self.jit:
                _add_jit_hint(exc, self._what)
            raise

    def _device_any(self, a: np.ndarray) -> jax.Array:
        host = np.array(a, dtype=self._dtype)
        if self._placement.flat is not None:
            return jax.device_put(host, self._placement.flat)
        return jnp.asarray(host)

    def _seeds(self, seeds: np.ndarray, rows: int) -> np.ndarray:
        arr = np.asarray(seeds, dtype=self._dtype)
        if arr.ndim != 2 or arr.shape[0] != rows:
            raise ValueError(f"seeds must have shape ({rows}, k); got {arr.shape}")
        return arr

    def value(self, x: np.ndarray) -> np.ndarray:
        out = self._call("value", self._host(x))
        self._m = out.shape[0]
        return out

    def jvps(self, x: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        return self._call("jvps", self._host(x), self._seeds(seeds, self.n))

    def vjps(self, x: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        m = np.shape(seeds)[0] if self._m is None else self._m
        return self._call("vjps", self._host(x), self._seeds(seeds, m))

    def hvps(self, x: np.ndarray, w: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        m = np.shape(w)[0] if self._m is None else self._m
        return self._call("hvps", self._host(x), self._host(w, m, "w"), self._seeds(seeds, self.n))


def sparse_products(
    layout: Layout,
    codec: Codec | None,
    fun: Callable,
    args: Sequence[Any] = (),
    *,
    jit: bool | None = None,
) -> JaxSparseProducts:
    """Batched derivative products of ``fun(x_dict, *args)`` (any shape) for sparse
    derivatives (:class:`~dict_minimize._structure.types.SparseProducts`).

    Example:
        >>> import jax.numpy as jnp, numpy as np
        >>> from dict_minimize._structure.layout import make_layout
        >>> from dict_minimize.backends import get_backend
        >>> lay = make_layout({"a": jnp.zeros(3)}, get_backend("jax"))
        >>> p = sparse_products(lay, None, lambda d: d["a"] ** 2)
        >>> p.jvps(np.array([1.0, 2.0, 3.0]), np.ones((3, 1)))
        array([[2.],
               [4.],
               [6.]])
    """
    del codec
    return JaxSparseProducts(layout, fun, args, jit=_resolve_jit(jit))


__all__ = ["JaxSparseProducts", "sparse_products"]

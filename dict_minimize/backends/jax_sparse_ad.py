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
from dict_minimize.backends.jax_ad import _Base, _resolve_jit
from dict_minimize.backends.jax_trace import (
    _TRACE_ERRORS,
    _add_jit_hint,
    _host64,
    _place_args,
    _split_args,
    _vector_functions,
)


class JaxSparseProducts(_Base):
    """:class:`~dict_minimize._structure.types.SparseProducts` for JAX: ``jax.vmap`` of
    ``jax.jvp`` (forward), of ``jax.vjp``'s pullback (reverse) and of ``jax.jvp`` of
    ``jax.grad`` (Hessian products), compiled with ``jax.jit`` unless ``jit=False``."""

    _what = "the function"
    _kind = "vector"

    def __init__(self, layout: Layout, fun: Callable, args: Sequence[Any], *, jit: bool) -> None:
        super().__init__(layout, fun, args, False)  # no cached compiled set: our own below
        self.jit = jit
        spec, dyn = _split_args(self.args)
        if jit:
            self._dyn = _place_args(dyn, self._placement)
        value = _vector_functions(
            self._eager_fun, layout, self._placement, spec if jit else None, traced=jit
        ).value

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

        def plain(z: jax.Array, dyn: Any) -> jax.Array:
            return value(z, dyn)

        wrap = jax.jit if jit else (lambda f: f)
        self._fns = {
            "value": wrap(plain),
            "jvps": wrap(jvps),
            "vjps": wrap(vjps),
            "hvps": wrap(hvps),
        }
        self._m: int | None = None

    def _call(self, name: str, *arrays: np.ndarray) -> np.ndarray:
        vecs = [jnp.asarray(a) if self.jit else self._device_any(a) for a in arrays]
        dyn = self._dyn if self.jit else self.args
        try:
            out = _host64(self._fns[name](*vecs, dyn))
        except _TRACE_ERRORS as exc:
            if self.jit:
                _add_jit_hint(exc, self._what)
            raise
        return out

    def _device_any(self, a: np.ndarray) -> jax.Array:
        host = np.array(a, dtype=self._dtype)
        if self._placement.flat is not None:
            return jax.device_put(host, self._placement.flat)
        return jnp.asarray(host)

    def _x(self, x: np.ndarray) -> np.ndarray:
        return self._host(x)

    def _seeds(self, seeds: np.ndarray, rows: int, what: str) -> np.ndarray:
        arr = np.asarray(seeds, dtype=self._dtype)
        if arr.ndim != 2 or arr.shape[0] != rows:
            raise ValueError(f"{what} must have shape ({rows}, k); got {arr.shape}")
        return arr

    def value(self, x: np.ndarray) -> np.ndarray:
        out = self._call("value", self._x(x))
        self._m = out.shape[0]
        return out

    def jvps(self, x: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        return self._call("jvps", self._x(x), self._seeds(seeds, self.n, "seeds"))

    def vjps(self, x: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        m = np.shape(seeds)[0] if self._m is None else self._m
        return self._call("vjps", self._x(x), self._seeds(seeds, m, "seeds"))

    def hvps(self, x: np.ndarray, w: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        m = np.shape(w)[0] if self._m is None else self._m
        w = self._host(w, m, "w")
        return self._call("hvps", self._x(x), w, self._seeds(seeds, self.n, "seeds"))


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

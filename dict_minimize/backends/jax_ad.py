"""Automatic differentiation for the JAX backend: exact gradients, Hessian-vector products and
Hessians of a function of the dict, on SciPy's flat float64 vector.

The objective is traced as a function of ONE flat vector: inside the compiled function the vector
is split at static offsets, each piece is reshaped and cast to its entry's dtype, the mapping is
rebuilt with :meth:`~dict_minimize._structure.layout.Layout.build` and ``fun`` is called on it; the
gradients are cast to one dtype and concatenated, with the value appended, still inside the
compiled function. On the host SciPy's vector is converted once (to float32 when JAX has no
float64) and crosses to the device in one transfer; one array comes back and becomes float64 in
one conversion. Per call, that is one dispatch and two transfers whatever the number of keys;
compile time grows with the number of distinct computations in the program, as for any
``jax.jit``.

Design choices a user can observe:

- **Extra arguments** (``args``) are a pytree. Its array leaves (``jax.Array``, NumPy arrays,
  NumPy floating scalars) and Python floats/complex numbers are *dynamic* inputs of the compiled
  function: new data of the same shape and dtype does not recompile. Every other leaf (Python
  ``int``/``bool``, strings, None, callables, NumPy integer scalars) is *static*: it may steer
  Python control flow inside ``fun`` and is part of the cache key (by value; by identity for
  unhashable objects), so a new value compiles again. NumPy and Python leaves are moved to the
  device once per ``minimize`` call.
- **Compile cache.** The compiled functions are cached per ``fun`` object (held weakly: the
  cache entry dies with ``fun``) and per layout signature (keys, shapes, dtypes, devices,
  mapping type) and ``args`` structure, at most :data:`CACHE_PER_FUN` signatures per ``fun``.
  Repeated ``minimize`` calls with the same ``fun`` therefore do not trace again; a fresh
  ``lambda`` per call compiles every time and leaves nothing behind. Bound methods are new
  objects at every attribute access, so they are compiled once per call: pass a function.
- **Devices.** When every entry lives on one device (the usual case) the flat vector is placed
  there and everything runs there. Entries sharded over several devices of one mesh keep their
  shardings (the flat vector is replicated, each piece constrained to its entry's sharding).
  Entries on *different* single devices: under ``jax.jit`` the program runs on the default
  device; eagerly (``jit=False``) each piece is moved to its entry's device.
- ``jit=False`` runs ``fun`` eagerly (for functions that cannot be traced). With
  ``second_order=True`` the eager ``value_and_grad`` linearises the gradient, so value, gradient
  and the Hessian's linear map come from one call of ``fun``; Hessian-vector products and the
  Hessian at that same point reuse it.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dict_minimize._errors import type_name
from dict_minimize._structure.layout import Layout, _mapping_factory
from dict_minimize._structure.types import Codec
from dict_minimize.backends._ad import (
    VALUE_AND_GRAD_DOC,
    PointCache,
    as_vector,
)
from dict_minimize.backends.jax_trace import (
    _TRACE_ERRORS,
    CACHE_PER_FUN,
    _add_jit_hint,
    _ArgSpec,
    _check_scalar,
    _Compiled,
    _compiled,
    _Counted,
    _host64,
    _input_dtype,
    _jacobian_of,
    _place_args,
    _placement,
    _scalar_functions,
    _split_args,
    _vector_functions,
    cache_size,
    clear_cache,
)

_TRACEABLE = "_dict_minimize_traceable"


# --- the objects the driver uses ------------------------------------------------------------


def _resolve_jit(jit: Any) -> bool:
    """``jit`` as a bool: None (the default) means True for JAX."""
    if jit is None:
        return True
    if isinstance(jit, (bool, np.bool_)):
        return bool(jit)
    raise TypeError(f"jit must be True, False or None; got a {type_name(jit)}")


class _Base:
    """What both objects share: host conversion, placement, counting and the jit switch."""

    _what = "fun"
    _kind = "scalar"

    def __init__(self, layout: Layout, fun: Callable, args: Sequence[Any], jit: bool) -> None:
        if not callable(fun):
            raise TypeError(f"{self._what} must be callable; got a {type_name(fun)}")
        self.layout, self.fun, self.jit = layout, fun, jit
        self.args = tuple(args)
        self.n = layout.n
        self._placement = _placement(layout)
        self._dtype = _input_dtype(layout)
        self._eager_fun = _Counted(fun, weak=False)
        self._trace_base = 0
        self._compiled: _Compiled | None = None
        self._dyn: tuple[Any, ...] = ()
        if jit:
            spec, dyn = _split_args(self.args)
            self._compiled = _compiled(self._kind, fun, layout, self._placement, spec)
            self._trace_base = self._compiled.counter.calls
            self._dyn = _place_args(dyn, self._placement)

    @property
    def fun_calls(self) -> int:
        """Python calls of the user's function (under jit: traces since this object was made)."""
        compiled = self._compiled
        traced = compiled.counter.calls - self._trace_base if compiled is not None else 0
        return self._eager_fun.calls + traced

    @fun_calls.setter
    def fun_calls(self, value: int) -> None:
        self._eager_fun.calls = value
        self._trace_base = self._compiled.counter.calls if self._compiled is not None else 0

    def _host(self, vec: np.ndarray, size: int | None = None, what: str = "x") -> np.ndarray:
        """SciPy's float64 vector in the input dtype: one host conversion (no copy if equal)."""
        host = np.asarray(vec, dtype=self._dtype)
        if host.shape != (self.n if size is None else size,):
            as_vector(vec, self.n if size is None else size, what)  # raises the ValueError
        return host

    def _device(self, vec: np.ndarray, size: int | None = None, what: str = "x") -> jax.Array:
        """The vector on the flat vector's device, for eager calls (one transfer). JAX may alias
        64-byte aligned host memory on the CPU, and a kept linearisation must not see SciPy
        reuse its buffer: the host array is always a new one. (Compiled calls need no copy: the
        result is read back before SciPy gets control again.)"""
        host = self._host(vec, size, what)
        if host is vec:
            host = host.copy()
        if self._placement.flat is not None:
            return jax.device_put(host, self._placement.flat)
        return jnp.asarray(host)

    def _jitted(self, name: str, *vecs: np.ndarray) -> Any:
        """Call a compiled function; a tracing error gets a note on how to run eagerly."""
        assert self._compiled is not None
        try:
            return getattr(self._compiled, name)(*vecs, self._dyn)
        except _TRACE_ERRORS as exc:
            _add_jit_hint(exc, self._what)
            raise


class JaxScalarAD(_Base):
    """:class:`~dict_minimize._structure.types.ScalarAD` for JAX; made by :func:`scalar_ad`."""

    def __init__(
        self, layout: Layout, fun: Callable, args: Sequence[Any], *, jit: bool, second_order: bool
    ) -> None:
        super().__init__(layout, fun, args, jit)
        self.second_order = second_order
        # eager second order: value, gradient and the gradient's linear map at the last point
        self._point: PointCache[tuple[jax.Array, jax.Array, Callable]] = PointCache()
        self._eager = _scalar_functions(
            self._eager_fun, layout, self._placement, None, traced=False
        )

    def value_and_grad(self, x: np.ndarray, owned: bool = False) -> tuple[float, np.ndarray]:
        """``(f(x), grad f(x))`` as a float and a float64 vector."""
        if self.jit:
            out = _host64(self._jitted("packed", self._host(x)))
            return float(out[self.n]), out[: self.n]
        if self.second_order:
            v, g, _ = self._linearized(x)
        else:
            v, g = self._eager.value_and_grad(self._device(x), self.args)
        return float(v), _host64(g)

    def _linearized(self, x: np.ndarray) -> tuple[jax.Array, jax.Array, Callable]:
        """Value, gradient and the gradient's linear map at ``x`` from one call of ``fun``, kept
        until another ``x`` comes."""
        got = self._point.get(x)
        if got is None:
            self._point.clear()  # release the old point's residuals before computing new ones
            args, vg = self.args, self._eager.value_and_grad
            (v, g), lin = jax.linearize(lambda y: vg(y, args), self._device(x))
            got = (v, g, lin)
            self._point.put(x, got)
        return got

    def hvp(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        """The Hessian at ``x`` times ``p`` (forward over reverse), a float64 vector."""
        if self.jit:
            return _host64(self._jitted("hvp", self._host(x), self._host(p, what="p")))
        if self.second_order:
            lin = self._linearized(x)[2]
            return _host64(lin(self._device(p, what="p"))[1])
        return _host64(self._eager.hvp(self._device(x), self._device(p, what="p"), self.args))

    def hess(self, x: np.ndarray) -> np.ndarray:
        """The dense Hessian at ``x``, symmetrised, float64 ``(n, n)``."""
        if self.jit:
            h = _host64(self._jitted("hess", self._host(x)))
        elif self.second_order:
            lin = self._linearized(x)[2]
            eye = jnp.eye(self.n, dtype=self._dtype, device=self._placement.flat)
            h = _host64(jax.vmap(lin)(eye)[1])
        else:
            h = _host64(self._eager.hess(self._device(x), self.args))
        return (h + h.T) * 0.5


class JaxPair(_Base):
    """:class:`~dict_minimize._structure.types.CompiledPair` for JAX (see :func:`compile_pair`)."""

    _kind = "pair"

    def __init__(self, layout: Layout, fun: Callable, args: Sequence[Any]) -> None:
        super().__init__(layout, fun, args, True)

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """``fun``'s value and gradient at ``x``: a float and a float64 vector."""
        out = _host64(self._jitted("packed", self._host(x)))
        return float(out[self.n]), out[: self.n]


class JaxVectorAD(_Base):
    """:class:`~dict_minimize._structure.types.VectorAD` for JAX; made by :func:`vector_ad`."""

    _what = "the constraint function"
    _kind = "vector"

    def __init__(self, layout: Layout, cfun: Callable, args: Sequence[Any], *, jit: bool) -> None:
        super().__init__(layout, cfun, args, jit)
        self._m: int | None = None
        # eager: the values and their linearisation at the last point, for the Jacobian
        self._point: PointCache[tuple[jax.Array, Callable, jax.Array]] = PointCache()
        self._eager = _vector_functions(
            self._eager_fun, layout, self._placement, None, traced=False
        )

    def _linearized(self, x: np.ndarray) -> tuple[jax.Array, Callable, jax.Array]:
        got = self._point.get(x)
        if got is None:
            self._point.clear()
            args, value, x_dev = self.args, self._eager.value, self._device(x)
            y, lin = jax.linearize(lambda z: value(z, args), x_dev)
            got = (y, lin, x_dev)
            self._point.put(x, got)
        return got

    def value(self, x: np.ndarray) -> np.ndarray:
        """The constraint's values at ``x``, flattened: float64 ``(m,)``."""
        out = _host64(self._jitted("value", self._host(x)) if self.jit else self._linearized(x)[0])
        self._m = out.shape[0]
        return out

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """The Jacobian at ``x``: float64 ``(m, n)``, columns in the layout's order."""
        if self.jit:
            return _host64(self._jitted("jacobian", self._host(x)))
        y, lin, x_dev = self._linearized(x)
        return _host64(_jacobian_of(y, lin, x_dev))

    def vhp(self, x: np.ndarray, v: np.ndarray, p: np.ndarray) -> np.ndarray:
        """``(sum_i v[i] * Hessian(c_i)(x)) @ p``: float64 ``(n,)``."""
        m = np.shape(v)[0] if self._m is None else self._m
        if self.jit:
            vecs = self._host(x), self._host(v, m, "v"), self._host(p, what="p")
            return _host64(self._jitted("vhp", *vecs))
        vecs_dev = self._device(x), self._device(v, m, "v"), self._device(p, what="p")
        return _host64(self._eager.vhp(*vecs_dev, self.args))


def scalar_ad(
    layout: Layout,
    codec: Codec | None,
    fun: Callable,
    args: Sequence[Any] = (),
    *,
    jit: bool | None = None,
    second_order: bool = False,
) -> JaxScalarAD:
    """Exact derivatives of ``fun(x_dict, *args) -> scalar`` on SciPy's flat vector.

    Args:
        layout: the layout of ``x0``.
        codec: the backend's codec (unused: JAX converts inside the compiled function).
        fun: returns the objective's value, a real floating 0-d JAX array computed from
            ``x_dict``.
        args: extra positional arguments for ``fun``. Under jit their array leaves (and Python
            floats) are dynamic inputs of the compiled function, other leaves static (see the
            module notes).
        jit: compile with ``jax.jit`` (the default: None means True); False runs ``fun``
            eagerly, for functions that cannot be traced.
        second_order: eager only: keep the gradient's linearisation from each
            ``value_and_grad`` so Hessian products at that point do not call ``fun`` again.

    Returns:
        JaxScalarAD: ``value_and_grad``, ``hvp``, ``hess`` and ``fun_calls``.

    Example:
        >>> import jax.numpy as jnp, numpy as np
        >>> from dict_minimize._structure.layout import make_layout
        >>> from dict_minimize.backends import get_backend
        >>> lay = make_layout({"a": jnp.zeros(2), "b": jnp.zeros(())}, get_backend("jax"))
        >>> ad = scalar_ad(lay, None, lambda d: jnp.sum(d["a"] ** 2) + 3 * d["b"])
        >>> ad.value_and_grad(np.array([1.0, 2.0, 0.5]))
        (6.5, array([2., 4., 3.]))
        >>> ad.hvp(np.zeros(3), np.ones(3)), ad.fun_calls
        (array([2., 2., 0.]), 2)
    """
    del codec
    jit_on = _resolve_jit(jit)
    return JaxScalarAD(layout, fun, args, jit=jit_on, second_order=bool(second_order))


def vector_ad(
    layout: Layout,
    codec: Codec | None,
    cfun: Callable,
    args: Sequence[Any] = (),
    *,
    jit: bool | None = None,
) -> JaxVectorAD:
    """Exact derivatives of a constraint ``cfun(x_dict, *args) -> array of any shape``.

    The Jacobian uses reverse mode when the constraint has fewer values than the dict has
    scalars, forward mode otherwise. Eagerly, ``jacobian`` at the point of the last ``value``
    reuses its linearisation (no new call of ``cfun``).

    Args:
        layout: the layout of ``x0``.
        codec: the backend's codec (unused).
        cfun: returns a real floating JAX array of any shape (a scalar included).
        args: extra positional arguments for ``cfun``, as for :func:`scalar_ad`.
        jit: compile with ``jax.jit`` (the default); False runs ``cfun`` eagerly.

    Returns:
        JaxVectorAD: ``value``, ``jacobian``, ``vhp`` and ``fun_calls``.

    Example:
        >>> import jax.numpy as jnp, numpy as np
        >>> from dict_minimize._structure.layout import make_layout
        >>> from dict_minimize.backends import get_backend
        >>> lay = make_layout({"a": jnp.zeros(2)}, get_backend("jax"))
        >>> c = vector_ad(lay, None, lambda d: jnp.stack([d["a"].sum(), d["a"][0] ** 2]))
        >>> c.value(np.array([3.0, 1.0]))
        array([4., 9.])
        >>> c.jacobian(np.array([3.0, 1.0]))
        array([[1., 1.],
               [6., 0.]])
    """
    del codec
    return JaxVectorAD(layout, cfun, args, jit=_resolve_jit(jit))


def is_compiled(fun: Any) -> bool:
    """True for a function compiled with ``jax.jit`` (or this package's ``value_and_grad`` with
    jit on): one that is already traced, so tracing it inside a larger function is safe."""
    return isinstance(fun, jax.stages.Wrapped) or getattr(fun, _TRACEABLE, False) is True


def compile_pair(
    layout: Layout,
    codec: Codec | None,
    fun: Callable,
    args: Sequence[Any] = (),
    *,
    jit: bool | None = None,
) -> JaxPair | None:
    """``fun(x_dict, *args) -> (value, grad_dict)`` compiled on SciPy's flat vector, or None.

    A ``jax.jit`` function called on a dict pays per entry at every call (flattening the dict,
    checking and passing each array). Traced inside one compiled function of the flat vector,
    with the split before it and the concatenation after it, that cost is gone: one dispatch
    and one transfer each way, whatever the number of keys.

    Args:
        layout: the layout of ``x0``.
        codec: the backend's codec (unused).
        fun: returns ``(value, grad_dict)`` from JAX operations on ``x_dict``.
        args: extra positional arguments for ``fun``, as for :func:`scalar_ad`.
        jit: True compiles any ``fun`` (it must be traceable); None (the default) compiles
            only a ``fun`` that is already compiled (``jax.jit``, or ``value_and_grad`` from
            this package); False never.

    Returns:
        JaxPair | None: ``value_and_grad`` and ``fun_calls``; None when not compiling.

    Example:
        >>> import jax, jax.numpy as jnp, numpy as np
        >>> from dict_minimize._structure.layout import make_layout
        >>> from dict_minimize.backends import get_backend
        >>> lay = make_layout({"a": jnp.zeros(2), "b": jnp.zeros(())}, get_backend("jax"))
        >>> fun = jax.jit(jax.value_and_grad(lambda d: jnp.sum(d["a"] ** 2) + 3 * d["b"]))
        >>> compile_pair(lay, None, fun).value_and_grad(np.array([1.0, 2.0, 0.5]))
        (6.5, array([2., 4., 3.]))
        >>> compile_pair(lay, None, fun, jit=False) is None
        True
    """
    del codec
    if jit is False or (jit is None and not is_compiled(fun)):
        return None
    _resolve_jit(jit)  # the TypeError for anything but None/True/False
    return JaxPair(layout, fun, args)


_HELPER_WHERE = "in value_and_grad(fun)"


def value_and_grad(fun: Callable, *, jit: bool = True) -> Callable[..., tuple[jax.Array, Mapping]]:
    if not callable(fun):
        raise TypeError(f"value_and_grad needs a callable; got a {type_name(fun)}")
    jit = _resolve_jit(jit)
    compiled: OrderedDict[Hashable, Callable] = OrderedDict()  # args signature -> jitted

    def differentiate(spec: _ArgSpec | None) -> Callable:
        def objective(values: list, keys: tuple, factory: Callable, dyn: Any) -> jax.Array:
            args = spec.rebuild(dyn) if spec is not None else dyn
            value = fun(factory(zip(keys, values, strict=True)), *args)
            return _check_scalar(value, _HELPER_WHERE)

        vg = jax.value_and_grad(objective)
        return jax.jit(vg, static_argnums=(1, 2)) if jit else vg

    def jitted(spec: _ArgSpec) -> Callable:
        key = spec.key()
        vg = compiled.get(key)
        if vg is None:
            vg = compiled[key] = differentiate(spec)
            while len(compiled) > CACHE_PER_FUN:
                compiled.popitem(last=False)
        return vg

    eager = None if jit else differentiate(None)

    @functools.wraps(fun)
    def value_and_grad_fun(x_dict: Mapping, *args: Any) -> tuple[jax.Array, Mapping]:
        if not isinstance(x_dict, Mapping):
            raise TypeError(
                f"{_HELPER_WHERE}: x_dict must be a dict of JAX arrays; got a {type_name(x_dict)}"
            )
        keys = tuple(x_dict.keys())
        values = [x_dict[k] for k in keys]
        factory = _mapping_factory(x_dict)
        if eager is not None:
            value, grads = eager(values, keys, factory, args)
        else:
            spec, dyn = _split_args(args)
            # a mapping type whose factory is a closure is built as a dict inside jit
            static_factory = factory if isinstance(factory, type) else dict
            try:
                value, grads = jitted(spec)(values, keys, static_factory, dyn)
            except _TRACE_ERRORS as exc:
                _add_jit_hint(exc, "fun")
                raise
        return value, factory(zip(keys, grads, strict=True))

    setattr(value_and_grad_fun, _TRACEABLE, jit)
    return value_and_grad_fun


value_and_grad.__doc__ = VALUE_AND_GRAD_DOC.format(
    name="JAX",
    module="jax",
    tensor="JAX array",
    detached="",
    example="""
    >>> import jax.numpy as jnp
    >>> from dict_minimize.jax_api import minimize, value_and_grad
    >>> f = value_and_grad(lambda d, c: jnp.sum((d["x"] - c) ** 2) + d["b"] ** 2)
    >>> value, grads = f({"x": jnp.zeros(2), "b": jnp.ones(())}, 2.0)
    >>> value, list(grads), grads["x"]
    (Array(9., dtype=float32), ['x', 'b'], Array([-4., -4.], dtype=float32))
    >>> minimize(f, {"x": jnp.zeros(2), "b": jnp.ones(())}, args=(2.0,), method="L-BFGS-B")["x"]
    Array([2., 2.], dtype=float32)
""",
).replace(
    "\nReturns:",
    "    jit: compile with ``jax.jit`` (the default); False for functions that cannot be\n"
    "        traced. Array leaves of ``args`` (and Python floats) are dynamic inputs of the\n"
    "        compiled function, other leaves static (a new value compiles again).\n"
    "\nReturns:",
    1,
)

__all__ = [
    "CACHE_PER_FUN",
    "JaxPair",
    "JaxScalarAD",
    "JaxVectorAD",
    "cache_size",
    "clear_cache",
    "compile_pair",
    "is_compiled",
    "scalar_ad",
    "value_and_grad",
    "vector_ad",
]

"""The few array operations the reparametrisations of ``_problem/transforms.py`` need, per
framework: an array-API-style namespace (:class:`Ops`) whose functions run in x0's framework,
so that the transforms stay differentiable by that framework's autodiff and never leave the
device.

Each framework is imported only when its namespace is first asked for (a framework that is not
installed cannot own x0's tensors). Every function works on tensors of any floating dtype and
keeps the dtype; ``const`` makes a constant like a given tensor (its dtype and device).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np


class Ops(NamedTuple):
    """Array operations of one framework (all pure functions)."""

    name: str
    #: ``const(array, like)``: a float64 NumPy array as a tensor of ``like``'s dtype and device
    const: Callable[[np.ndarray, Any], Any]
    #: a hashable key of a tensor's dtype and device (constants are cached per key)
    key_of: Callable[[Any], Any]
    #: ``take(v, index)``: entries of the 1-D ``v`` at the NumPy int array ``index``
    take: Callable[[Any, np.ndarray], Any]
    #: ``concat(parts, axis)``
    concat: Callable[[Sequence[Any], int], Any]
    reshape: Callable[[Any, tuple[int, ...]], Any]
    #: ``permute(t, axes)``: axes reordered (``np.transpose``)
    permute: Callable[[Any, tuple[int, ...]], Any]
    matmul: Callable[[Any, Any], Any]
    #: ``sum(t, axis, keepdims)``; ``axis=None``: all entries (a 0-d tensor)
    sum: Callable[[Any, int | None, bool], Any]
    #: ``cumsum(v)`` of a 1-D tensor
    cumsum: Callable[[Any], Any]
    exp: Callable[[Any], Any]
    sqrt: Callable[[Any], Any]
    sigmoid: Callable[[Any], Any]
    softplus: Callable[[Any], Any]
    #: ``softmax(t)`` along the last axis
    softmax: Callable[[Any], Any]
    #: the tensor without its autodiff history (PyTorch: ``detach()``)
    detach: Callable[[Any], Any]
    #: a fresh leaf that ``fun`` can differentiate with respect to (PyTorch: requires grad)
    leaf: Callable[[Any], Any]


_cache: dict[str, Ops] = {}


def ops_for(name: str) -> Ops:
    """The :class:`Ops` of backend ``name`` ('numpy', 'torch', 'jax' or 'tensorflow').

    Example:
        >>> import numpy as np
        >>> ops = ops_for("numpy")
        >>> ops.take(ops.concat([np.arange(2.0), np.zeros(1)], 0), np.array([2, 0, 1]))
        array([0., 0., 1.])
    """
    ops = _cache.get(name)
    if ops is None:
        ops = _cache.setdefault(name, _MAKERS[name]())
    return ops


def _identity(t: Any) -> Any:
    return t


def _numpy() -> Ops:
    import scipy.special

    def const(a: np.ndarray, like: Any) -> Any:
        return np.asarray(a, dtype=np.asarray(like).dtype)

    def softplus(t: Any) -> Any:
        return np.logaddexp(np.zeros((), dtype=t.dtype), t)

    return Ops(
        name="numpy",
        const=const,
        key_of=lambda t: np.asarray(t).dtype,
        take=lambda v, i: v[i],
        concat=lambda parts, axis: np.concatenate(parts, axis=axis),
        reshape=lambda t, s: np.reshape(t, s),
        permute=lambda t, axes: np.transpose(t, axes),
        matmul=np.matmul,
        sum=lambda t, axis, keepdims: (
            np.sum(t, axis=axis, keepdims=True) if keepdims else np.sum(t, axis=axis)
        ),
        cumsum=np.cumsum,
        exp=np.exp,
        sqrt=np.sqrt,
        sigmoid=scipy.special.expit,
        softplus=softplus,
        softmax=lambda t: scipy.special.softmax(t, axis=-1),
        detach=_identity,
        leaf=_identity,
    )


def _torch() -> Ops:
    import torch

    def take(v: Any, i: np.ndarray) -> Any:
        return v[torch.as_tensor(i, device=v.device)]

    def tsum(t: Any, axis: int | None, keepdims: bool) -> Any:
        return torch.sum(t) if axis is None else torch.sum(t, dim=axis, keepdim=keepdims)

    return Ops(
        name="torch",
        const=lambda a, like: torch.tensor(np.asarray(a), dtype=like.dtype, device=like.device),
        key_of=lambda t: (t.dtype, t.device),
        take=take,
        concat=lambda parts, axis: torch.cat(list(parts), dim=axis),
        reshape=lambda t, s: torch.reshape(t, s),
        permute=lambda t, axes: t.permute(*axes),
        matmul=torch.matmul,
        sum=tsum,
        cumsum=lambda v: torch.cumsum(v, dim=0),
        exp=torch.exp,
        sqrt=torch.sqrt,
        sigmoid=torch.sigmoid,
        softplus=torch.nn.functional.softplus,
        softmax=lambda t: torch.softmax(t, dim=-1),
        detach=lambda t: t.detach(),
        leaf=lambda t: t.detach().requires_grad_(True),
    )


def _jax() -> Ops:
    import jax
    import jax.numpy as jnp

    def const(a: np.ndarray, like: Any) -> Any:
        with jax.ensure_compile_time_eval():  # concrete, also while jax.jit traces: cached
            return jnp.asarray(a, dtype=like.dtype)

    return Ops(
        name="jax",
        const=const,
        key_of=lambda t: jnp.dtype(t.dtype),
        take=lambda v, i: jnp.take(v, i),
        concat=lambda parts, axis: jnp.concatenate(list(parts), axis=axis),
        reshape=lambda t, s: jnp.reshape(t, s),
        permute=lambda t, axes: jnp.transpose(t, axes),
        matmul=jnp.matmul,
        sum=lambda t, axis, keepdims: jnp.sum(t, axis=axis, keepdims=keepdims),
        cumsum=jnp.cumsum,
        exp=jnp.exp,
        sqrt=jnp.sqrt,
        sigmoid=jax.nn.sigmoid,
        softplus=jax.nn.softplus,
        softmax=lambda t: jax.nn.softmax(t, axis=-1),
        detach=_identity,
        leaf=_identity,
    )


def _tensorflow() -> Ops:
    import tensorflow as tf

    def tsum(t: Any, axis: int | None, keepdims: bool) -> Any:
        return tf.reduce_sum(t, axis=axis, keepdims=keepdims)

    def const(a: np.ndarray, like: Any) -> Any:
        with tf.init_scope():  # eager, also while tf.function traces: constants are cached
            return tf.constant(a, dtype=like.dtype)

    return Ops(
        name="tensorflow",
        const=const,
        key_of=lambda t: t.dtype,
        take=lambda v, i: tf.gather(v, i),
        concat=lambda parts, axis: tf.concat(list(parts), axis=axis),
        reshape=lambda t, s: tf.reshape(t, s),
        permute=lambda t, axes: tf.transpose(t, axes),
        matmul=tf.linalg.matmul,
        sum=tsum,
        cumsum=lambda v: tf.math.cumsum(v, axis=0),
        exp=tf.math.exp,
        sqrt=tf.math.sqrt,
        sigmoid=tf.math.sigmoid,
        softplus=tf.math.softplus,
        softmax=lambda t: tf.nn.softmax(t, axis=-1),
        detach=_identity,
        leaf=_identity,
    )


_MAKERS: dict[str, Callable[[], Ops]] = {
    "numpy": _numpy,
    "torch": _torch,
    "jax": _jax,
    "tensorflow": _tensorflow,
}

__all__ = ["Ops", "ops_for"]

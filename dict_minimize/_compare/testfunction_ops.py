"""The few operations the test functions' formulas use, in each framework (imported lazily).

Each formula of :mod:`dict_minimize.testfunctions` is written once over an :class:`_Ops`
record; :func:`_ops` builds the record of one framework, importing it only then.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from dict_minimize._errors import missing_framework

#: the frameworks an objective can be written in
FRAMEWORKS = ("numpy", "torch", "jax", "tensorflow")
#: the dtype names :meth:`TestFunction.objective` and :meth:`TestFunction.x0` accept
DTYPES = ("float16", "bfloat16", "float32", "float64")


class _Ops(NamedTuple):
    """The few operations the formulas use, in one framework: each formula is written once."""

    name: str
    sqrt: Callable[[Any], Any]
    sin: Callable[[Any], Any]
    cos: Callable[[Any], Any]
    atan2: Callable[[Any, Any], Any]  # atan2(y, x)
    nan_where_not: Callable[[Any, Any], Any]  # (cond, value) -> value where cond, else NaN
    total: Callable[[Any], Any]  # sum of all elements, a 0-d tensor
    dtype: Callable[[str], Any]  # dtype name -> the framework's dtype
    default_dtype: Callable[[], str]  # the dtype name x0 uses when none is given
    cast: Callable[[Any, Any], Any]  # (tensor, framework dtype) -> tensor
    tensor: Callable[[float, Any], Any]  # (float, framework dtype) -> 0-d tensor


def _numpy_dtype(name: str) -> Any:
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _numpy_ops() -> _Ops:
    return _Ops(
        "numpy",
        np.sqrt,
        np.sin,
        np.cos,
        np.arctan2,
        lambda cond, v: np.where(cond, v, np.nan),
        np.sum,
        _numpy_dtype,
        lambda: "float64",
        lambda t, dtype: np.asarray(t, dtype=dtype),
        lambda v, dtype: np.asarray(v, dtype=dtype),
    )


def _torch_ops() -> _Ops:
    import torch

    return _Ops(
        "torch",
        torch.sqrt,
        torch.sin,
        torch.cos,
        torch.atan2,
        lambda cond, v: torch.where(cond, v, math.nan),
        torch.sum,
        lambda name: getattr(torch, name),
        lambda: "float64",
        lambda t, dtype: t.to(dtype),
        lambda v, dtype: torch.tensor(v, dtype=dtype),
    )


def _jax_dtype(name: str) -> Any:
    import jax
    import jax.numpy as jnp

    if name == "float64" and jax.dtypes.canonicalize_dtype(np.float64) != np.float64:
        raise ValueError(
            "JAX gives float64 only with x64 enabled, and it is off: call "
            "jax.config.update('jax_enable_x64', True) at startup, or work inside "
            "`with jax.enable_x64(True):`, or ask for dtype='float32'"
        )
    return jnp.dtype(name)


def _jax_ops() -> _Ops:
    import jax
    import jax.numpy as jnp

    def default() -> str:
        return np.dtype(jax.dtypes.canonicalize_dtype(np.float64)).name

    return _Ops(
        "jax",
        jnp.sqrt,
        jnp.sin,
        jnp.cos,
        jnp.arctan2,
        lambda cond, v: jnp.where(cond, v, jnp.nan),
        jnp.sum,
        _jax_dtype,
        default,
        lambda t, dtype: jnp.asarray(t).astype(dtype),
        lambda v, dtype: jnp.asarray(v, dtype=dtype),
    )


def _tensorflow_ops() -> _Ops:
    import tensorflow as tf

    return _Ops(
        "tensorflow",
        tf.sqrt,
        tf.sin,
        tf.cos,
        tf.math.atan2,
        lambda cond, v: tf.where(cond, v, tf.constant(math.nan, dtype=v.dtype)),
        tf.reduce_sum,
        lambda name: tf.as_dtype(name),
        lambda: "float64",
        lambda t, dtype: tf.cast(t, dtype),
        lambda v, dtype: tf.constant(v, dtype=dtype),
    )


_MAKERS = {
    "numpy": _numpy_ops,
    "torch": _torch_ops,
    "jax": _jax_ops,
    "tensorflow": _tensorflow_ops,
}


@functools.cache
def _ops(framework: str) -> _Ops:
    """The operations of ``framework``, importing it (a clear ImportError if it is missing)."""
    if not isinstance(framework, str) or framework not in _MAKERS:
        raise ValueError(f"framework must be one of {FRAMEWORKS}; got {framework!r}")
    try:
        return _MAKERS[framework]()
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.split(".")[0] == framework:
            raise missing_framework(framework) from exc
        raise

"""Framework-free pieces of the autodiff backends: the point cache, ``jit`` and the messages.

Every autodiff backend checks what the user's function returned in its own framework, then
raises the errors built here, so the wording is the same for PyTorch, TensorFlow and JAX.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Generic, TypeVar

import numpy as np

from dict_minimize._errors import fmt_key, fmt_shape, not_floating, type_name
from dict_minimize.backends._common import NotScalarError

T = TypeVar("T")

#: the docstring of every framework's dict-level ``value_and_grad`` helper
VALUE_AND_GRAD_DOC = """Wrap ``fun(x_dict, *args) -> value`` to return ``(value, grad_dict)``.

The result is the objective :func:`dict_minimize.minimize` expects with ``jac=True`` (and the
drop-in ``dict_minimize.{module}_api.minimize``): one forward and one backward pass per call.

Args:
    fun: returns a scalar {tensor} computed from the entries of ``x_dict``. Entries it does not
        use get a zero gradient.

Returns:
    ``g(x_dict, *args) -> (value, grad_dict)``: ``value`` is the scalar {tensor}{detached};
    ``grad_dict`` has the keys, order and mapping type of ``x_dict``, each gradient with its
    entry's shape and dtype. The entries of ``x_dict`` are never modified.

Raises:
    TypeError: ``fun`` returned something other than a real scalar {tensor} (a Python float, a
        NumPy value, a complex tensor...).
    ValueError: ``fun`` returned a tensor that is not a scalar.

Example:
{example}
"""


def dict_entries(
    x_dict: Any,
    where: str,
    tensor: str,
    is_tensor: Callable[[Any], bool],
    bad_dtype: Callable[[Any], Any],
) -> tuple[list[Hashable], list[Any]]:
    """The keys and tensors of the ``x_dict`` a ``value_and_grad`` helper was called with, or
    the error naming the key: not a mapping, not a ``tensor``, or not floating (``bad_dtype(t)``
    is the dtype to report, None for a floating tensor).

    Example:
        >>> dict_entries({"a": np.zeros(2)}, "here", "ndarray", lambda t: True, lambda t: None)
        (['a'], [array([0., 0.])])
    """
    if not isinstance(x_dict, Mapping):
        raise TypeError(f"{where}: x_dict must be a dict of {tensor}; got a {type_name(x_dict)}")
    keys = list(x_dict.keys())
    values = []
    for k in keys:
        t = x_dict[k]
        if not is_tensor(t):
            got = type_name(t)
            raise TypeError(f"{where}: x_dict[{fmt_key(k)}] is a {got}; expected a {tensor}")
        dtype = bad_dtype(t)
        if dtype is not None:
            raise not_floating("x_dict", k, dtype)
        values.append(t)
    return keys, values


class PointCache(Generic[T]):
    """What was computed at the last point ``x``, found again only at an equal ``x``.

    SciPy may reuse (and modify in place) the array it passes, so the point is copied and
    compared by value. Storing a new point releases the previous payload.

    Example:
        >>> cache = PointCache()
        >>> x = np.zeros(2)
        >>> cache.put(x, "graph")
        >>> x[0] = 1.0  # SciPy changed its buffer: a new point
        >>> cache.get(x) is None, cache.get(np.zeros(2))
        (True, 'graph')
    """

    def __init__(self) -> None:
        self._x: np.ndarray | None = None
        self._payload: T | None = None

    def get(self, x: np.ndarray) -> T | None:
        if self._x is not None and np.array_equal(self._x, x):
            return self._payload
        return None

    def put(self, x: np.ndarray, payload: T) -> None:
        self.clear()
        self._x = np.array(x, dtype=np.float64, copy=True)
        self._payload = payload

    def clear(self) -> None:
        self._x = None
        self._payload = None


def as_jit(jit: Any) -> bool:
    """``jit`` as a bool: None (the default) means False; anything but None/True/False is a
    TypeError."""
    if jit is None:
        return False
    if isinstance(jit, (bool, np.bool_)):
        return bool(jit)
    raise TypeError(f"jit must be True, False or None; got a {type_name(jit)}")


def as_vector(a: Any, n: int, what: str) -> np.ndarray:
    """SciPy's vector as a contiguous float64 array of size ``n`` (ValueError otherwise)."""
    vec = np.ascontiguousarray(a, dtype=np.float64)
    if vec.shape != (n,):
        raise ValueError(f"{what} must have shape ({n},); got shape {fmt_shape(vec.shape)}")
    return vec


def _not_differentiable(value: Any) -> str:
    if isinstance(value, (float, int, np.generic, np.ndarray)):
        return (
            ". A Python or NumPy number carries no derivative: compute the value with the "
            "framework's operations on the tensors of x_dict (no .item(), float() or .numpy())"
        )
    return ""


def scalar_kind_error(value: Any, tensor: str, where: str) -> TypeError:
    """The objective returned something that is not a tensor of the framework."""
    return TypeError(
        f"{where}, fun must return a scalar {tensor} computed from x_dict; it returned a "
        f"{type_name(value)}{_not_differentiable(value)}"
    )


def scalar_shape_error(shape: Any, where: str) -> ValueError:
    """A value of more than one entry: a ValueError and a TypeError, as SciPy raises either."""
    return NotScalarError(
        f"{where}, fun returned a tensor that has shape {fmt_shape(shape)}; expected a scalar. "
        "Reduce it with .sum() or .mean()"
    )


def dtype_error(dtype: Any, where: str, what: str = "fun", kind: str = "scalar") -> TypeError:
    """A complex (or integer, boolean...) result: derivatives need a real floating dtype."""
    if "complex" in str(dtype):
        problem, fix = "a complex", "Take the real part or the squared modulus."
    else:
        problem, fix = "a non-floating", "Compute it in a floating dtype or cast it."
    return TypeError(
        f"{where}, {what} returned {problem} tensor ({dtype}); expected a real floating {kind} "
        f"(float16, bfloat16, float32 or float64). {fix}"
    )


def vector_kind_error(value: Any, tensor: str, where: str) -> TypeError:
    """A constraint function returned something that is not a tensor of the framework."""
    return TypeError(
        f"{where}, the constraint function must return a {tensor} (of any shape) computed from "
        f"x_dict; it returned a {type_name(value)}{_not_differentiable(value)}"
    )


def cached_per_fun(
    cache: weakref.WeakKeyDictionary,
    lock: threading.Lock,
    fun: Any,
    key: Hashable,
    make: Callable[[bool], T],
    limit: int,
) -> T:
    """``make(weak)`` cached per ``fun`` (held weakly: entries die with it) and ``key`` (the
    ``limit`` most recent keys per ``fun``). A ``fun`` that cannot be a weak key gets
    ``make(False)``, for this call only.

    Example:
        >>> import threading, weakref
        >>> cache, lock = weakref.WeakKeyDictionary(), threading.Lock()
        >>> def f(): ...
        >>> a = cached_per_fun(cache, lock, f, "k", lambda weak: [weak], 8)
        >>> a is cached_per_fun(cache, lock, f, "k", lambda weak: [weak], 8), a
        (True, [True])
    """
    try:
        weakref.ref(fun)
        hash(fun)
    except TypeError:
        return make(False)
    with lock:
        per_fun = cache.get(fun)
        if per_fun is None:
            per_fun = cache[fun] = OrderedDict()
        entry = per_fun.get(key)
        if entry is None:
            entry = per_fun[key] = make(True)
            while len(per_fun) > limit:
                per_fun.popitem(last=False)
        else:
            per_fun.move_to_end(key)
    return entry


__all__ = [
    "VALUE_AND_GRAD_DOC",
    "PointCache",
    "as_jit",
    "as_vector",
    "cached_per_fun",
    "dtype_error",
    "scalar_kind_error",
    "scalar_shape_error",
    "vector_kind_error",
]

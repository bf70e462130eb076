"""Framework-free pieces of the batched evaluations (``minimize_batched``).

Each framework's batch module (``torch_batch``, ``jax_batch``, ``tensorflow_batch``,
``numpy_batch``) turns a (k, n) float64 matrix of problems into stacked tensors and back in one
conversion each way; the checks of what a batched ``fun`` returned, the rows of ``batch_args``
and the padding of a compiled call's row count are the same for all of them and live here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dict_minimize._errors import at, fmt_shape, pair_error, type_name
from dict_minimize._structure.layout import Layout, values_by_key


def take_rows(value: Any, take: Callable[[Any], Any]) -> Any:
    """``take`` applied to every tensor of one ``batch_args`` entry (nested tuples, lists and
    dicts are walked, their structure kept).

    Example:
        >>> take_rows({"a": [1, 2], "b": (3,)}, lambda t: t * 10)
        {'a': [10, 20], 'b': (30,)}
    """
    if isinstance(value, Mapping):
        return type(value)({k: take_rows(v, take) for k, v in value.items()})  # type: ignore[call-arg]
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(take_rows(v, take) for v in value)
    return take(value)


def check_values(shape: tuple[int, ...], k: int, what: str = "fun") -> None:
    """A batched objective returns one value per row: shape ``(k,)``."""
    if tuple(shape) != (k,):
        raise ValueError(
            f"{what} returned values of shape {fmt_shape(tuple(shape))} for {k} problems; "
            f"expected ({k},), one value per problem (vectorized=True: fun takes the stacked "
            "points of the active problems and returns their values)"
        )


def stacked_grads(grad: Any, layout: Layout, k: int, shape_of: Callable[[Any], Any]) -> list:
    """The gradient dict of a batched objective as a list in layout order, each entry of shape
    ``(k,) + x0[key].shape[1:]`` (checked, the error naming the key)."""
    grads = values_by_key(grad, layout)
    for key, g, shape in zip(layout.keys, grads, layout.shapes, strict=True):
        got = shape_of(g)
        if got is None:
            raise TypeError(f"gradient for {at('x', key)} is a {type_name(g)}; expected a tensor")
        if tuple(got) != (k, *shape):
            raise ValueError(
                f"gradient for {at('x', key)} has shape {fmt_shape(tuple(got))}; expected "
                f"{fmt_shape((k, *shape))} (the active problems' stacked gradients)"
            )
    return grads


def split_pair(out: Any) -> tuple[Any, Any]:
    """``(values, grad_dict)`` of a ``jac=True`` objective."""
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise pair_error(out)
    return out[0], out[1]


def bucket(k: int) -> int:
    """The row count a compiled batched call is padded to: the next power of two, so a batch
    that shrinks round by round compiles O(log B) times, not once per size.

    Example:
        >>> [bucket(k) for k in (1, 2, 3, 5, 1000)]
        [1, 2, 4, 8, 1024]
    """
    return 1 << max(0, (k - 1).bit_length())


class _LazyBatch:
    """A backend's ``batch`` hook that imports ``backends/<name>_batch.py`` at its first call.
    A class, not a closure: the backend record travels with the objective into worker
    processes (SciPy's ``workers=``), so the hook must pickle."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        import importlib

        module = importlib.import_module(f"dict_minimize.backends.{self.name}_batch")
        return module.batch(*args, **kwargs)

    def __repr__(self) -> str:
        return f"lazy_batch({self.name!r})"


def lazy_batch(name: str) -> Callable[..., Any]:
    """The ``batch`` hook of a backend record: imports ``backends/<name>_batch.py`` only when a
    batched solve runs.

    Example:
        >>> import pickle
        >>> pickle.loads(pickle.dumps(lazy_batch("numpy")))
        lazy_batch('numpy')
    """
    return _LazyBatch(name)


def stack_values(values: list[Any], backend: str) -> Any:
    """Per-problem values (one per problem: tensors, arrays or numbers) stacked along a new
    leading axis as one tensor of ``backend``'s framework (``minimize_many(..., batched=True)``
    turns a list of per-problem ``args`` into ``batch_args`` this way).

    Example:
        >>> stack_values([1.0, 2.0], "numpy")
        array([1., 2.])
    """
    if backend == "torch":
        import torch

        return torch.stack([torch.as_tensor(v) for v in values])
    if backend == "jax":
        import jax.numpy as jnp

        return jnp.stack([jnp.asarray(v) for v in values])
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.stack([tf.convert_to_tensor(v) for v in values])
    import numpy as np

    return np.stack([np.asarray(v) for v in values])

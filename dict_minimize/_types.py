"""Types shared by the core and the backends: the backend record and the codec it builds.

A backend is a record of pure functions (no class hierarchy). It recognises its framework's
tensors without importing the framework, describes each entry of ``x0`` once, and builds a
:class:`Codec` for one layout: the hot-path conversions between SciPy's float64 vector and the
framework's tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np

if TYPE_CHECKING:
    from dict_minimize._layout import Layout

Tensor = Any
FloatVector = np.ndarray


class EntryInfo(NamedTuple):
    """What a backend reports about one entry of ``x0``."""

    shape: tuple[int, ...]
    dtype: Any  # the framework's dtype object
    np_dtype: np.dtype | None  # NumPy equivalent of dtype, None if NumPy has none
    device: Any  # framework device (or sharding), None for NumPy


class Unflatten(Protocol):
    def __call__(self, vec: FloatVector, *, for_objective: bool) -> list[Tensor]: ...


class Flatten(Protocol):
    def __call__(self, value: Any, grads: Sequence[Tensor]) -> tuple[Any, FloatVector]: ...


class Codec(NamedTuple):
    """Conversions for one layout, built once before SciPy starts.

    ``unflatten(vec, for_objective=...)`` turns SciPy's float64 vector into one tensor per key
    (in layout order) with each entry's dtype, shape and device; ``for_objective=True`` gives
    what the objective sees (PyTorch: leaves that require grad), ``False`` what results and
    callbacks hold (PyTorch: plain tensors that do not require grad).

    ``flatten(value, grads)`` validates the gradients (a list in layout order), concatenates them
    and returns ``(value, float64 vector)``; ``value`` comes back unconverted unless the backend
    moved it to the host together with the gradient (then a float).
    """

    unflatten: Unflatten
    flatten: Flatten


class Backend(NamedTuple):
    """The record that adapts one framework to the core."""

    name: str
    owns: Callable[[Any], bool]
    describe: Callable[[Hashable, Any], EntryInfo]
    make_codec: Callable[[Layout], Codec]
    to_numpy: Callable[[Any], np.ndarray]

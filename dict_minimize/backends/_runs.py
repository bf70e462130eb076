"""Runs: consecutive entries of a layout that share one shape and one dtype.

The codecs work per run, not per key: a run of ``length`` entries of shape ``s`` is one block
``(length, *s)`` of the flat vector, split into its entries by one call (``unbind``, ``unstack``,
iterating a NumPy array), and its gradients are joined by one ``stack``. A dict of 2,000 vectors
of shape (8,) is one run: a handful of framework calls per evaluation instead of thousands.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from dict_minimize._structure.layout import Layout


class Run(NamedTuple):
    """``length`` consecutive entries from key index ``first``, each of ``shape`` and ``dtype``,
    stored at ``start:stop`` of the flat vector."""

    first: int
    length: int
    shape: tuple[int, ...]
    dtype: Any
    start: int
    stop: int

    @property
    def block_shape(self) -> tuple[int, ...]:
        """The shape of the run's block: ``(length, *shape)``."""
        return (self.length, *self.shape)


def shape_runs(layout: Layout, max_length: int | None = None) -> tuple[Run, ...]:
    """The layout cut into runs of equal shape and dtype, each of at most ``max_length`` entries.

    Example:
        >>> import numpy as np
        >>> from dict_minimize._structure.layout import make_layout
        >>> from dict_minimize.backends import get_backend
        >>> x0 = {"a": np.zeros(2), "b": np.ones(2), "c": np.zeros((2, 2)), "d": np.zeros(2)}
        >>> layout = make_layout(x0, get_backend("numpy"))
        >>> [(r.first, r.length, r.shape) for r in shape_runs(layout)]
        [(0, 2, (2,)), (2, 1, (2, 2)), (3, 1, (2,))]
    """
    offsets = layout.offsets
    limit = max_length if max_length is not None else len(layout.keys)
    firsts: list[int] = []  # where each run starts; a run ends where the next one starts
    prev: tuple | None = None
    length = 0
    for i, sig in enumerate(zip(layout.shapes, layout.dtypes, strict=True)):
        if sig == prev and length < limit:
            length += 1
        else:
            firsts.append(i)
            prev, length = sig, 1
    ends = [*firsts[1:], len(layout.keys)]
    return tuple(
        Run(a, b - a, layout.shapes[a], layout.dtypes[a], offsets[a], offsets[b])
        for a, b in zip(firsts, ends, strict=True)
    )


__all__ = ["Run", "shape_runs"]

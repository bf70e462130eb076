"""The evaluations of a flat NumPy dict objective as generated straight-line Python.

Thousands of tiny solves (``minimize_many``, a loop of per-segment calibrations) spend much of
their time in the bridge's per-evaluation Python: SciPy's vector split into the dict, the
gradient dict matched to x0's keys, the checks. For a flat ``dict`` of NumPy arrays with up to
:data:`MAX_KEYS` keys, solved more than once, the split and the match are generated for the
layout as one function each (:class:`Compiled`):

.. code-block:: python

    def value_and_grad(x):
        h = x.astype(c0)  # the one copy, in the entries' dtype
        out = fun({"a": h[0, ...], "w": h[1:4].reshape((3, 1))}, *args)
        if type(out) is tuple and len(out) == 2:
            value, grad = out
            if type(grad) is dict and len(grad) == 2:
                try:
                    g0 = grad["a"]; g1 = grad["w"]
                except KeyError:
                    return slow(out)
                value, g = flatten(value, [g0, g1])
                return (value if type(value) is float else to_float(value)), g
        return slow(out)

The entries are the views the codec's ``unflatten`` hands out (the same dtypes, shapes and
memory: views of one converted copy of SciPy's vector). The gradients go through the codec's
``flatten`` (its list-wide checks, its messages naming the key); where every entry is 0-d and
the gradients are NumPy float scalars they become one array at once, as ``flatten`` does.
Any other output (a list instead of a tuple, a Mapping that is not a dict, keys missing or
extra) goes to ``slow(out)``, the checking path, with what ``fun`` returned: ``fun`` runs once
per evaluation and every error reads as it does without the generated code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from dict_minimize._structure.tree_compile import Source, define
from dict_minimize.backends._common import FLOAT_SCALARS, scalar_to_float

if TYPE_CHECKING:
    from dict_minimize._structure.layout import Layout

#: larger dicts keep the codec's run-based split (one C-level iteration per run of equal shapes);
#: their evaluations cost more than the bridge's Python anyway
MAX_KEYS = 256

#: ``bind(fun, args, slow) -> value_and_grad(x) -> (float, float64 vector)``
Bind = Callable[[Callable, tuple, Callable[[Any], tuple[float, np.ndarray]]], Callable]


def _entry(layout: Layout, i: int, common: bool, src: Source) -> str:
    """The expression of entry ``i``: a view of (a conversion of) the copy ``h``."""
    a, b = layout.offsets[i], layout.offsets[i + 1]
    shape = layout.shapes[i]
    if common:
        if shape == ():
            return f"h[{a}, ...]"  # a 0-d view (``h[a]`` would be a NumPy scalar)
        block = f"h[{a}:{b}]"
    else:
        block = f"h[{a}:{b}].astype({src.const(layout.dtypes[i])}, copy=False)"
    return block if len(shape) == 1 else f"{block}.reshape({shape!r})"


class Compiled:
    """The generated functions of one layout, compiled at its second solve.

    Compiling costs 0.2 ms (3 keys) to 4 ms (256 keys): a layout solved once (most are) never
    pays it; a layout solved again (``minimize_many``, a loop of fits of one structure reuses
    it through the cache in ``_prepare``) pays it once.

    - ``split(vec)``: the codec's ``unflatten`` (one list of views of one copy), once compiled;
      None before.
    - ``bind_pair(fun, args, slow)``: see
      :attr:`~dict_minimize._structure.types.Codec.bind_pair`; None until compiled.
    """

    def __init__(self, layout: Layout, flatten: Callable) -> None:
        self.layout, self.flatten = layout, flatten
        self.split: Callable[[np.ndarray], list[np.ndarray]] | None = None
        self._bind: Bind | None = None
        self._uses = 0

    def bind_pair(self, fun: Callable, args: tuple, slow: Callable) -> Callable | None:
        if self._bind is None:
            self._uses += 1
            if self._uses != 2:
                return None
            self.split, self._bind = _compile(self.layout, self.flatten)
        return self._bind(fun, args, slow)


def supported(layout: Layout) -> bool:
    """A flat ``dict`` of at most :data:`MAX_KEYS` keys."""
    return layout.tree is None and layout.factory is dict and len(layout.keys) <= MAX_KEYS


def _compile(layout: Layout, flatten: Callable) -> tuple[Callable, Bind]:
    """``split`` and ``bind`` for ``layout`` (see the module's docstring)."""
    dtypes = layout.dtypes
    common = all(d == dtypes[0] for d in dtypes)
    src = Source()
    src.namespace.update(flatten=flatten, to_float=scalar_to_float)
    keys = [src.const(k) for k in layout.keys]
    entries = [_entry(layout, i, common, src) for i in range(len(keys))]
    display = ", ".join(f"{k}: {e}" for k, e in zip(keys, entries, strict=True))
    names = [f"g{i}" for i in range(len(keys))]
    fetch = "; ".join(f"{g} = grad[{k}]" for g, k in zip(names, keys, strict=True))
    convert = f"value, g = flatten(value, [{', '.join(names)}])"
    if all(s == () for s in layout.shapes):  # NumPy float scalars: one array of them
        src.namespace.update(FS=FLOAT_SCALARS, array=np.array, float64=np.float64)
        scalars = " and ".join(f"type({g}) in FS" for g in names)
        convert = (
            f"if {scalars}:\n                    g = array(({', '.join(names)},), float64)\n"
            f"                else:\n                    {convert}"
        )
    transfer = src.const(dtypes[0] if common else np.dtype(np.float64))
    source = f"""def split(x):
    h = x.astype({transfer})
    return [{", ".join(entries)}]

def bind(fun, args, slow):
    def value_and_grad(x):
        h = x.astype({transfer})
        out = fun({{{display}}}, *args)
        if type(out) is tuple and len(out) == 2:
            value, grad = out
            if type(grad) is dict and len(grad) == {len(keys)}:
                try:
                    {fetch}
                except KeyError:
                    return slow(out)
                {convert}
                return (value if type(value) is float else to_float(value)), g
        return slow(out)
    return value_and_grad
"""
    bind = define(source, "bind", src, label="numpy")
    assert bind is not None  # pragma: no cover - MAX_KEYS keeps the source small
    return src.namespace["split"], bind


__all__ = ["MAX_KEYS", "Compiled", "supported"]

"""SciPy's own least_squares and root tests, run through dict_minimize.

The shim a SciPy user would write when swapping the import: ``x0`` becomes the one-key dict
``{"x": x0}``, every callable that takes ``x`` (``fun``, ``jac``, ``callback``) takes the dict and
returns what it returned before, and the result's ``x`` / ``fun`` / ``grad`` / ``active_mask``
are flattened back to the 1-D arrays SciPy gives. Every other argument passes through unchanged.

``patch()`` swaps ``scipy.optimize.least_squares`` and ``scipy.optimize.root`` (and the names
the test files import them from) for these conversions and returns a function that restores
the originals; ``unpatch()`` does the same for the last ``patch()``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

#: the test files of scipy/optimize/tests this shim covers (test_nonlin imports test_minpack)
TEST_FILES: list[str] = [
    "test_least_squares.py",
    "test__root.py",
    "test_minpack.py",
    "test_nonlin.py",
]

#: pytest node id -> the reason, one row of docs/guide/scipy-differences.md
KNOWN: dict[str, str] = {}

KEY = "x"


def _x(d: Any) -> Any:
    return d[KEY]


def _wrap_x(f: Any) -> Any:
    """``f(x, *a, **k)`` as ``f(x_dict, *a, **k)``; anything not callable passes unchanged."""
    if not callable(f):
        return f

    def g(d: Any, *a: Any, **k: Any) -> Any:
        return f(_x(d), *a, **k)

    return g


def _lsq_callback(cb: Any) -> Any:
    """SciPy's two callback signatures: ``cb(intermediate_result)`` or ``cb(x)``."""
    if cb is None:
        return None
    try:
        params = inspect.signature(cb).parameters
    except (TypeError, ValueError):
        params = {}
    if set(params) == {"intermediate_result"}:
        return cb
    return _wrap_x(cb)


def _flat(v: Any) -> Any:
    if isinstance(v, dict):
        v = v[KEY]
    return np.ravel(np.asarray(v))


def _x0(x0: Any) -> dict[str, Any]:
    """SciPy's own first step (``np.atleast_1d``, integers as float64), then ``{"x": x}``."""
    x = np.atleast_1d(np.asarray(x0))
    return {KEY: x.astype(np.float64) if x.dtype.kind in "biu" else x}


def least_squares(fun: Callable, x0: Any, jac: Any = "2-point", **kw: Any) -> Any:
    """``scipy.optimize.least_squares`` through ``dict_minimize.least_squares``."""
    import dict_minimize

    if "callback" in kw:
        kw["callback"] = _lsq_callback(kw["callback"])
    res = dict_minimize.least_squares(_wrap_x(fun), _x0(x0), jac=_wrap_x(jac), **kw)
    res.x = _flat(res.x)
    res.fun = _flat(res.fun)
    res.grad = _flat(res.grad)
    res.active_mask = _flat(res.active_mask)
    return res


def root(fun: Callable, x0: Any, args: Any = (), method: str = "hybr", jac: Any = None,
         **kw: Any) -> Any:
    """``scipy.optimize.root`` through ``dict_minimize.root``."""
    import dict_minimize

    if kw.get("callback") is not None:
        kw["callback"] = _wrap_x(kw["callback"])
    res = dict_minimize.root(_wrap_x(fun), _x0(x0), args=args, method=method,
                             jac=_wrap_x(jac), **kw)
    res.x = _flat(res.x)
    res.fun = _flat(res.fun)
    return res


def _targets() -> list[tuple[Any, str, Any]]:
    import scipy.optimize

    return [(scipy.optimize, "least_squares", least_squares), (scipy.optimize, "root", root)]


_RESTORE: list[Callable[[], None]] = []


def patch() -> Callable[[], None]:
    """Route SciPy's least_squares and root through the package; returns the restore function."""
    import dict_minimize  # noqa: F401  (bound to SciPy's functions before they are swapped)

    saved = [(mod, name, getattr(mod, name)) for mod, name, _ in _targets()]
    for mod, name, new in _targets():
        setattr(mod, name, new)

    def restore() -> None:
        for mod, name, old in saved:
            setattr(mod, name, old)

    _RESTORE.append(restore)
    return restore


def unpatch() -> None:
    """Restore what the last :func:`patch` replaced."""
    if _RESTORE:
        _RESTORE.pop()()

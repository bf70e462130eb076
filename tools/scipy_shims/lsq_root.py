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
import sys
import types
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
_SHAPED_X0 = (
    "Entries keep their shapes: fun gets each entry of x0 in its own shape (a 2-D x0 stays "
    "2-D), where SciPy's least_squares refuses an x0 of more than one dimension and root's "
    "'hybr'/'lm' flatten it (docs/guide/scipy-differences.md, least_squares and root)"
)
_SHAPED_RESIDUALS = (
    "Residuals of any shape: fun may return a tensor of any shape (or a dict of them), "
    "flattened for SciPy, where SciPy's least_squares refuses residuals of more than one "
    "dimension (docs/guide/scipy-differences.md, least_squares and root)"
)
KNOWN: dict[str, str] = {
    **{
        f"test_least_squares.py::{cls}::test_x0_multidimensional": _SHAPED_X0
        for cls in ("TestTRF", "TestDogbox", "TestLM")
    },
    **{
        f"test_least_squares.py::{cls}::test_fun_wrong_dimensions": _SHAPED_RESIDUALS
        for cls in ("TestTRF", "TestDogbox", "TestLM")
    },
    "test_minpack.py::TestRootHybr::test_pressure_network_with_gradient": _SHAPED_X0,
}

KEY = "x"


def _x(d: Any) -> Any:
    return d[KEY]


class _OnX:
    """``f(x, *a, **k)`` as ``f(x_dict, *a, **k)`` (a class, so that worker pools pickle it)."""

    def __init__(self, f: Callable) -> None:
        self.f = f

    def __call__(self, d: Any, *a: Any, **k: Any) -> Any:
        return self.f(_x(d), *a, **k)


def _wrap_x(f: Any) -> Any:
    """``f`` on the dict; anything not callable passes unchanged."""
    return _OnX(f) if callable(f) else f


class _WithResult:
    """A callback taking ``intermediate_result``: its ``x`` flattened back."""

    def __init__(self, cb: Callable) -> None:
        self.cb = cb

    def __call__(self, intermediate_result: Any) -> Any:
        intermediate_result.x = _flat(intermediate_result.x)
        return self.cb(intermediate_result=intermediate_result)


def _lsq_callback(cb: Any) -> Any:
    """SciPy's two callback signatures: ``cb(intermediate_result)`` or ``cb(x)``."""
    if cb is None:
        return None
    try:
        params = set(inspect.signature(cb).parameters)
    except (TypeError, ValueError):
        params = set()
    if params == {"intermediate_result"}:
        return _WithResult(cb)
    return _wrap_x(cb)


def _flat(v: Any) -> Any:
    if isinstance(v, dict):
        v = v[KEY]
    return np.ravel(np.asarray(v))


def _x0(x0: Any) -> dict[str, Any]:
    """SciPy's own first step (``np.atleast_1d``, integers as float64), then ``{"x": x}``."""
    x = np.atleast_1d(np.asarray(x0))
    return {KEY: x.astype(np.float64) if x.dtype.kind in "biu" else x}


def least_squares(
    fun: Callable,
    x0: Any,
    jac: Any = "2-point",
    bounds: Any = (-np.inf, np.inf),
    method: str = "trf",
    ftol: Any = 1e-8,
    xtol: Any = 1e-8,
    gtol: Any = 1e-8,
    x_scale: Any = None,
    loss: Any = "linear",
    f_scale: Any = 1.0,
    diff_step: Any = None,
    tr_solver: Any = None,
    tr_options: Any = None,
    jac_sparsity: Any = None,
    max_nfev: Any = None,
    verbose: Any = 0,
    args: Any = (),
    kwargs: Any = None,
    callback: Any = None,
    workers: Any = None,
) -> Any:
    """``scipy.optimize.least_squares``'s signature, run by ``dict_minimize.least_squares``."""
    import dict_minimize

    res = dict_minimize.least_squares(
        _wrap_x(fun),
        _x0(x0),
        jac=_wrap_x(jac),
        bounds=bounds,
        method=method,
        ftol=ftol,
        xtol=xtol,
        gtol=gtol,
        x_scale=x_scale,
        loss=loss,
        f_scale=f_scale,
        diff_step=diff_step,
        tr_solver=tr_solver,
        tr_options=tr_options,
        jac_sparsity=jac_sparsity,
        max_nfev=max_nfev,
        verbose=verbose,
        args=args,
        kwargs=kwargs,
        callback=_lsq_callback(callback),
        workers=workers,
    )
    res.x = _flat(res.x)
    res.fun = _flat(res.fun)
    res.grad = _flat(res.grad)
    res.active_mask = _flat(res.active_mask)
    return res


def root(
    fun: Callable,
    x0: Any,
    args: Any = (),
    method: str = "hybr",
    jac: Any = None,
    tol: Any = None,
    callback: Any = None,
    options: Any = None,
) -> Any:
    """``scipy.optimize.root``'s signature, run by ``dict_minimize.root``."""
    import dict_minimize

    if jac is True:  # fun returns (f, J): the residuals stay flat, the Jacobian a matrix
        res = dict_minimize.root(
            _wrap_x(fun),
            _x0(x0),
            args=args,
            method=method,
            jac=True,
            tol=tol,
            callback=_wrap_x(callback),
            options=options,
        )
    else:
        res = dict_minimize.root(
            _wrap_x(fun),
            _x0(x0),
            args=args,
            method=method,
            jac=_wrap_x(jac),
            tol=tol,
            callback=_wrap_x(callback),
            options=options,
        )
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


#: the name worker processes import this module by (the repository root is on their path)
_IMPORTABLE = "tools.scipy_shims.lsq_root"


def _register() -> None:
    """Make the wrappers picklable by reference in worker pools (SciPy's ``workers=``).

    A runner may load this file by path under another name; forkserver workers then cannot
    import that name. The wrapper classes are given the importable name, and this module's
    objects are registered under it so the parent pickles the very same classes.
    """
    if __name__ == _IMPORTABLE or _IMPORTABLE in sys.modules:
        return
    module = types.ModuleType(_IMPORTABLE)
    module.__dict__.update(globals())
    for cls in (_OnX, _WithResult):
        cls.__module__ = _IMPORTABLE
    sys.modules[_IMPORTABLE] = module


_register()

"""Limit BLAS threads around SciPy's solve.

SciPy >= 1.15's L-BFGS-B calls BLAS on vectors of the problem's size at every iteration; with
OpenBLAS's default thread pool that is many times slower for small and medium problems than one
thread (on a 2-core machine: 10x to 50x per iteration below ~100k variables; see
``benchmarks/README.md``). :func:`limit_blas_threads` is a context manager that caps the BLAS
libraries SciPy loaded (by default only those: a NumPy objective's own matrix products keep
their threads) for the duration of a solve.

It does nothing when ``threadpoolctl`` is not installed (it is an optional dependency), when
``limit`` is None, or when the environment variable ``DICT_MINIMIZE_BLAS_THREADS`` is ``off``
(or ``0``); an integer there overrides ``limit``. Nested and concurrent uses are safe: the first
entry applies the limit, the last exit restores the previous settings.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

#: environment variable: "off"/"0" disables the limit, an integer sets it
ENV_VAR = "DICT_MINIMIZE_BLAS_THREADS"

_lock = threading.Lock()
_depth = 0
_active: Any = None  # the limiter of the outermost entry, restored by the last exit
_controllers: dict[str, Any] = {}


def _setting(limit: int | None) -> int | None:
    """The limit in force: the environment variable wins over the argument."""
    raw = os.environ.get(ENV_VAR, "").strip().lower()
    if raw in ("off", "0", "none", "false", "no"):
        return None
    if raw:
        try:
            return max(int(raw), 1)
        except ValueError:
            return limit
    return limit


def _controller(scope: str) -> Any:
    """A cached threadpoolctl controller of the BLAS libraries in ``scope``, or None."""
    if scope in _controllers:
        return _controllers[scope]
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        _controllers[scope] = None
        return None
    import scipy.linalg  # (makes sure SciPy's BLAS is loaded before the scan)

    controller = ThreadpoolController().select(user_api="blas")
    if scope == "scipy":
        scipy_dir = os.path.dirname(os.path.dirname(os.path.abspath(scipy.linalg.__file__)))
        paths = [
            lib.filepath
            for lib in controller.lib_controllers
            if os.path.basename(os.path.dirname(lib.filepath)).startswith("scipy")
            or os.path.abspath(lib.filepath).startswith(scipy_dir)
        ]
        controller = controller.select(filepath=paths) if paths else controller
    _controllers[scope] = controller
    return controller


@contextlib.contextmanager
def limit_blas_threads(limit: int | None = 1, *, scope: str = "scipy") -> Iterator[None]:
    """Cap BLAS threads at ``limit`` inside the ``with`` block.

    Args:
        limit: the number of threads (None: do nothing). The environment variable
            ``DICT_MINIMIZE_BLAS_THREADS`` overrides it (``off`` disables).
        scope: ``'scipy'`` limits only the BLAS libraries SciPy ships and loaded (L-BFGS-B's);
            ``'all'`` every BLAS library in the process (NumPy's too).

    Example:
        >>> import numpy as np, scipy.optimize
        >>> with limit_blas_threads(1):
        ...     res = scipy.optimize.minimize(lambda x: float(x @ x), np.ones(3), method="L-BFGS-B")
        >>> bool(res.success)
        True
    """
    global _depth, _active
    if scope not in ("scipy", "all"):
        raise ValueError(f"scope must be 'scipy' or 'all'; got {scope!r}")
    n = _setting(limit)
    if n is None:
        yield
        return
    with _lock:
        controller = _controller(scope)
        if controller is not None and _depth == 0:
            _active = controller.limit(limits=n)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _active is not None:
                _active.restore_original_limits()
                _active = None


_UNLIMITED = contextlib.nullcontext()


def blas_limit(limit: int | None) -> contextlib.AbstractContextManager:
    """:func:`limit_blas_threads` where a limit is in force, else a context that does nothing
    (a solve without a limit, the default, pays nothing for the ``with``).

    Example:
        >>> import os
        >>> os.environ.get(ENV_VAR) is not None or blas_limit(None) is blas_limit(None)
        True
        >>> with blas_limit(1):
        ...     pass
    """
    return _UNLIMITED if _setting(limit) is None else limit_blas_threads(limit)


__all__ = ["ENV_VAR", "blas_limit", "limit_blas_threads"]

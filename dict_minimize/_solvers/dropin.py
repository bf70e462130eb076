"""The drop-in ``minimize`` of the original package, built once for each framework module."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dict_minimize._errors import FRAMEWORK_NAMES
from dict_minimize._solvers.minimize import solve
from dict_minimize.backends import get_backend

_DOC = """Minimize ``fun`` over a dict of {name} tensors: the original ``dict_minimize`` API.

A thin shim over :func:`dict_minimize.minimize` with the backend fixed to {name} and
``jac=True``; it returns only the solution, as the original package did.

Args:
    fun: ``fun(x_dict, *args) -> (value, grad_dict)``; ``grad_dict`` has the keys and shapes of
        ``x0_dict`` (any key order).
    x0_dict: the starting point, a dict (or OrderedDict) of {name} tensors.
    lb_dict: optional per-key lower bounds (any subset of keys; scalars broadcast).
    ub_dict: optional per-key upper bounds, the same way.
    args: extra positional arguments for ``fun``.
    method: any ``scipy.optimize.minimize`` method name.
    tol: tolerance for termination.
    callback: ``callback(x_dict)`` after each iteration (or SciPy's
        ``callback(intermediate_result)``); raise ``StopIteration`` to stop.
    options: solver options, passed to SciPy.

Returns:
    OrderedDict: the solution, with the keys, order, tensor type, dtype, shape and device of
    ``x0_dict``. Use :func:`dict_minimize.minimize` to also get ``fun``, ``nit``, ``success``...

Raises:
    KeyboardInterrupt: Ctrl-C still stops the script; the best point seen so far is attached
        as ``exc.dict_minimize_result`` (its ``.x`` is the dict), so nothing is lost.

Example:
{example}
"""


def get_dtype(x: Any) -> Any:
    """The original package's ``get_dtype``: the framework's dtype of a tensor (``x.dtype``).

    Example:
        >>> import numpy as np
        >>> get_dtype(np.zeros(2, dtype=np.float32))
        dtype('float32')
    """
    return x.dtype


def make_dropin(backend: str, example: str) -> Callable[..., OrderedDict]:
    """Build ``dict_minimize.<backend>_api.minimize``; fails early if the framework is missing."""
    get_backend(backend)  # ImportError naming the extra, at import of the drop-in module

    def minimize(
        fun: Callable,
        x0_dict: Mapping[Any, Any],
        *,
        lb_dict: Mapping[Any, Any] | None = None,
        ub_dict: Mapping[Any, Any] | None = None,
        args: Sequence[Any] = (),
        method: str | Callable | None = None,
        tol: float | None = None,
        callback: Callable | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> OrderedDict:
        res = solve(
            fun,
            x0_dict,
            args=tuple(args) if isinstance(args, (list, tuple)) else args,
            method=method,
            jac=True,
            hess=None,
            hessp=None,
            constraints=(),
            lb_dict=lb_dict,
            ub_dict=ub_dict,
            tol=tol,
            callback=callback,
            options=options,
            backend=backend,
            jit=None,
            nonfinite="inf",
            interrupt="raise",
            compat=True,
        )
        return OrderedDict(res.x.items())

    minimize.__module__ = f"dict_minimize.{backend}_api"
    minimize.__doc__ = _DOC.format(name=FRAMEWORK_NAMES[backend], example=example)
    return minimize

"""What runs where the problems are solved, and how problems and results travel.

A task solves a chunk of problems (:func:`_solve_chunk`). In this process a problem is the
caller's own x0; anywhere else it is x0's :class:`Layout` and its values as one float64
vector, and the result comes back with its tensors (``x``, ``jac``, the trace's points) as
float64 vectors, rebuilt on the caller's side like x0 (:func:`_unpack`). ``fun`` and the
shared keywords travel once per batch, serialized with cloudpickle when it is installed.
"""

from __future__ import annotations

import contextlib
import hashlib
import pickle
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from dict_minimize._problem.result import failed_result as _failure
from dict_minimize._problem.trace import Trace
from dict_minimize._solvers.minimize import OptimizeResult, minimize
from dict_minimize._structure.layout import Layout, values_by_key

_INSTALL_DASK = "pip install 'dict_minimize[dask]'"


# --- serialization ----------------------------------------------------------------------------


def _pickler() -> Any:
    """cloudpickle when installed (functions defined anywhere travel), else pickle."""
    try:
        import cloudpickle
    except ImportError:
        return pickle
    return cloudpickle


def _dumps(obj: Any, what: str) -> bytes:
    pickler = _pickler()
    try:
        return bytes(pickler.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception as exc:
        hint = (
            ""
            if pickler is not pickle
            else f"; install cloudpickle to send lambdas and closures ({_INSTALL_DASK})"
        )
        raise TypeError(
            f"minimize_many could not serialize {what} for the executor's workers "
            f"({type(exc).__name__}: {exc}){hint}"
        ) from exc


#: the functions a worker process has deserialized, by digest (a batch sends its function
#: with every chunk; each worker unpickles it once)
_LOADED: dict[str, Any] = {}


def _load_shared(blob: bytes) -> Any:
    digest = hashlib.sha1(blob).hexdigest()
    shared = _LOADED.get(digest)
    if shared is None:
        if len(_LOADED) >= 8:
            _LOADED.clear()
        shared = _LOADED[digest] = pickle.loads(blob)
    return shared


# --- one problem ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Problem:
    """One problem as it travels: x0 as its layout and float64 values, or x0 itself."""

    index: int
    x0: Any
    args: Any
    lb_dict: Any
    ub_dict: Any
    layout: Layout | None = None
    #: why x0 could not be laid out here (the problem is then never sent)
    error: BaseException | None = None


def _solve_one(fun: Callable, problem: _Problem, x0: Any, options: Mapping[str, Any]) -> Any:
    try:
        return minimize(
            fun,
            x0,
            args=problem.args,
            lb_dict=problem.lb_dict,
            ub_dict=problem.ub_dict,
            **options,
        )
    except Exception as exc:
        return _failure(exc, x0)


def _caller_x64() -> bool:
    """Whether the caller runs JAX with float64 on (globally or in a ``jax.enable_x64``
    context, which other threads and processes do not see)."""
    jax = sys.modules.get("jax")
    return bool(jax is not None and getattr(jax.config, "jax_enable_x64", False))


def _framework_context(layout: Layout | None, x64: bool) -> contextlib.AbstractContextManager:
    """What the task's framework needs to hold x0's dtypes as the caller did: JAX's float64,
    off by default, and on in the caller when it made float64 JAX arrays."""
    if x64 or (
        layout is not None
        and layout.backend_name == "jax"
        and any(dt is not None and dt.itemsize == 8 for dt in layout.np_dtypes)
    ):
        import jax

        return jax.enable_x64(True)
    return contextlib.nullcontext()


def _codec(layout: Layout) -> Any:
    from dict_minimize.backends import get_backend

    return get_backend(layout.backend_name).make_codec(layout)


def _to_flat(value: Any, layout: Layout, codec: Any) -> np.ndarray:
    _, flat = codec.flatten(None, values_by_key(value, layout, what="result"))
    return np.array(flat, dtype=np.float64, copy=True)


def _from_flat(flat: np.ndarray, layout: Layout, codec: Any) -> Any:
    return layout.build(codec.unflatten(np.asarray(flat, dtype=np.float64), for_objective=False))


def _pack(res: Any, layout: Layout, codec: Any) -> dict[str, Any]:
    """A result as it travels back: its tensors (x, jac, the trace's points) as float64."""
    fields = dict(res)
    fields["x"] = _to_flat(res["x"], layout, codec)
    if res.get("jac") is not None:
        fields["jac"] = _to_flat(res["jac"], layout, codec)
    trace = res.get("trace")
    if isinstance(trace, Trace) and trace.x is not None:
        fields["trace"] = (trace, [_to_flat(x, layout, codec) for x in trace.x])
    return fields


def _unpack(fields: dict[str, Any], layout: Layout, codec: Any) -> OptimizeResult:
    out = OptimizeResult(fields)
    out["x"] = _from_flat(fields["x"], layout, codec)
    if isinstance(fields.get("jac"), np.ndarray):
        out["jac"] = _from_flat(fields["jac"], layout, codec)
    trace = fields.get("trace")
    if isinstance(trace, tuple):
        tr, points = trace
        tr._x = [_from_flat(p, layout, codec) for p in points]
        out["trace"] = tr
    return out


def _solve_sent(fun: Callable, problem: _Problem, options: Mapping[str, Any]) -> dict[str, Any]:
    """A problem that travelled: x0 rebuilt from its layout, solved, the result packed."""
    layout = problem.layout
    assert layout is not None
    try:
        codec = _codec(layout)  # in the framework's context: JAX picks its transfer dtype here
        x0 = _from_flat(problem.x0, layout, codec)
        res = _solve_one(fun, problem, x0, options)
        return _pack(res, layout, codec)
    except Exception as exc:  # rebuilding x0 or packing the result failed
        fields = dict(_failure(exc, None))
        fields["x"] = problem.x0
        return fields


def _solve_chunk(shared: Any, chunk: Any) -> list[tuple[int, Any]]:
    """A task: solve every problem of a chunk; what comes back is (index, result) pairs.

    ``shared`` and ``chunk`` are serialized bytes when the task runs elsewhere (a process, a
    Dask worker), or the objects themselves in this process.
    """
    remote = isinstance(chunk, bytes)
    if remote:
        shared = _load_shared(shared)
        chunk = pickle.loads(chunk)
    fun, options, x64 = shared
    done = []
    for problem in chunk:
        if problem.layout is None:  # in this process: the caller's own x0
            with _framework_context(None, x64):
                done.append((problem.index, _solve_one(fun, problem, problem.x0, options)))
            continue
        with _framework_context(problem.layout, x64):
            done.append((problem.index, _solve_sent(fun, problem, options)))
    if remote:
        return [(i, _dumps(r, "a result")) for i, r in done]
    return done

"""Many independent problems, and one problem from many starts, on any executor.

:func:`minimize_many` solves a batch of independent problems, :func:`multistart` one problem
from many start points. Both hand their problems to one code path whose only variable part
is the executor: ``None`` (in this process, one after the other), any
``concurrent.futures.Executor``, or a ``dask.distributed.Client``.

In this process (``None``, a ``ThreadPoolExecutor``) problems are solved on the caller's
tensors. Anywhere else, what crosses the wire is, per problem, x0's :class:`Layout` and its
values as one float64 vector (exact for every floating dtype), and once per batch the function
and the shared keywords, serialized with cloudpickle (as Dask does: lambdas and closures
travel). The worker rebuilds x0 in its framework, dtype and device from the layout, solves,
and sends back the result with ``x`` and ``jac`` as float64 vectors, which the caller turns
into tensors like x0's again: results equal the in-process ones bit for bit.

A failure in one problem never loses the others: an exception raised while solving it (its
``fun`` raised, its x0 was malformed, its objective was not finite at x0) becomes that
problem's result, with ``success=False``, ``status=-1``, the message and the exception's type
name in ``exception``. Problems are sent in chunks; a chunk whose task failed as a whole (a
worker lost) is sent again one problem per task, so only the problem that kills its worker is
reported as failed.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import math
import pickle
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from dict_minimize._errors import fmt_key, type_name
from dict_minimize._problem.prepare import prepare
from dict_minimize._problem.trace import problems_bar as _progress_bar
from dict_minimize._scale.tasks import (
    _caller_x64,
    _codec,
    _dumps,
    _failure,
    _from_flat,
    _Problem,
    _solve_chunk,
    _unpack,
)
from dict_minimize._solvers.minimize import OptimizeResult, _note

__all__ = ["minimize_many", "multistart"]

#: keywords minimize_many and multistart set themselves (per problem, or not at all)
_OWN = frozenset({"fun", "x0", "args", "lb_dict", "ub_dict", "progress"})
#: the number of chunks a batch is cut into by default, on an executor
_CHUNKS = 32
#: the largest default chunk
_MAX_CHUNK = 100


# --- executors --------------------------------------------------------------------------------


def _itself(value: Any) -> Any:
    return value


def _is_dask_client(executor: Any) -> bool:
    mod = type(executor).__module__ or ""
    return mod.startswith("distributed") and hasattr(executor, "scatter")


def _in_process(executor: Any) -> bool:
    return executor is None or isinstance(executor, concurrent.futures.ThreadPoolExecutor)


class _Deferred:
    """A chunk to solve in this process when its result is asked for (``executor=None``).

    Solving at submission would finish the whole batch before the first result is taken, and a
    progress bar would jump from 0 to the end; deferred, each problem is solved as the caller
    takes it, and the bar moves with it.
    """

    def __init__(self, shared: Any, chunk: Any) -> None:
        self.shared, self.chunk = shared, chunk

    def result(self) -> Any:
        return _solve_chunk(self.shared, self.chunk)


class _Runner:
    """submit/as_completed over the executor kinds: the only part that differs between them."""

    def __init__(self, executor: Any) -> None:
        if not (
            executor is None
            or isinstance(executor, concurrent.futures.Executor)
            or _is_dask_client(executor)
        ):
            raise TypeError(
                "executor must be None, a concurrent.futures.Executor or a "
                f"dask.distributed.Client; got a {type_name(executor)}"
            )
        self.executor = executor
        self.dask = _is_dask_client(executor)

    def share(self, blob: Any) -> Any:
        """What every task gets as ``shared``. On Dask a task of its own that returns it: each
        worker fetches it once, and Dask recomputes it if the workers holding it are lost
        (scattered data would be gone for good, and every task needing it with it)."""
        if self.dask:
            return self.executor.submit(_itself, blob, pure=False)
        return blob

    def submit(self, shared: Any, chunk: Any) -> Any:
        if self.executor is None:
            return _Deferred(shared, chunk)
        if self.dask:
            return self.executor.submit(_solve_chunk, shared, chunk, pure=False)
        return self.executor.submit(_solve_chunk, shared, chunk)

    def as_completed(self, futures: list[Any]) -> Iterator[Any]:
        if self.executor is None:  # _Deferred chunks: solved one by one, in order
            return iter(futures)
        if not self.dask:
            return concurrent.futures.as_completed(futures)
        from distributed import as_completed

        # chunks that could not even be submitted are local futures, already failed
        local = [f for f in futures if isinstance(f, concurrent.futures.Future)]
        remote = [f for f in futures if not isinstance(f, concurrent.futures.Future)]
        return itertools.chain(local, as_completed(remote) if remote else ())


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _run_all(
    fun: Callable,
    problems: list[_Problem],
    options: dict[str, Any],
    executor: Any,
    chunksize: int | None,
    progress: Any,
) -> list[Any]:
    """Solve every problem on the executor; the results in the problems' order."""
    runner = _Runner(executor)
    n = len(problems)
    results: list[Any] = [None] * n
    if not n:
        return results
    remote = not _in_process(executor)
    if chunksize is None:
        chunksize = 1 if executor is None else max(1, min(_MAX_CHUNK, n // _CHUNKS))
    bar = _progress_bar(progress, n)
    codecs: dict[int, Any] = {}

    def finish(index: int, value: Any) -> None:
        if remote:
            fields = pickle.loads(value) if isinstance(value, bytes) else value
            layout = problems[index].layout
            assert layout is not None
            codec = codecs.get(id(layout))
            if codec is None:
                codec = codecs[id(layout)] = _codec(layout)
            results[index] = _unpack(fields, layout, codec)
        else:
            results[index] = value
        if bar is not None:
            bar.update(1)

    # problems whose x0 could not be laid out failed already, on this side
    todo = []
    for p in problems:
        if p.error is not None:
            results[p.index] = _failure(p.error, p.x0)
            if bar is not None:
                bar.update(1)
        else:
            todo.append(p)
    try:
        shared: Any = (fun, options, _caller_x64())
        if remote:
            shared = runner.share(_dumps(shared, "fun and the minimize keywords"))

        def send(chunk: list[_Problem]) -> Any:
            payload = _dumps(chunk, "the problems (x0, args, bounds)") if remote else chunk
            try:
                return runner.submit(shared, payload)
            except Exception as exc:  # a broken executor (BrokenProcessPool): fail the chunk
                failed: concurrent.futures.Future = concurrent.futures.Future()
                failed.set_exception(exc)
                return failed

        pending = {send(c): c for c in _chunks(todo, chunksize)}
        while pending:
            retry: list[list[_Problem]] = []
            for future in runner.as_completed(list(pending)):
                chunk = pending.pop(future)
                try:
                    done = future.result()
                except Exception as exc:  # the task failed as a whole: a worker lost
                    if len(chunk) > 1:
                        retry.extend([p] for p in chunk)
                    else:
                        fields = _failure(exc, None)
                        fields["message"] = (
                            f"the task solving this problem failed ({type(exc).__name__}: "
                            f"{exc}): its worker may have died"
                        )
                        p = chunk[0]
                        fields["x"] = p.x0 if not remote else np.asarray(p.x0)
                        finish(p.index, dict(fields) if remote else fields)
                    continue
                for index, value in done:
                    finish(index, value)
            pending = {send(c): c for c in retry}
    finally:
        if bar is not None:
            bar.close()
    return results


# --- the batch --------------------------------------------------------------------------------


def _per_problem(value: Any, n: int, what: str) -> list[Any]:
    """One value for every problem, or a list with one per problem."""
    if isinstance(value, list):
        if len(value) != n:
            raise ValueError(
                f"{what} is a list of {len(value)} entries, one per problem, but there are {n} "
                f"problems; pass one {what} for all (a tuple or other non-list value) or one "
                "per problem"
            )
        return value
    return [value] * n


def _check_options(options: Mapping[str, Any], caller: str) -> dict[str, Any]:
    clash = sorted(set(options) & _OWN)
    if clash:
        raise TypeError(f"{caller}() got an unexpected keyword argument {clash[0]!r}")
    callback = options.get("callback")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable; got a {type_name(callback)}")
    return dict(options)


def _check_chunksize(chunksize: Any) -> int | None:
    if chunksize is None:
        return None
    if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
        raise ValueError(f"chunksize must be None or a positive int; got {chunksize!r}")
    return chunksize


def _problems(
    x0s: list[Any], args: list[Any], lbs: list[Any], ubs: list[Any], remote: bool, backend: Any
) -> list[_Problem]:
    out = []
    for i, (x0, a, lb, ub) in enumerate(zip(x0s, args, lbs, ubs, strict=True)):
        if not remote:
            out.append(_Problem(i, x0, a, lb, ub))
            continue
        try:
            # the shared preparation: a batch of one structure shares one layout (and codec)
            _, layout, _, _, flat, _ = prepare(x0, backend, None, None)
            out.append(_Problem(i, np.array(flat, dtype=np.float64), a, lb, ub, layout))
        except Exception as exc:
            _note(exc, f"dict_minimize: in x0s[{i}]")
            out.append(_Problem(i, x0, a, lb, ub, error=exc))
    return out


def minimize_many(
    fun: Callable,
    x0s: Iterable[Any],
    *,
    args: Any = (),
    lb_dict: Any = None,
    ub_dict: Any = None,
    executor: Any = None,
    progress: bool | Mapping[str, Any] = False,
    chunksize: int | None = None,
    batched: bool = False,
    **options: Any,
) -> list[OptimizeResult]:
    """Solve many independent problems with :func:`~dict_minimize.minimize`, on any executor.

    One calibrator per segment, one fit per customer: thousands of small problems sharing one
    objective. Every problem is ``minimize(fun, x0s[i], args=..., lb_dict=..., ub_dict=...,
    **options)``; where it runs is the only thing the executor changes: the results are the
    same, bit for bit, in the order of ``x0s``.

    Args:
        fun: the objective, as for :func:`~dict_minimize.minimize` (with ``jac=True``, the
            default, it returns ``(value, grad_dict)``).
        x0s: the start points, one per problem (a list or any iterable of dicts of tensors;
            problems may differ in keys, shapes and frameworks).
        args: ``fun``'s extra arguments: one value for every problem (a tuple, or one
            non-list object), or a **list** with one per problem.
        lb_dict: lower bounds: one dict for every problem, or a list with one per problem
            (``None`` entries: unbounded).
        ub_dict: upper bounds, the same way.
        executor: where the problems run. ``None`` (the default): here, one after the other.
            A ``concurrent.futures.Executor``: a ``ThreadPoolExecutor`` runs them in this
            process on your tensors; a ``ProcessPoolExecutor`` (or any other) gets each x0 as
            its layout and float64 values, and ``fun`` and the keywords serialized once per
            batch with cloudpickle. A ``dask.distributed.Client``: the same, through its
            futures (``fun`` and the keywords are sent to every worker once).
        progress: a tqdm bar over completed problems (``[progress]`` extra); a dict passes
            options to ``tqdm``.
        chunksize: problems per task on an executor; by default the batch is cut into about
            32 tasks (at most 100 problems each), so thousands of tiny solves are not
            thousands of round trips. In this process with ``executor=None`` it has no effect.
        batched: solve the problems as one batch with
            :func:`~dict_minimize.minimize_batched`: each keeps its own SciPy run, and ``fun``
            is vectorized over the unfinished ones (PyTorch, JAX, TensorFlow), one call per
            round; the results equal the unbatched ones. The problems must share one
            structure (keys, shapes, dtypes, devices); a list of per-problem ``args`` is
            stacked into ``batch_args``; no executor. See [Batched solves](guide/batched.md).
        **options: every other keyword of :func:`~dict_minimize.minimize` (``method``,
            ``jac``, ``tol``, ``options``, ``trace``, ``callback``, ...), the same for every
            problem. ``callback`` runs where the problem runs, and so does ``threads``
            (by default ``"auto"``: each small solve on one thread, in this process and on
            workers alike).

    Returns:
        list[OptimizeResult]: one per problem, in the order of ``x0s``. A problem whose solve
            raised (``fun`` raised, a malformed x0, a non-finite objective at x0, its worker
            lost) has ``success=False``, ``status=-1``, ``message`` (the exception), its type
            name in ``exception`` and the traceback in ``traceback``; ``x`` is the best point
            seen (x0 if none). The others are unaffected.

    Raises:
        TypeError, ValueError: for malformed arguments of minimize_many itself (an ``args`` or
            bound list of the wrong length, an unknown executor); a malformed problem is
            reported in its result instead.

    Example:
        >>> import numpy as np
        >>> from dict_minimize import minimize_many
        >>> def fun(d, target):
        ...     r = d["x"] - target
        ...     return float(r @ r), {"x": 2 * r}
        >>> results = minimize_many(fun, [{"x": np.zeros(2)}] * 3, args=[(1.0,), (2.0,), (3.0,)])
        >>> tuple(round(float(r.x["x"].mean()), 6) for r in results)
        (1.0, 2.0, 3.0)
    """
    if not callable(fun):
        raise TypeError(f"fun must be callable; got a {type_name(fun)}")
    if isinstance(x0s, Mapping):
        raise TypeError(
            "x0s must be a list (or iterable) of x0 dicts, one per problem; got one dict: "
            "wrap it in a list, or use minimize"
        )
    try:
        starts = list(x0s)
    except TypeError:
        raise TypeError(
            f"x0s must be a list (or iterable) of x0 dicts; got a {type_name(x0s)}"
        ) from None
    options = _check_options(options, "minimize_many")
    chunksize = _check_chunksize(chunksize)
    _Runner(executor)  # check it before any work
    n = len(starts)
    per_args = [a if isinstance(a, tuple) else (a,) for a in _per_problem(args, n, "args")]
    lbs = _per_problem(lb_dict, n, "lb_dict")
    ubs = _per_problem(ub_dict, n, "ub_dict")
    if batched:
        if executor is not None:
            raise TypeError("batched=True solves the batch in this process: pass executor=None")
        from dict_minimize._scale.many_batched import solve_many_batched

        per = None if not isinstance(args, list) else per_args
        shared = () if per is not None else per_args[0] if per_args else ()
        return solve_many_batched(fun, starts, per, shared, lbs, ubs, options, progress)
    remote = not _in_process(executor)
    problems = _problems(starts, per_args, lbs, ubs, remote, options.get("backend"))
    return _run_all(fun, problems, options, executor, chunksize, progress)


# --- multi-start ------------------------------------------------------------------------------


def _uniform_starts(
    x0: Any, n: int, rng: np.random.Generator, lb_dict: Any, ub_dict: Any, backend: Any
) -> list[Any]:
    """``n`` points drawn uniformly inside the finite bounds, each a dict like ``x0``."""
    _, layout, codec, _, _, bounds = prepare(x0, backend, lb_dict, ub_dict)
    lb = np.full(layout.n, -np.inf) if bounds is None else np.asarray(bounds.lb, dtype=float)
    ub = np.full(layout.n, np.inf) if bounds is None else np.asarray(bounds.ub, dtype=float)
    open_ = ~(np.isfinite(lb) & np.isfinite(ub))
    if open_.any():
        keys = [k for i, k in enumerate(layout.keys) if open_[layout.slice_of(i)].any()]
        shown = ", ".join(fmt_key(k) for k in keys[:5]) + (", ..." if len(keys) > 5 else "")
        raise ValueError(
            f"multistart draws start points uniformly inside the bounds, and x0 key(s) {shown} "
            "have no finite lower and upper bound: give both in lb_dict/ub_dict, or pass a "
            "sampler(rng) -> x0 dict instead of x0"
        )
    return [_from_flat(rng.uniform(lb, ub), layout, codec) for _ in range(n)]


def _best_index(results: Sequence[Any], maximize: bool = False) -> int:
    """The lowest finite objective (the highest with ``maximize``; a successful run first on
    ties); 0 if none is finite."""
    best, key = 0, (math.inf, True)
    for i, r in enumerate(results):
        f = r.get("fun", math.nan)
        f = float(f) if f is not None else math.nan
        f = -f if maximize else f
        k = (f if math.isfinite(f) else math.inf, not bool(r.get("success", False)))
        if k < key:
            best, key = i, k
    return best


def multistart(
    fun: Callable,
    x0_or_sampler: Any,
    n: int,
    *,
    seed: Any,
    lb_dict: Mapping[Any, Any] | None = None,
    ub_dict: Mapping[Any, Any] | None = None,
    executor: Any = None,
    progress: bool | Mapping[str, Any] = False,
    args: Any = (),
    chunksize: int | None = None,
    batched: bool = False,
    **options: Any,
) -> OptimizeResult:
    """Minimize one problem from ``n`` start points; the best result, with every start's.

    For non-convex objectives: local methods find the minimum nearest their start, so start
    from many points and keep the best.

    Args:
        fun: the objective, as for :func:`~dict_minimize.minimize`.
        x0_or_sampler: a dict like x0 (its keys, shapes, dtypes and framework): the starts
            are drawn uniformly inside ``lb_dict``/``ub_dict``, which must be finite for every
            entry; or ``sampler(rng) -> x0 dict``, called ``n`` times with one NumPy
            ``Generator``.
        n: the number of starts (at least 1).
        seed: the seed of that ``Generator`` (anything ``numpy.random.default_rng`` takes):
            the same seed gives the same starts, and the same results on any executor.
        lb_dict: lower bounds, for the draws and for every solve.
        ub_dict: upper bounds, the same way.
        executor: where the solves run, as for :func:`minimize_many`.
        progress: a tqdm bar over completed starts.
        args: ``fun``'s extra arguments, the same for every start.
        chunksize: starts per task on an executor, as for :func:`minimize_many`.
        batched: solve the starts as one batch, as for :func:`minimize_many`.
        **options: every other keyword of :func:`~dict_minimize.minimize`.

    Returns:
        OptimizeResult: the start with the lowest finite ``fun`` (the highest with
            ``maximize=True``; a successful one on ties),
            with ``starts`` (every start's result, in draw order, each with its start point
            as ``x0``; the best is among them) and ``best_index`` (its position there).

    Example:
        >>> import numpy as np
        >>> from dict_minimize import multistart
        >>> def fun(d):  # two minima: x = -1 (f = -0.5) and x = 1 (f = 0.5)
        ...     x = d["x"]
        ...     return float((x**2 - 1) ** 2 + 0.5 * x), {"x": 4 * x * (x**2 - 1) + 0.5}
        >>> res = multistart(fun, {"x": np.float64(0.0)}, 8, seed=0,
        ...                  lb_dict={"x": -2.0}, ub_dict={"x": 2.0})
        >>> round(float(res.x["x"]), 2), len(res.starts)
        (-1.06, 8)
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int (the number of starts); got {n!r}")
    n = int(n)
    rng = np.random.default_rng(seed)
    if callable(x0_or_sampler) and not isinstance(x0_or_sampler, Mapping):
        x0s = [x0_or_sampler(rng) for _ in range(n)]
    else:
        x0s = _uniform_starts(x0_or_sampler, n, rng, lb_dict, ub_dict, options.get("backend"))
    results = minimize_many(
        fun,
        x0s,
        args=args,
        lb_dict=lb_dict,
        ub_dict=ub_dict,
        executor=executor,
        progress=progress,
        chunksize=chunksize,
        batched=batched,
        **options,
    )
    for r, x0 in zip(results, x0s, strict=True):
        r["x0"] = x0
    best = _best_index(results, bool(options.get("maximize", False)))
    out = OptimizeResult(results[best])
    out["starts"] = results
    out["best_index"] = best
    return out

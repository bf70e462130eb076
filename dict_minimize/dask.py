"""One problem whose data lives on Dask workers: an objective summed over shards.

For objectives that are a sum over data too large for one machine (calibration on billions
of rows, full-batch fitting), :func:`sharded` turns ``fun_shard(x_dict, shard) -> (value,
grad_dict)`` into an objective for :func:`dict_minimize.minimize` (with ``jac=True``, the
default). Each evaluation sends only ``x`` (small) to the workers, runs ``fun_shard`` where
each shard already is, and sums the per-shard values and gradients here, in shard order (so
the sum, and the whole run, is the same from run to run). The shards never move.

Many independent problems on Dask need nothing from this module: pass the client as the
``executor`` of :func:`dict_minimize.minimize_many` or :func:`dict_minimize.multistart`.

Needs the ``[dask]`` extra (``pip install 'dict_minimize[dask]'``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from dict_minimize._errors import fmt_key, type_name

__all__ = ["ShardedObjective", "sharded"]

_INSTALL = "pip install 'dict_minimize[dask]'"


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ImportError(f"dict_minimize.dask needs dask.distributed: {_INSTALL}") from None
    return distributed


def _as_numpy(x: Any, where: str) -> Any:
    """x as plain NumPy (nested Mappings kept), to send to the workers."""
    if isinstance(x, Mapping):
        return {k: _as_numpy(v, f"{where}[{fmt_key(k)}]") for k, v in x.items()}
    if isinstance(x, (np.ndarray, np.generic, float, int)):
        return np.asarray(x)
    raise TypeError(
        f"{where} is a {type_name(x)}: the sharded objective works on NumPy parameters (x0 of "
        "NumPy arrays); fun_shard may use any framework inside, on the workers"
    )


def _run_shards(fun_shard: Callable, x: Any, shards: list[Any]) -> list[tuple[float, Any]]:
    """On a worker: each of its shards' (value, gradient), as float and NumPy."""
    out = []
    for shard in shards:
        value, grad = fun_shard(x, shard)
        out.append((float(value), _grad_numpy(grad)))
    return out


def _grad_numpy(grad: Any) -> Any:
    if isinstance(grad, Mapping):
        return {k: _grad_numpy(v) for k, v in grad.items()}
    return np.asarray(grad, dtype=np.float64)


def _add(total: Any, grad: Any, where: str) -> Any:
    """total + grad, key by key (total is owned and updated in place)."""
    if isinstance(total, dict):
        if not isinstance(grad, Mapping) or set(grad) != set(total):
            raise ValueError(
                f"the shards' gradient dicts differ in their keys at {where}: every shard must "
                "return a gradient with the keys of x"
            )
        for k in total:
            total[k] = _add(total[k], grad[k], f"{where}[{fmt_key(k)}]")
        return total
    return np.add(total, grad, out=total if total.shape == np.shape(grad) else None)


def _copy(grad: Any) -> Any:
    if isinstance(grad, Mapping):
        return {k: _copy(v) for k, v in grad.items()}
    return np.array(grad, dtype=np.float64, copy=True)


def _sort_key(future: Any) -> Any:
    key = future.key
    return (0, key) if isinstance(key, tuple) else (1, str(key))


class ShardedObjective:
    """``f(x_dict) -> (value, grad_dict)``: the sum of ``fun_shard`` over shards on workers.

    Made by :func:`sharded`. ``shards`` holds the futures of the shards (in the order of the
    sum), ``evaluations`` counts the calls, ``seconds`` their total wall time.
    """

    def __init__(self, fun_shard: Callable, shards: list[Any], client: Any) -> None:
        self.fun_shard = fun_shard
        self.shards = shards
        self.client = client
        self.evaluations = 0
        self.seconds = 0.0
        #: the shards grouped by the worker holding them, asked once (at the first evaluation)
        self._groups: list[tuple[str | None, list[int]]] | None = None

    def _group(self) -> list[tuple[str | None, list[int]]]:
        """(worker, shard indices) pairs: one task per worker and evaluation."""
        who = self.client.who_has(self.shards)
        groups: dict[str | None, list[int]] = {}
        for i, s in enumerate(self.shards):
            holders = sorted(who.get(s.key, ()))
            groups.setdefault(holders[0] if holders else None, []).append(i)
        return list(groups.items())

    def __call__(self, x: Any) -> tuple[float, Any]:
        start = time.perf_counter()
        x_np = _as_numpy(x, "x")
        if self._groups is None:
            self._groups = self._group()
        # one task per worker, holding that worker's shards (loosely: elsewhere if the worker is
        # lost), so work stealing never moves a shard, and each evaluation is one round trip
        # per worker, not per shard
        futures = [
            self.client.submit(
                _run_shards,
                self.fun_shard,
                x_np,
                [self.shards[i] for i in indices],
                pure=False,
                **({} if where is None else {"workers": [where], "allow_other_workers": True}),
            )
            for where, indices in self._groups
        ]
        parts: list[Any] = [None] * len(self.shards)
        for (_, indices), done in zip(self._groups, self.client.gather(futures), strict=True):
            for i, part in zip(indices, done, strict=True):
                parts[i] = part
        value = 0.0
        grad: Any = None
        for i, (v, g) in enumerate(parts):
            value += v
            grad = _copy(g) if grad is None else _add(grad, g, f"the gradient of shard {i}")
        self.evaluations += 1
        self.seconds += time.perf_counter() - start
        return value, grad

    def __repr__(self) -> str:
        return (
            f"ShardedObjective({getattr(self.fun_shard, '__name__', 'fun_shard')}, "
            f"{len(self.shards)} shards, {self.evaluations} evaluations)"
        )


def sharded(fun_shard: Callable, shards: Any, client: Any) -> ShardedObjective:
    """An objective for :func:`~dict_minimize.minimize` summed over shards that stay on workers.

    Args:
        fun_shard: ``fun_shard(x_dict, shard) -> (value, grad_dict)``, run on the workers:
            ``x_dict`` holds NumPy arrays like ``x0``; ``value`` is a float-like and
            ``grad_dict`` has the keys and shapes of ``x0`` (NumPy-convertible). It may use
            any framework inside (PyTorch, JAX, ...) as long as it returns those.
        shards: where the data is: a list of ``distributed.Future`` (already on the workers:
            ``client.scatter(...)``, ``client.submit(load, ...)``), or a Dask collection
            (``dask.array``, ``dask.dataframe``, ``dask.bag``), which is persisted once and
            whose partitions become the shards. In a list, a Dask collection (a
            ``dask.delayed.Delayed``, such as the partitions ``array.to_delayed()`` returns,
            also accepted as that object array) is computed once on the cluster and
            ``fun_shard`` gets its value; plain objects are scattered once.
        client: the ``dask.distributed.Client``.

    Returns:
        ShardedObjective: call it as ``fun(x_dict)``; pass it to ``minimize`` with ``jac=True``
            (the default) and a NumPy ``x0``. Every call submits one task per worker, with
            ``x`` as its only data, to the worker holding those shards, and sums the values and
            gradients here in shard order.

    Example:
        >>> import numpy as np
        >>> from distributed import Client
        >>> from dict_minimize import minimize
        >>> from dict_minimize.dask import sharded
        >>> def least_squares(x, shard):  # sum of (a . w - b)^2 over this shard's rows
        ...     a, b = shard
        ...     r = a @ x["w"] - b
        ...     return r @ r, {"w": 2 * a.T @ r}
        >>> rng = np.random.default_rng(0)
        >>> with Client(processes=False, n_workers=1, dashboard_address="127.0.0.1:0") as client:
        ...     data = [(rng.normal(size=(50, 2)), rng.normal(size=50)) for _ in range(4)]
        ...     fun = sharded(least_squares, client.scatter(data), client)
        ...     res = minimize(fun, {"w": np.zeros(2)})
        >>> res.success, fun.evaluations == res.nfev
        (True, True)
    """
    distributed = _distributed()
    if not callable(fun_shard):
        raise TypeError(f"fun_shard must be callable; got a {type_name(fun_shard)}")
    if not isinstance(client, distributed.Client):
        raise TypeError(f"client must be a dask.distributed.Client; got a {type_name(client)}")
    import dask

    if isinstance(shards, np.ndarray) and shards.dtype == object:
        shards = shards.ravel().tolist()  # what dask.array.Array.to_delayed() returns
    if dask.is_dask_collection(shards):
        futures = sorted(distributed.futures_of(client.persist(shards)), key=_sort_key)
    elif isinstance(shards, Sequence) and not isinstance(shards, (str, bytes)):
        items = list(shards)
        # Dask collections in the list (the Delayed partitions of to_delayed()): computed on
        # the cluster, once; each shard is then the computed value, held by a worker
        lazy = [i for i, s in enumerate(items) if dask.is_dask_collection(s)]
        if lazy:
            computed = client.compute([items[i] for i in lazy])
            for i, f in zip(lazy, computed, strict=True):
                items[i] = f
        plain = [i for i, s in enumerate(items) if not isinstance(s, distributed.Future)]
        if plain:
            scattered = client.scatter([items[i] for i in plain], hash=False)
            for i, f in zip(plain, scattered, strict=True):
                items[i] = f
        futures = items
    else:
        raise TypeError(
            "shards must be a list of futures (or of data to scatter once, or of Dask "
            "collections such as the Delayed partitions of dask.array.Array.to_delayed()) or a "
            f"Dask collection; got a {type_name(shards)}"
        )
    if not futures:
        raise ValueError("shards is empty: there is no data to sum over")
    for i, f in enumerate(futures):
        if f.client is not client:
            raise ValueError(
                f"shards[{i}] is a future of another client; pass the client that holds it"
            )
    return ShardedObjective(fun_shard, futures, client)

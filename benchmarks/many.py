"""Scale-out costs, as ratios measured in one run: per-solve overhead, many fits, sharding.

Three measurements, each interleaving its contenders round by round and reporting medians:

1. **Per solve**: one beta calibration (3 parameters, 500 points, ``a, b >= 0``, L-BFGS-B)
   through ``dict_minimize.minimize`` against plain ``scipy.optimize.minimize`` on the same
   flat NumPy function with ``jac=True``, its bounds as a list of pairs (``scipy``) and as a
   ``Bounds`` object (which SciPy converts faster). The dict objective calls the same
   function, so the ratio is the bridge's cost per solve: preparation, per-evaluation
   conversion, the result.
2. **Many fits**: 200 such calibrations (one per segment) through ``minimize_many``:
   sequential, a 2-process ``ProcessPoolExecutor`` and a 2-worker Dask ``LocalCluster``.
3. **Sharded objective**: one evaluation of ``dict_minimize.dask.sharded`` (4 shards on the 2
   workers) against the same sum computed in this process, and a whole L-BFGS-B solve.

    python -m benchmarks.many            # the figures of docs/guide/scale-out.md
    python -m benchmarks.many --quick    # small sizes and few rounds: a smoke run

Needs the ``[dask]`` extra. The workers start once; their start-up is not timed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.optimize

from dict_minimize import minimize, minimize_many

#: the per-solve problem (the issue's: 3 parameters, 500 points)
POINTS = 500
BOUNDS = [(0.0, None), (0.0, None), (None, None)]


def segment(seed: int, n: int = POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(log p, log(1 - p)) features and labels of one segment's mis-calibrated scores."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.01, 0.99, n)
    y = (rng.uniform(size=n) < p**1.7).astype(np.float64)
    return np.stack([np.log(p), np.log1p(-p)]), y


def flat_loss(v: np.ndarray, feats: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Beta calibration's mean log-loss of ``v = (a, b, c)`` and its gradient, on the vector."""
    lp, l1p = feats
    z = v[0] * lp - v[1] * l1p + v[2]
    r = (1.0 / (1.0 + np.exp(-z)) - y) / len(y)
    f = float(np.mean(np.logaddexp(0.0, z) - y * z))
    return f, np.array([(r * lp).sum(), -(r * l1p).sum(), r.sum()])


def dict_loss(d: dict, feats: np.ndarray, y: np.ndarray) -> tuple[float, dict]:
    """The same function on the dict ``{"a", "b", "c"}`` (what a user of ours writes)."""
    f, g = flat_loss(np.array([d["a"], d["b"], d["c"]]), feats, y)
    return f, {"a": g[0], "b": g[1], "c": g[2]}


X0 = {"a": np.float64(1.0), "b": np.float64(1.0), "c": np.float64(0.0)}
LB = {"a": 0.0, "b": 0.0}


def interleaved(contenders: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Median seconds per contender, running them round by round in a rotating order."""
    times: dict[str, list[float]] = {k: [] for k in contenders}
    names = list(contenders)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def per_solve(rounds: int) -> dict[str, float]:
    feats, y = segment(0)
    x0 = np.array([1.0, 1.0, 0.0])

    def ours() -> Any:
        return minimize(dict_loss, X0, args=(feats, y), method="L-BFGS-B", lb_dict=LB)

    def plain() -> Any:
        return scipy.optimize.minimize(
            flat_loss, x0, args=(feats, y), jac=True, method="L-BFGS-B", bounds=BOUNDS
        )

    bounds = scipy.optimize.Bounds([0.0, 0.0, -np.inf], np.inf)

    def plain_bounds() -> Any:  # SciPy's faster spelling of the same bounds
        return scipy.optimize.minimize(
            flat_loss, x0, args=(feats, y), jac=True, method="L-BFGS-B", bounds=bounds
        )

    a, b, c = ours(), plain(), plain_bounds()
    assert a.nfev == b.nfev == c.nfev and a.fun == b.fun == c.fun, (a, b, c)
    contenders = {"ours": ours, "scipy": plain, "scipy, Bounds object": plain_bounds}
    return interleaved(contenders, rounds)


def many_fits(n_fits: int, rounds: int, client: Any, pool: Any) -> dict[str, float]:
    args = [segment(s) for s in range(n_fits)]
    x0s = [X0] * n_fits
    kw = {"args": args, "method": "L-BFGS-B", "lb_dict": LB}
    seq = minimize_many(dict_loss, x0s, **kw)
    for name, ex in (("dask", client), ("processes", pool)):
        other = minimize_many(dict_loss, x0s, executor=ex, **kw)
        assert all(a.fun == b.fun for a, b in zip(seq, other, strict=True)), name
    return interleaved(
        {
            "sequential": lambda: minimize_many(dict_loss, x0s, **kw),
            "2 dask workers": lambda: minimize_many(dict_loss, x0s, executor=client, **kw),
            "2 processes": lambda: minimize_many(dict_loss, x0s, executor=pool, **kw),
        },
        rounds,
    )


def shard_loss(x: dict, shard: tuple) -> tuple[float, dict]:
    """One shard's summed beta-calibration log-loss and gradient."""
    feats, y = shard
    f, g = flat_loss(np.array([x["a"], x["b"], x["c"]]), feats, y)
    n = len(y)
    return f * n, {"a": g[0] * n, "b": g[1] * n, "c": g[2] * n}


def sharding(rows: int, rounds: int, client: Any) -> dict[str, float]:
    from dict_minimize.dask import sharded

    shards = [segment(100 + i, rows) for i in range(4)]
    fun = sharded(shard_loss, shards, client)

    def local(x: dict) -> tuple[float, dict]:
        value, grad = 0.0, {k: 0.0 for k in X0}
        for s in shards:
            v, g = shard_loss(x, s)
            value += v
            grad = {k: grad[k] + g[k] for k in grad}
        return value, grad

    x = {"a": np.float64(1.2), "b": np.float64(0.8), "c": np.float64(0.1)}
    return interleaved(
        {
            "in-process evaluation": lambda: local(x),
            "sharded evaluation": lambda: fun(x),
            "in-process solve": lambda: minimize(local, X0, method="L-BFGS-B", lb_dict=LB),
            "sharded solve": lambda: minimize(fun, X0, method="L-BFGS-B", lb_dict=LB),
        },
        rounds,
    )


def report(title: str, medians: dict[str, float], base: str) -> str:
    lines = [f"{title}", "", "| contender | median | ratio |", "|---|---|---|"]
    for name, t in medians.items():
        lines.append(f"| {name} | {t * 1e3:.3f} ms | {t / medians[base]:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the three measurements and print their Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few rounds")
    opts = parser.parse_args(argv)
    solve_rounds, fits, fit_rounds, rows = (
        (20, 20, 2, 2_000) if opts.quick else (400, 200, 7, 200_000)
    )
    print(report(f"Per solve ({solve_rounds} rounds)", per_solve(solve_rounds), "scipy"))
    from distributed import Client, LocalCluster

    ctx = multiprocessing.get_context("spawn")
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            silence_logs=50,
        ) as cluster,
        Client(cluster) as client,
        concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as pool,
    ):
        print()
        title = f"{fits} calibration fits ({fit_rounds} rounds)"
        print(report(title, many_fits(fits, fit_rounds, client, pool), "sequential"))
        print()
        title = f"Sharded objective, 4 shards of {rows:,} rows on 2 workers ({fit_rounds} rounds)"
        print(report(title, sharding(rows, fit_rounds, client), "in-process evaluation"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

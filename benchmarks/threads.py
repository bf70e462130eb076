"""Thread defaults: what ``threads=`` costs or saves, small fits and large ones.

``python -m benchmarks.threads [--quick] [--scale-out]`` solves each problem with four thread
settings, interleaved round by round (medians; ratios within one run):

- ``none``: ``threads=None``, every thread pool as the libraries start it (the default before
  ``threads=`` existed);
- ``scipy1``: ``threads=None`` inside ``limit_blas_threads(1)``: SciPy's BLAS on one thread,
  the objective's BLAS and framework untouched (what ``blas_threads=1`` did);
- ``one``: ``threads=1``: SciPy's BLAS, NumPy's BLAS and PyTorch's intra-op threads on one;
- ``auto``: the default, ``threads="auto"``.

Problems (float64 NumPy unless said):

- ``mlp``: a 3-32-1 tanh MLP (float32 PyTorch, 256 points) with ``minimize_module``;
- ``many``: 200 logistic fits (1,000 points, 20 features: ``X @ w`` per evaluation) with
  ``minimize_many``, sequential;
- ``logistic``: one logistic fit on 20,000 points, 200 features (a matrix-vector product of
  4M entries per evaluation, few variables);
- ``matmul``: least squares ``X @ W`` with X 2000 x 2000, W 2000 x 50 (100,000 variables, a
  0.4 GFLOP product each way per evaluation), NumPy, and ``matmul_torch`` the same in PyTorch
  (``jac="autodiff"``, float32);
- ``big_n``: a separable objective of 1,000,000 variables (SciPy's vector work dominates).

``--scale-out`` adds ``many`` on a 2-process pool and on 2 Dask workers, each with ``none``
and ``auto`` (the scale-out guide's table). The load average is printed with each table:
the machine's other work changes every absolute number.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from dict_minimize import minimize, minimize_many

SETTINGS = ("none", "scipy1", "one", "auto")


def _load() -> str:
    try:
        one, five, fifteen = os.getloadavg()
        return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"
    except OSError:  # pragma: no cover - no getloadavg on this platform
        return "load average unknown"


def _threads(setting: str) -> tuple[Any, contextlib.AbstractContextManager]:
    """(the ``threads`` argument, the context around the solve) of a setting."""
    from dict_minimize._threads import limit_blas_threads

    if setting == "none":
        return None, contextlib.nullcontext()
    if setting == "scipy1":
        return None, limit_blas_threads(1)
    if setting == "one":
        return 1, contextlib.nullcontext()
    return "auto", contextlib.nullcontext()


# --- the problems: each returns solve(threads) -> number of evaluations ------------------------


def logistic_data(seed: int, m: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, k))
    w = rng.normal(size=k) / np.sqrt(k)
    y = (rng.uniform(size=m) < 1 / (1 + np.exp(-X @ w))).astype(np.float64)
    return X, y


def logistic_loss(d: dict, X: np.ndarray, y: np.ndarray) -> tuple[float, dict]:
    """Mean log-loss of a logistic regression and its gradient: ``X @ w`` per evaluation."""
    z = X @ d["w"] + d["b"]
    r = (1.0 / (1.0 + np.exp(-z)) - y) / len(y)
    loss = float(np.mean(np.logaddexp(0.0, z) - y * z))
    return loss, {"w": X.T @ r, "b": r.sum()}


def mlp_problem(quick: bool) -> Callable[[Any], int]:
    import torch

    from dict_minimize.torch_api import minimize_module

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(256, 3, generator=gen) * 2 - 1
    y = torch.sin(3 * x[:, :1]) * x[:, 1:2] + x[:, 2:] ** 2
    maxiter = 5 if quick else 40

    def solve(threads: Any) -> int:
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(3, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
        res = minimize_module(
            net,
            lambda m: torch.mean((m(x) - y) ** 2),
            method="L-BFGS-B",
            options={"maxiter": maxiter},
            threads=threads,
        )
        return int(res.nfev)

    return solve


def many_problem(quick: bool, executor: Any = None) -> Callable[[Any], int]:
    count = 10 if quick else 200
    data = [logistic_data(s, 1000, 20) for s in range(count)]
    x0 = {"w": np.zeros(20), "b": np.float64(0.0)}

    def solve(threads: Any) -> int:
        fits = minimize_many(
            logistic_loss, [x0] * count, args=data, executor=executor, threads=threads
        )
        assert all(f.success for f in fits), [f.message for f in fits if not f.success]
        return sum(int(f.nfev) for f in fits)

    return solve


def logistic_problem(quick: bool) -> Callable[[Any], int]:
    X, y = logistic_data(1, 2000 if quick else 20_000, 200)
    x0 = {"w": np.zeros(200), "b": np.float64(0.0)}

    def solve(threads: Any) -> int:
        res = minimize(
            logistic_loss,
            x0,
            args=(X, y),
            method="L-BFGS-B",
            threads=threads,
            options={"maxiter": 5 if quick else 40},
        )
        return int(res.nfev)

    return solve


def matmul_problem(quick: bool, framework: str) -> Callable[[Any], int]:
    m, k = (200, 5) if quick else (2000, 50)
    rng = np.random.default_rng(2)
    X = rng.normal(size=(m, m)) / np.sqrt(m)
    Y = rng.normal(size=(m, k))
    maxiter = 3 if quick else 15
    if framework == "torch":
        import torch

        Xt, Yt = torch.tensor(X, dtype=torch.float32), torch.tensor(Y, dtype=torch.float32)
        x0t = {"W": torch.zeros(m, k)}

        def solve_torch(threads: Any) -> int:
            res = minimize(
                lambda d: 0.5 * torch.sum((Xt @ d["W"] - Yt) ** 2),
                x0t,
                jac="autodiff",
                method="L-BFGS-B",
                options={"maxiter": maxiter},
                threads=threads,
            )
            return int(res.nfev)

        return solve_torch

    def fun(d: dict) -> tuple[float, dict]:
        r = X @ d["W"] - Y
        return 0.5 * float(np.sum(r * r)), {"W": X.T @ r}

    x0 = {"W": np.zeros((m, k))}

    def solve(threads: Any) -> int:
        res = minimize(fun, x0, method="L-BFGS-B", options={"maxiter": maxiter}, threads=threads)
        return int(res.nfev)

    return solve


def big_n_problem(quick: bool) -> Callable[[Any], int]:
    n = 10_000 if quick else 1_000_000
    rng = np.random.default_rng(3)
    t, c = rng.normal(size=n), rng.uniform(0.5, 2.0, size=n)
    x0 = {"x": np.zeros(n)}

    def fun(d: dict) -> tuple[float, dict]:
        r = d["x"] - t
        return float(np.sum(c * (r * r + 0.1 * r**4))), {"x": c * (2 * r + 0.4 * r**3)}

    def solve(threads: Any) -> int:
        res = minimize(
            fun, x0, method="L-BFGS-B", options={"maxiter": 3 if quick else 20}, threads=threads
        )
        return int(res.nfev)

    return solve


PROBLEMS: dict[str, tuple[str, Callable[[bool], Callable[[Any], int]]]] = {
    "mlp": ("small", mlp_problem),
    "many": ("small", lambda q: many_problem(q)),
    "logistic": ("small n, large data", logistic_problem),
    "matmul": ("large", lambda q: matmul_problem(q, "numpy")),
    "matmul_torch": ("large", lambda q: matmul_problem(q, "torch")),
    "big_n": ("large", big_n_problem),
}


def interleaved(
    solve: Callable[[Any], int], settings: tuple[str, ...], rounds: int
) -> tuple[dict[str, float], int]:
    """Median seconds per setting (rotating order each round) and the evaluation count."""
    times: dict[str, list[float]] = {s: [] for s in settings}
    nfev = 0
    for s in settings:  # warm up
        threads, ctx = _threads(s)
        with ctx:
            solve(threads)
    for r in range(rounds):
        k = r % len(settings)
        for s in settings[k:] + settings[:k]:
            threads, ctx = _threads(s)
            with ctx:
                start = time.perf_counter()
                nfev = solve(threads)
                times[s].append(time.perf_counter() - start)
    return {s: statistics.median(v) for s, v in times.items()}, nfev


def measure(quick: bool, rounds: int, names: list[str] | None = None) -> list[dict[str, Any]]:
    rows = []
    for name, (size, make) in PROBLEMS.items():
        if names and name not in names:
            continue
        if name.endswith("torch") or name == "mlp":
            try:
                import torch  # noqa: F401
            except ImportError:
                continue
        before = _load()
        med, nfev = interleaved(make(quick), SETTINGS, rounds)
        rows.append({"problem": name, "size": size, "nfev": nfev, "load": before, **med})
    return rows


def scale_out(quick: bool, rounds: int) -> list[dict[str, Any]]:
    """``many`` sequentially, on a 2-process pool and on 2 Dask workers, ``none`` vs ``auto``."""
    rows = []
    spawn = multiprocessing.get_context("spawn")
    with contextlib.ExitStack() as stack:
        executors: dict[str, Any] = {"sequential": None}
        executors["2 processes"] = stack.enter_context(
            concurrent.futures.ProcessPoolExecutor(2, mp_context=spawn)
        )
        try:
            from distributed import Client, LocalCluster

            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=2,
                    threads_per_worker=1,
                    dashboard_address="127.0.0.1:0",
                    processes=True,
                )
            )
            executors["2 Dask workers"] = stack.enter_context(Client(cluster))
        except ImportError:
            pass
        for label, ex in executors.items():
            before = _load()
            med, nfev = interleaved(many_problem(quick, ex), ("none", "auto"), rounds)
            rows.append(
                {"problem": f"many, {label}", "size": "small", "nfev": nfev, "load": before, **med}
            )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| problem | kind | evaluations | none | SciPy's BLAS 1 | one | auto (default) "
        "| none / auto | one / auto | load before |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]

    def fmt(v: float | None) -> str:
        if v is None:
            return "-"
        return f"{v * 1e3:.0f} ms" if v < 10 else f"{v:.1f} s"

    for r in rows:
        auto = r["auto"]
        ratio = f"{r['one'] / auto:.2f}x" if "one" in r else "-"
        lines.append(
            f"| {r['problem']} | {r['size']} | {r['nfev']} | {fmt(r.get('none'))} "
            f"| {fmt(r.get('scipy1'))} | {fmt(r.get('one'))} | {fmt(auto)} "
            f"| {r['none'] / auto:.2f}x "
            f"| {ratio} | {r['load'][13:]} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--only", nargs="*", help="problems to run (default: all)")
    parser.add_argument("--scale-out", action="store_true", help="add the executors' table")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 5)
    try:
        import torch

        torch_threads = f", PyTorch intra-op threads {torch.get_num_threads()}"
    except ImportError:
        torch_threads = ""
    print(f"{os.cpu_count()} CPUs{torch_threads}; {_load()} at the start")
    print(table(measure(args.quick, rounds, args.only)))
    if args.scale_out:
        print()
        print(table(scale_out(args.quick, max(1, rounds - 2) if not args.quick else 1)))
    print(f"{_load()} at the end")


if __name__ == "__main__":
    main()

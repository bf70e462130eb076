"""What ``minimize(..., log=path)`` costs per evaluation, at 3 keys and at 2,000 keys.

One problem, Rosenbrock's function in each of ``keys`` NumPy arrays of shape (8,) (3 keys: 24
scalars; 2,000 keys: 16,000 scalars, a 128 KB row per evaluation), solved by L-BFGS-B for a
fixed number of iterations (10 and 40: the cost per evaluation is the slope between them, the
file's opening and closing, once per run, apart), with:

- ``off``: no log (the default);
- ``trace``: ``trace=True`` (the same per-iteration machinery the log rides on, no file);
- ``log``: ``log=<new file>``, SQLite ``synchronous=NORMAL`` (the package's choice);
- ``log-full``: the same with ``synchronous=FULL`` (an fsync at every commit).

The variants run interleaved (off, trace, log, log-full, off, ...) so that a busy machine
slows them alike; the table gives the median over rounds of seconds per evaluation and the
log's extra cost per evaluation against ``off``. ``uptime``'s load average is printed with it:
the machine is shared.

    python -m benchmarks.history            # 3 and 2,000 keys, 15 rounds
    python -m benchmarks.history --quick    # 3 and 200 keys, 3 rounds
    python -m benchmarks.history --json benchmarks/history.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from typing import Any

import numpy as np

from dict_minimize import minimize
from dict_minimize._problem import history

VARIANTS = ("off", "trace", "log", "log-full")


def problem(keys: int) -> tuple[Any, dict[str, np.ndarray]]:
    """Rosenbrock's function in each key (shape (8,)), summed: slow to converge, so that a
    solve of a fixed number of iterations makes a fixed number of evaluations."""
    rng = np.random.default_rng(0)
    x0 = {f"k{i}": rng.normal(size=8) for i in range(keys)}
    names = list(x0)

    def fun(d: dict[str, np.ndarray]) -> tuple[float, dict[str, np.ndarray]]:
        x = np.stack([d[k] for k in names])
        a, b = x[:, :-1], x[:, 1:]
        value = float((100.0 * (b - a**2) ** 2 + (1.0 - a) ** 2).sum())
        g = np.zeros_like(x)
        g[:, :-1] = -400.0 * a * (b - a**2) - 2.0 * (1.0 - a)
        g[:, 1:] += 200.0 * (b - a**2)
        return value, dict(zip(names, g, strict=True))

    return fun, x0


def one(
    variant: str, fun: Any, x0: dict, iterations: int, folder: str, i: int
) -> tuple[float, int]:
    """(seconds, evaluations) of one solve."""
    kwargs: dict[str, Any] = {}
    if variant == "trace":
        kwargs["trace"] = True
    elif variant.startswith("log"):
        kwargs["log"] = os.path.join(folder, f"{variant}-{iterations}-{i}.db")
    history.SYNCHRONOUS = "FULL" if variant == "log-full" else "NORMAL"
    try:
        start = time.perf_counter()
        res = minimize(
            fun,
            x0,
            method="L-BFGS-B",
            options={"maxiter": iterations, "gtol": 0.0, "ftol": 0.0},
            **kwargs,
        )
        seconds = time.perf_counter() - start
    finally:
        history.SYNCHRONOUS = "NORMAL"
    return seconds, res.nfev_ran


def measure(keys: int, rounds: int, short: int, long: int) -> dict[str, Any]:
    """Per variant, the median over rounds of the seconds per evaluation, measured as the
    slope between a short and a long solve (so opening and closing the file, paid once per
    run, are left out of it), and the log's once-per-run cost."""
    fun, x0 = problem(keys)
    slopes: dict[str, list[float]] = {v: [] for v in VARIANTS}
    fixed: dict[str, list[float]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory() as folder:
        for v in VARIANTS:  # warm-up
            one(v, fun, x0, 2, folder, -1)
        for i in range(rounds):
            for v in VARIANTS:
                t_short, n_short = one(v, fun, x0, short, folder, i)
                t_long, n_long = one(v, fun, x0, long, folder, i)
                slope = (t_long - t_short) / (n_long - n_short)
                slopes[v].append(slope)
                fixed[v].append(t_short - n_short * slope)
    med = {v: statistics.median(t) for v, t in slopes.items()}
    per_run = {v: statistics.median(t) for v, t in fixed.items()}
    return {
        "keys": keys,
        "scalars": 8 * keys,
        "rounds": rounds,
        "median_s_per_eval": med,
        "median_s_per_run": per_run,
        "log_extra_us": 1e6 * (med["log"] - med["off"]),
        "log_full_extra_us": 1e6 * (med["log-full"] - med["off"]),
        "log_open_close_ms": 1e3 * (per_run["log"] - per_run["off"]),
    }


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return "n/a"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| keys (scalars) | off µs/eval | trace µs/eval | log µs/eval | log extra µs/eval "
        "| log-full µs/eval | log-full extra µs/eval | log's open+close ms/run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m = r["median_s_per_eval"]
        lines.append(
            f"| {r['keys']:,} ({r['scalars']:,}) | {1e6 * m['off']:.0f} | {1e6 * m['trace']:.0f} "
            f"| {1e6 * m['log']:.0f} | {r['log_extra_us']:.0f} | {1e6 * m['log-full']:.0f} "
            f"| {r['log_full_extra_us']:.0f} | {r['log_open_close_ms']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 and 200 keys, 3 rounds")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--iterations", default="10,40", help="short,long solve (iterations)")
    parser.add_argument("--keys", default=None, help="comma-separated key counts")
    parser.add_argument("--json", default=None, help="write the numbers to this file")
    args = parser.parse_args(argv)
    keys = [int(k) for k in args.keys.split(",")] if args.keys else (
        [3, 200] if args.quick else [3, 2000]
    )
    rounds = args.rounds or (3 if args.quick else 15)
    before = load()
    short, long = (int(v) for v in args.iterations.split(","))
    rows = [measure(k, rounds, short, long) for k in keys]
    out = {
        "load_before": before,
        "load_after": load(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "rows": rows,
    }
    print(table(rows))
    print(f"\nload average (1, 5, 15 min): before {before}, after {out['load_after']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return out


if __name__ == "__main__":
    main(sys.argv[1:])

"""Does limiting BLAS threads around SciPy's solve help? Plain SciPy on each problem's floor.

``python -m benchmarks.blas [--quick]`` solves each problem's flat NumPy objective (the floor)
with L-BFGS-B in three settings, interleaved round by round (medians): the BLAS libraries'
default thread count; ``dict_minimize._threads.limit_blas_threads(1)`` (SciPy's BLAS only: the
objective's NumPy keeps its threads); and ``scope='all'`` (every BLAS library, NumPy's too).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import scipy.optimize

from benchmarks import problems as P

MODES = {"default": None, "scipy": "scipy", "all": "all"}


def _solve(prob: P.Problem, scope: str | None) -> tuple[float, int]:
    from dict_minimize._threads import limit_blas_threads

    x0, data, bounds = prob.flat_x0(), prob.data, prob.flat_bounds()
    t = time.perf_counter()
    with limit_blas_threads(1 if scope else None, scope=scope or "scipy"):
        res = scipy.optimize.minimize(
            lambda x: prob.flat_vg(x, *data),
            x0,
            jac=True,
            method=prob.method,
            bounds=bounds,
            options=prob.options,
        )
    return time.perf_counter() - t, int(res.nfev)


def measure(scale: str, rounds: int, names: list[str] | None = None) -> list[dict[str, Any]]:
    """Median solve time per BLAS setting, per problem (the floor is float64)."""
    from threadpoolctl import threadpool_info

    default_threads = max((i["num_threads"] for i in threadpool_info()), default=None)
    rows = []
    for name in P.DTYPES:
        if names and name not in names:
            continue
        prob = P.build(name, "float64", scale)
        for scope in MODES.values():
            _solve(prob, scope)  # warm up
        times: dict[str, list[float]] = {m: [] for m in MODES}
        nfev = 0
        order = list(MODES.items())
        for r in range(rounds):
            k = r % len(order)
            for label, scope in order[k:] + order[:k]:
                t, nfev = _solve(prob, scope)
                times[label].append(t)
        med = {m: statistics.median(v) for m, v in times.items()}
        rows.append(
            {
                "problem": name,
                "n": prob.n,
                "nfev": nfev,
                "default_threads": default_threads,
                **{f"{m}_s": v for m, v in med.items()},
                **{f"{m}_ms_per_eval": v / nfev * 1e3 for m, v in med.items()},
            }
        )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| problem | n | nfev | BLAS threads by default | default ms/eval "
        "| SciPy's BLAS 1 thread ms/eval | all BLAS 1 thread ms/eval | speed-up (SciPy's) "
        "| speed-up (all) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        d, s, a = r["default_ms_per_eval"], r["scipy_ms_per_eval"], r["all_ms_per_eval"]
        lines.append(
            f"| {r['problem']} | {r['n']} | {r['nfev']} | {r['default_threads']} | {d:.3f} "
            f"| {s:.3f} | {a:.3f} | {d / s:.2f}x | {d / a:.2f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    scale = "quick" if args.quick else "full"
    rows = measure(scale, args.rounds or (3 if args.quick else 5))
    print(json.dumps(rows) if args.json else table(rows))


if __name__ == "__main__":
    main()
